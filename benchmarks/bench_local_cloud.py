"""Deployment numbers of the `local` environment, measured for real.

    .venv/bin/python benchmarks/bench_local_cloud.py [--cold-image]

Prints, each with how it was measured:
- image build, cold (cache removed, with --cold-image) and cached (``build_image``);
- time from ``up`` to "cloud-init finished" of every VM (the provider's ``boot_seconds``,
  measured from domain start to the console marker) and the whole ``up``;
- a second, no-change ``up``.
The accelerator is whatever the KVM probe found (``tcg`` where KVM does not work).
Leaves the environment destroyed.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from unkai.cli.cloud import cloud_stack
from unkai.drivers.images import ImageSpec, build_image, image_cache
from unkai.environments import load_environment
from unkai.toolchain import cache_root, cached_probe

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold-image", action="store_true", help="rebuild the image from scratch")
    args = parser.parse_args()
    env = load_environment("local", root=ROOT)
    image = env.vm_images["debian-12"]
    spec = ImageSpec(
        name=image.name,
        version=image.version,
        packages=tuple(image.packages),
        disk_gb=image.disk_gb,
    )
    if args.cold_image:
        shutil.rmtree(image_cache(spec.digest(), cache_root()), ignore_errors=True)
        start = time.monotonic()
        build_image(spec, cache_root())
        print(f"image build, cold: {time.monotonic() - start:.1f} s")
    start = time.monotonic()
    build_image(spec, cache_root())
    print(f"image build, cached: {time.monotonic() - start:.3f} s")

    print(f"accelerator: {cached_probe().accelerator} ({cached_probe().reason})")
    stack = cloud_stack("local", ROOT)
    stack.destroy()
    start = time.monotonic()
    stack.up()
    up_seconds = time.monotonic() - start
    vms = stack.outputs()["instances"].value
    for name, vm in sorted(vms.items()):
        print(f"{name}: cloud-init finished {vm['boot_seconds']:.0f} s after its domain started")
    print(
        f"up of {len(vms)} VMs in parallel (host, image, VMs, container images): {up_seconds:.0f} s"
    )
    start = time.monotonic()
    stack.up(expect_no_changes=True)
    print(f"no-change up: {time.monotonic() - start:.1f} s")
    stack.destroy()


if __name__ == "__main__":
    main()
