"""Builders shared by the placement tests: small environments written in a few lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unkai.model import Environment

Build = Callable[..., Environment]


def host(
    cpus: int = 8,
    memory_mb: int = 17408,
    disk_gb: int = 200,
    *,
    zone: str = "a",
    pool: str | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A host document; with the default 1024 MiB reserve, 17408 MiB schedules 16 GiB."""
    return {
        "address": "10.0.0.1",
        "ssh_user": "ops",
        "cpus": cpus,
        "memory_mb": memory_mb,
        "disk_gb": disk_gb,
        "cpu_vendor": "amd",
        "pool": pool or f"pool-{zone}",
        "zone": zone,
        "labels": labels or {},
    }


def build_env(
    hosts: dict[str, dict[str, Any]],
    *,
    instances: dict[str, dict[str, Any]] | None = None,
    templates: dict[str, dict[str, Any]] | None = None,
    groups: dict[str, dict[str, Any]] | None = None,
    pools: dict[str, dict[str, Any]] | None = None,
    settings: dict[str, Any] | None = None,
    image_gb: int = 10,
) -> Environment:
    """An environment with zones a and b, a pool per zone (overridable) and one image."""
    zones = {"a", "b"} | {doc["zone"] for doc in hosts.values()}
    all_pools: dict[str, dict[str, Any]] = {f"pool-{z}": {"zone": z} for z in sorted(zones)}
    all_pools.update(pools or {})

    def spec(doc: dict[str, Any]) -> dict[str, Any]:
        return {"image": "img", **doc}

    return Environment.model_validate(
        {
            "name": "test",
            "zones": {z: {} for z in sorted(zones)},
            "host_pools": all_pools,
            "hosts": hosts,
            "vm_images": {"img": {"version": "1", "disk_gb": image_gb}},
            "instances": {k: spec(v) for k, v in (instances or {}).items()},
            "instance_templates": {k: spec(v) for k, v in (templates or {}).items()},
            "instance_groups": groups or {},
            "settings": settings or {},
        }
    )
