"""Benchmark: simulated KVM hosts on the real engine — host image, hosts up, no-op, down.

Run: .venv/bin/python benchmarks/bench_simulated_hosts.py [--hosts N] [--repeat N]

Measured, against the local Docker engine:

* the host tree cold: mmdebstrap into a temporary cache (always built);
* the host image import cold: that tree under a repository of the benchmark's own
  (``unkai-bench-<id>/kvm-host:bookworm``), so it is really streamed and imported;
* hosts up with the image present: N hosts of a throwaway environment in a temporary
  project (network, volumes, containers, host keys, until each answers ``virsh version``
  over SSH), the same as ``unkai hosts up`` after the first run;
* hosts up again: nothing to change (median of ``--repeat``);
* hosts down.

Everything the benchmark makes is removed at the end; the shared host image (built into
unkai's cache when missing) is not touched.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from unkai.drivers import docker as d
from unkai.drivers import simulated_hosts as sim
from unkai.drivers.images import build_rootfs
from unkai.environments import load_environment
from unkai.toolchain import cache_root, known_hosts_file, operator_key


def _env_file(hosts: int, net: str) -> str:
    lines = [
        "zones: {z1: {}}",
        "host_pools: {p1: {zone: z1}}",
        "hosts:",
    ]
    for i in range(hosts):
        lines.append(
            f"  b{i}: {{address: {net}.{11 + i}, connection: ssh, ssh_user: root, cpus: 2,"
            " memory_mb: 4096, disk_gb: 20, cpu_vendor: amd, pool: p1, zone: z1}"
        )
    return "\n".join(lines) + "\n"


def _image(client: object) -> None:
    bench = f"unkai-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="unkai-bench-cache-") as tmp:
        plan = sim.plan_host_image(cache_root=Path(tmp), ref=f"{bench}/kvm-host:bookworm")
        start = time.monotonic()
        built = build_rootfs(plan.spec, Path(tmp))
        tree = time.monotonic() - start
        size = built.rootfs.stat().st_size
        start = time.monotonic()
        try:
            sim.ensure_host_image(client, plan, cache_root=Path(tmp))
            imported = time.monotonic() - start
            state = d.image_state(client, plan.reference)
            assert state is not None
            print(f"host tree cold (mmdebstrap): {tree:.1f} s, rootfs.tar {size / 1e6:.0f} MB")
            print(f"host image import cold: {imported:.1f} s, {state.size_bytes / 1e6:.0f} MB")
        finally:
            for ref in (plan.reference, plan.ref):
                d.remove_image(client, ref, protect=())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=4, help="hosts of the throwaway environment")
    parser.add_argument("--repeat", type=int, default=3, help="no-op runs to take the median of")
    parser.add_argument("--skip-image", action="store_true", help="do not measure the image")
    args = parser.parse_args()

    client = d.connect()
    try:
        if not args.skip_image:
            _image(client)
        n = random.randrange(1, 250)
        name = f"bench{n}"
        # A short root: the SSH wrapper's ControlPath must fit a Unix socket path.
        root = Path(tempfile.mkdtemp(prefix="ub-", dir="/tmp")).resolve()
        try:
            (root / "environments").mkdir()
            (root / "environments" / f"{name}.yaml").write_text(
                _env_file(args.hosts, f"10.238.{n}")
            )
            env = load_environment(name, root=root)

            def up() -> sim.UpReport:
                return sim.up(
                    client,
                    env,
                    project=root,
                    cache_root=cache_root(),
                    identity=operator_key(root),
                    known_hosts=known_hosts_file(root),
                )

            first = up()
            again = []
            for _ in range(args.repeat):
                report = up()
                assert not report.changed
                again.append(report.seconds)
            start = time.monotonic()
            sim.down(client, name, project=root, known_hosts=known_hosts_file(root))
            down = time.monotonic() - start
            print(
                f"hosts up, {args.hosts} hosts, image present: {first.seconds:.1f} s;"
                f" again (no change): {statistics.median(again):.1f} s; down: {down:.1f} s"
            )
        finally:
            sim.down(client, name, project=root)
            shutil.rmtree(root, ignore_errors=True)
    finally:
        client.close()


if __name__ == "__main__":
    main()
