"""Benchmark: the Debian base import and the example image builds on the real engine.

Run: .venv/bin/python benchmarks/bench_container_image.py [--repeat N]

Measured, against the local Docker engine:

* the rootfs: built by mmdebstrap into the cache, or found there (``build_seconds`` 0);
* base import cold: ``ensure_base_image`` under a repository of the benchmark's own
  (``unkai-bench-<id>/debian:12``), so the filtered rootfs is really streamed and
  imported; cached: the same call again (the label says the digest is there: no-op);
* image build cold: the ``api`` and ``worker`` Dockerfiles of environments/local.yaml,
  rendered, with ``FROM`` pointed at that fresh base, so no layer of the engine's cache
  applies; cached: the same build again (every step but ``FROM`` from the layer cache);
* sizes: the rootfs tarball, the filtered stream, the base (target: at most 80 MB) and
  each image, with its ``docker history``: the base is one layer, an image adds only its
  own.

Everything the benchmark makes is removed at the end; the shared ``unkai/debian:12``
is not touched.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path

from unkai.components import container_image_inputs
from unkai.drivers import docker as d
from unkai.drivers.images import build_rootfs
from unkai.environments import load_environment
from unkai.model import DEBIAN_BASE_IMAGE
from unkai.provider.resources.container_image import base_spec
from unkai.render import render_dockerfile
from unkai.toolchain import cache_root

ROOT = Path(__file__).resolve().parents[1]


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="cached runs to take the median of")
    args = parser.parse_args()

    env = load_environment("local", root=ROOT)
    base_fields = container_image_inputs(env.container_images["api"], env).base
    assert base_fields is not None
    start = time.monotonic()
    built = build_rootfs(base_spec(base_fields), cache_root())
    rootfs_seconds = time.monotonic() - start
    how = "cold (mmdebstrap)" if built.build_seconds else "from the cache"
    print(f"rootfs {built.digest[:12]}: {rootfs_seconds:.1f} s, {how}")
    print(f"  rootfs.tar {_mb(built.rootfs.stat().st_size)}, filtered stream ", end="")
    print(_mb(sum(len(chunk) for chunk in d.filtered_rootfs(built.rootfs))))

    client = d.connect()
    bench = f"unkai-bench-{uuid.uuid4().hex[:8]}"
    ref = f"{bench}/debian:12"
    plan = d.plan_base_import(built, ref=ref)
    made: list[str] = []
    try:
        start = time.monotonic()
        base_id = d.ensure_base_image(client, built, ref=ref)
        cold = time.monotonic() - start
        made += [ref, plan.reference]
        cached = []
        for _ in range(args.repeat):
            start = time.monotonic()
            assert d.ensure_base_image(client, built, ref=ref) == base_id
            cached.append(time.monotonic() - start)
        base = d.image_state(client, ref)
        assert base is not None
        print(
            f"base import: cold {cold:.1f} s, cached {statistics.median(cached) * 1000:.1f} ms"
            f" (median of {args.repeat}); base image {_mb(base.size_bytes)}"
            f" (target: at most 80 MB: {'met' if base.size_bytes <= 80e6 else 'NOT met'})"
        )

        for name in ("api", "worker"):
            image = env.container_images[name]
            dockerfile = render_dockerfile(image, env).replace(
                f"FROM {DEBIAN_BASE_IMAGE}\n", f"FROM {ref}\n"
            )
            tag = f"{bench}-{name}:bench"
            first = d.build_image(client, dockerfile=dockerfile, tag=tag)
            made.insert(0, tag)
            again = [
                d.build_image(client, dockerfile=dockerfile, tag=tag) for _ in range(args.repeat)
            ]
            assert all(r.image_id == first.image_id for r in again)
            state = d.image_state(client, tag)
            assert state is not None
            print(
                f"build {name}: cold {first.seconds:.2f} s ({first.steps} steps), cached"
                f" {statistics.median(r.seconds for r in again):.3f} s"
                f" ({again[0].cached_steps}/{again[0].steps} steps from the cache);"
                f" image {_mb(state.size_bytes)} ({state.size_bytes - base.size_bytes} bytes"
                " above the base)"
            )
            for layer in client.api.history(tag):
                step = " ".join(str(layer.get("CreatedBy") or "").split())[:70]
                print(f"    {layer.get('Size', 0):>10} B  {step}")
    finally:
        for tag in made:
            d.remove_image(client, tag, protect=())
        client.close()


if __name__ == "__main__":
    main()
