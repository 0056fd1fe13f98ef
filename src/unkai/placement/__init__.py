"""Placement and capacity: which host runs each instance, and how full the hosts are.

Pure: no I/O, no clock, no randomness. :func:`place` assigns every instance of an
environment to a host with filters (zone, pinned host, host selector labels, capacity
with overcommit, hard anti-affinity) and weighers (``spread``/``pack``), and raises
:class:`PlacementFailed` listing every instance that fits nowhere, with the resource and
the shortfall. :func:`capacity_report` and :func:`density_report` turn a placement into
the numbers ``unkai plan`` shows.

Example:
    >>> from unkai.model import Environment
    >>> from unkai.placement import place
    >>> host = {"address": "10.0.0.1", "ssh_user": "ops", "cpus": 8, "memory_mb": 17408,
    ...         "disk_gb": 200, "cpu_vendor": "amd", "pool": "general", "zone": "a"}
    >>> env = Environment.model_validate({
    ...     "name": "lab",
    ...     "zones": {"a": {}},
    ...     "host_pools": {"general": {"zone": "a"}},
    ...     "hosts": {"h1": host, "h2": {**host, "address": "10.0.0.2"}},
    ...     "vm_images": {"debian-12": {"version": "1", "disk_gb": 10}},
    ...     "instance_templates": {"web": {"machine_type": "e2-standard-2", "image": "debian-12"}},
    ...     "instance_groups": {"web": {"template": "web", "size": 2}},
    ... })
    >>> placement = place(env)
    >>> dict(placement.assignments)
    {'web-0': 'h1', 'web-1': 'h2'}
    >>> placement.hosts["h1"].memory_mb.used, placement.hosts["h1"].memory_mb.capacity
    (8192, 16384)
"""

from __future__ import annotations

from unkai.placement._place import HOST_SELECTOR_PREFIX, place
from unkai.placement._reports import (
    CONTAINER_BASE_IMAGE_MB,
    CONTAINER_MEMORY_MB,
    DEFAULT_SOURCE,
    VM_GUEST_MEMORY_MB,
    VM_OS_DISK_GB,
    CapacityReport,
    DensityReport,
    DensitySettings,
    Footprint,
    HostDensity,
    capacity_report,
    density_report,
    density_settings,
)
from unkai.placement._values import (
    HostAllocation,
    Placement,
    PlacementFailed,
    PlacementProblem,
    Reason,
    Shortfall,
    Usage,
    compact_names,
)

__all__ = [
    "CONTAINER_BASE_IMAGE_MB",
    "CONTAINER_MEMORY_MB",
    "DEFAULT_SOURCE",
    "HOST_SELECTOR_PREFIX",
    "VM_GUEST_MEMORY_MB",
    "VM_OS_DISK_GB",
    "CapacityReport",
    "DensityReport",
    "DensitySettings",
    "Footprint",
    "HostAllocation",
    "HostDensity",
    "Placement",
    "PlacementFailed",
    "PlacementProblem",
    "Reason",
    "Shortfall",
    "Usage",
    "capacity_report",
    "compact_names",
    "density_report",
    "density_settings",
    "place",
]
