"""Benchmark: preview of a 1,000-instance environment against the engine's own cost.

Run: .venv/bin/python benchmarks/bench_preview.py [--instances N] [--repeat N]

Both previews run on the same machine, in one run, against new (empty) stacks of one
throw-away project made by ``unkai init``, so every resource is a create:

* unkai: ``cloud_stack(env)`` and ``preview`` of the environment of
  ``bench_render.py`` (20 hosts, groups of four templates, standalone instances with
  data disks and secrets, images, a cluster and workloads) - what ``unkai preview``
  does: load, place, render, then the engine with unkai's program and provider;
* baseline: ``preview`` of a program of as many ``LocalFile`` resources of unkai's own
  provider (the cheapest resource it has), through the same engine and language host.

The ratio unkai / baseline is the figure of merit (target: at most 1.5). Each is the
median of ``--repeat`` previews. Nothing outside the temporary project is touched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_render import document

from unkai.cli._workspace import select_stack
from unkai.cli.cloud import cloud_stack
from unkai.toolchain import kubernetes_version

BASELINE = '''\
"""{count} LocalFile resources of unkai's provider: the engine's own cost per resource."""
import pulumi
from unkai.components import LocalFile
from unkai.kinds import LocalFileInputs

out = pulumi.Config().require("out")
for i in range({count}):
    LocalFile(f"file-{{i}}", LocalFileInputs(path=f"{{out}}/file-{{i}}.txt", content=str(i)))
'''


def _median_preview(stack, repeat: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        start = time.monotonic()
        result = stack.preview()
        times.append(time.monotonic() - start)
        count = sum(result.change_summary.values())
    return statistics.median(times), count


def measure(*, instances: int, repeat: int, keep: Path | None = None) -> dict[str, float]:
    """Seconds of unkai's preview (with its load, place and render) and of the baseline.

    Returns:
        ``unkai``, ``baseline`` (medians of ``repeat``), ``prepare`` (unkai's load, place,
        render and stack selection, in ``unkai``), ``setup`` and ``resources``.
    """
    here = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="unkai-bench-preview-") as scratch:
        tmp = Path(scratch) if keep is None else keep
        tmp.mkdir(exist_ok=True)
        root = tmp / "cloud"
        unkai = Path(sys.executable).parent / "unkai"
        subprocess.run([str(unkai), "init", str(root)], check=True, capture_output=True)
        doc = document(instances)
        del doc["name"]  # an environment file's name is the file's
        doc["clusters"]["apps"]["kubernetes_version"] = kubernetes_version()
        for group in doc["instance_groups"].values():
            group["anti_affinity"] = False  # groups of 225 on 20 hosts
        for host in doc["hosts"].values():
            host.update(cpus=256, memory_mb=1024 * 1024)  # room for all of them
        (root / "environments" / "bench.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        os.chdir(root)
        try:
            start = time.monotonic()
            stack = cloud_stack("bench", root)
            secrets = {
                *(s for vm in doc["instances"].values() for s in vm.get("secrets", {}).values()),
                *(s for w in doc["workloads"].values() for s in w.get("secret_env", {}).values()),
            }
            stack.set_all_config({name: _secret(name) for name in sorted(secrets)})
            setup = time.monotonic() - start
            # cloud_stack's own work (load, place, render, select) is part of every preview.
            unkai_seconds, count = _median_preview(stack, repeat)
            start = time.monotonic()
            cloud_stack("bench", root)
            prepare = time.monotonic() - start

            program = tmp / "baseline"
            program.mkdir()
            (program / "Pulumi.yaml").write_text("name: bench-baseline\nruntime: python\n")
            (program / "__main__.py").write_text(BASELINE.format(count=count - 1))
            base = select_stack(program, "baseline")
            base.set_config("out", _plain(str(tmp / "files")))
            base_seconds, _ = _median_preview(base, repeat)
        finally:
            os.chdir(here)
    return {
        "unkai": unkai_seconds + prepare,
        "prepare": prepare,
        "baseline": base_seconds,
        "setup": setup,
        "resources": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--keep", type=Path, help="make the projects in this new folder and keep them"
    )
    args = parser.parse_args()
    got = measure(instances=args.instances, repeat=args.repeat, keep=args.keep)
    count, ours, base = got["resources"], got["unkai"], got["baseline"]
    print(f"unkai:    {count:.0f} resources, preview {ours - got['prepare']:.1f} s"
          f" + load/place/render {got['prepare']:.1f} s = {ours * 1000 / count:.1f} ms"
          f" a resource (stack set-up {got['setup']:.1f} s, once)")  # fmt: skip
    print(f"baseline: {count:.0f} LocalFile, preview {base:.1f} s"
          f" = {base * 1000 / count:.1f} ms a resource")  # fmt: skip
    print(f"unkai / baseline: {ours / base:.2f} (target: at most 1.5)")


def _secret(value: str):
    from pulumi import automation as auto

    return auto.ConfigValue(value=f"bench-{value}", secret=True)


def _plain(value: str):
    from pulumi import automation as auto

    return auto.ConfigValue(value=value)


if __name__ == "__main__":
    main()
