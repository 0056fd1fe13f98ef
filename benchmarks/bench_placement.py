"""Benchmark: place 10,000 instances on 1,000 hosts; only ``place`` is timed.

Run: .venv/bin/python benchmarks/bench_placement.py [--hosts N] [--instances N] [--repeat N]

The fleet: 4 zones with a pool each (CPU overcommit 4, 2 GiB reserve), hosts of three
sizes. The instances: groups from several templates (spread and pack, with and without
anti-affinity, some pinned to a zone or selecting SSD hosts) plus standalone instances,
some of them pinned to a host; about two thirds of the fleet's memory ends up allocated.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from unkai.model import Environment
from unkai.placement import HOST_SELECTOR_PREFIX, capacity_report, place

ZONES = ("zone-a", "zone-b", "zone-c", "zone-d")
HOST_SIZES = ((32, 131072, 2000), (64, 262144, 4000), (16, 65536, 1000))
TEMPLATES: dict[str, dict[str, Any]] = {
    "web": {"machine_type": "e2-standard-2"},
    "api": {"machine_type": "n2-standard-2"},
    "worker": {"machine_type": "e2-standard-4"},
    "cache": {"machine_type": "n2-highmem-2"},
    "db": {"machine_type": "custom-2-8192", "disks": [{"name": "data", "size_gb": 200}]},
    "batch": {"machine_type": "custom-4-12288"},
    "edge": {"machine_type": "e2-small", "labels": {f"{HOST_SELECTOR_PREFIX}disk": "ssd"}},
    "tiny": {"machine_type": "e2-micro"},
}


def environment(hosts: int, instances: int) -> Environment:
    """A deterministic fleet of ``hosts`` hosts and about ``instances`` instances."""
    host_docs = {}
    for i in range(hosts):
        cpus, memory_mb, disk_gb = HOST_SIZES[i % len(HOST_SIZES)]
        zone = ZONES[i % len(ZONES)]
        host_docs[f"kvm-{i:04d}"] = {
            "address": f"10.{i // 250}.{i % 250}.10",
            "ssh_user": "ops",
            "cpus": cpus,
            "memory_mb": memory_mb,
            "disk_gb": disk_gb,
            "cpu_vendor": "amd" if i % 2 else "intel",
            "pool": f"pool-{zone}",
            "zone": zone,
            "labels": {"disk": "ssd" if i % 3 == 0 else "hdd"},
        }
    templates = {name: {"image": "debian-12", **spec} for name, spec in sorted(TEMPLATES.items())}
    groups: dict[str, Any] = {}
    standalone = instances // 10
    remaining = instances - standalone
    names = sorted(TEMPLATES)
    index = 0
    while remaining > 0:
        template = names[index % len(names)]
        size = min(remaining, 50 + (index * 37) % 200)
        group: dict[str, Any] = {
            "template": template,
            "size": size,
            "spread": "pack" if index % 3 == 0 else "spread",
            "anti_affinity": index % 2 == 0 and size <= hosts // 2,
        }
        groups[f"g{index:03d}-{template}"] = group
        remaining -= size
        index += 1
    singles = {}
    for i in range(standalone):
        spec: dict[str, Any] = {"machine_type": ("e2-medium", "n2-standard-2")[i % 2]}
        if i % 5 == 0:
            spec["zone"] = ZONES[i % len(ZONES)]
        if i % 50 == 0:
            spec["host"] = f"kvm-{(i * 7) % hosts:04d}"
            spec["zone"] = ZONES[((i * 7) % hosts) % len(ZONES)]
        singles[f"vm-{i:05d}"] = {"image": "debian-12", **spec}
    return Environment.model_validate(
        {
            "name": "bench",
            "zones": {zone: {} for zone in ZONES},
            "host_pools": {
                f"pool-{zone}": {"zone": zone, "cpu_overcommit": 4.0, "reserved_memory_mb": 2048}
                for zone in ZONES
            },
            "hosts": host_docs,
            "vm_images": {"debian-12": {"version": "1", "disk_gb": 10}},
            "instance_templates": templates,
            "instance_groups": groups,
            "instances": singles,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    env = environment(args.hosts, args.instances)
    count = len(env.all_instances())
    timings = []
    placement = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        placement = place(env)
        timings.append(time.perf_counter() - start)
    assert placement is not None
    report = capacity_report(env, placement)
    print(
        f"placed {len(placement.assignments)} of {count} instances on {len(env.hosts)} hosts"
        f" (memory {report.memory_mb.percent}%, cpu {report.cpus.percent}%,"
        f" disk {report.disk_gb.percent}% allocated)"
    )
    print(
        f"place(): best {min(timings):.3f} s, median {statistics.median(timings):.3f} s"
        f" over {args.repeat} runs (target < 1 s)"
    )


if __name__ == "__main__":
    main()
