"""``unkai measure <env>``: the overheads of VMs and containers, measured where they run.

``unkai plan`` compares an environment's instances run as VMs and as containers (the
density report). Its overheads are unkai's defaults until they are measured: this
command reads them from the deployed environment and keeps them in
``.unkai/measurements/<env>.json``, which ``plan`` then uses, naming the source of each.

* a VM's memory: QEMU's resident memory on its host after boot (libvirt's ``rss``), the
  median over the environment's running VMs;
* a VM's OS disk: what its boot disk takes on the host (overlay and image), the median;
* a container's memory: the resident memory of each of the environment's container
  images running its own command, the median;
* the base image: the size of ``unkai/debian:12``.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from unkai._files import atomic_write
from unkai.cli._workspace import Root, resolve_root, ssh_client
from unkai.errors import ConfigError, DriverError

__all__ = ["load_measured", "measure", "measurements_file"]

console = Console()


def measurements_file(root: Path, env: str) -> Path:
    """Where the measurements of ``env`` are kept: ``.unkai/measurements/<env>.json``."""
    return root / ".unkai" / "measurements" / f"{env}.json"


def load_measured(root: Path, env: str) -> dict[str, tuple[int, str]] | None:
    """The measured overheads of ``env`` for the density report, or None if never measured.

    Returns:
        Field of :class:`unkai.placement.DensitySettings` → (value, what measured it).
    """
    path = measurements_file(root, env)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    when = data.get("measured_at", "?")
    found: dict[str, tuple[int, str]] = {}
    for name, entry in (data.get("density") or {}).items():
        found[name] = (int(entry["value"]), f"measured {when}: {entry['how']}")
    return found


def _vm_footprints(env: Any, root: Path, instances: dict[str, Any]) -> dict[str, dict[str, int]]:
    from unkai.drivers.libvirt import session
    from unkai.render import domain_name, owner

    wrapper = str(ssh_client(env, root))
    found: dict[str, dict[str, int]] = {}
    by_host: dict[str, list[str]] = {}
    for name, vm in sorted(instances.items()):
        if vm.get("state") == "running" and vm.get("host") in env.hosts:
            by_host.setdefault(vm["host"], []).append(name)
    for host, names in sorted(by_host.items()):
        with session(env.hosts[host].libvirt_uri, ssh=wrapper) as libvirt:
            for name in names:
                footprint = libvirt.footprint(domain_name(owner(env), name))
                if footprint is not None:
                    found[name] = {
                        "memory_mb": footprint.memory_mb,
                        "os_disk_mb": footprint.os_disk_mb,
                    }
    return found


def _container_footprints(images: dict[str, Any]) -> tuple[dict[str, dict[str, int]], int]:
    from unkai.drivers import docker as engine

    found: dict[str, dict[str, int]] = {}
    with engine.session() as client:
        for name, image in sorted(images.items()):
            reference = image.get("reference")
            if reference:
                found[name] = {
                    "memory_mb": engine.container_memory_mb(client, reference),
                    "size_mb": math.ceil(int(image.get("size_bytes") or 0) / 2**20),
                }
        base = engine.image_state(client, engine.DEBIAN_BASE_REF)
    return found, math.ceil(base.size_bytes / 2**20) if base is not None else 0


def _median(values: list[int]) -> int:
    return math.ceil(statistics.median(values))


def measure(env: str, root: Root = None) -> None:
    """Measure what a VM and a container of the deployed ``env`` cost; ``plan`` uses it."""
    from unkai.cli.cloud import cloud_stack
    from unkai.environments import load_environment

    root = resolve_root(root)
    environment = load_environment(env, root=root)
    outputs = cloud_stack(env, root).outputs()
    instances = outputs["instances"].value if "instances" in outputs else {}
    images = outputs["container_images"].value if "container_images" in outputs else {}
    if not instances and not images:
        raise ConfigError(
            f"{env} has nothing deployed to measure",
            allowed=f"an environment after `unkai up {env}`",
        )
    console.print(f"measuring {len(instances)} VMs and {len(images)} container images of {env}")
    vms = _vm_footprints(environment, root, instances or {})
    containers, base_mb = _container_footprints(images or {})
    density: dict[str, dict[str, Any]] = {}
    if vms:
        memory = [v["memory_mb"] for v in vms.values()]
        disk = [v["os_disk_mb"] for v in vms.values()]
        density["vm_guest_memory_mb"] = {
            "value": _median(memory),
            "how": f"QEMU's resident memory, median of {len(vms)} running VMs",
        }
        density["vm_os_disk_gb"] = {
            "value": math.ceil(statistics.median(disk) / 1024),
            "how": f"boot disk on the host, median {_median(disk)} MiB of {len(vms)} VMs",
        }
    if containers:
        memory = [c["memory_mb"] for c in containers.values()]
        density["container_memory_mb"] = {
            "value": _median(memory),
            "how": f"resident memory, median of {len(containers)} images' containers",
        }
    if base_mb:
        density["container_base_image_mb"] = {"value": base_mb, "how": "unkai/debian:12"}
    if not density:
        raise DriverError(f"nothing of {env} could be measured: no VM runs and no image is built")
    document = {
        "environment": env,
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "instances": vms,
        "container_images": containers,
        "density": density,
    }
    path = measurements_file(root, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    table = Table(title=f"measured overheads of {env}")
    for column in ("overhead", "value", "how"):
        table.add_column(column)
    for name, entry in sorted(density.items()):
        table.add_row(name, str(entry["value"]), entry["how"])
    console.print(table)
    console.print(
        f"[green]kept in[/] {escape(str(path))}; `unkai plan {env}` uses them", highlight=False
    )
