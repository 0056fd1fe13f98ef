"""Capacity and density reports: how full each host is, and what containers would save."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, ValidationError, computed_field

from unkai.errors import ConfigError, PlacementError
from unkai.model import Environment, UnkaiModel
from unkai.placement._place import _Demand, _demands, place
from unkai.placement._values import HostAllocation, Placement, ReportModel, Usage

__all__ = [
    "CONTAINER_BASE_IMAGE_MB",
    "CONTAINER_MEMORY_MB",
    "DEFAULT_SOURCE",
    "VM_GUEST_MEMORY_MB",
    "VM_OS_DISK_GB",
    "CapacityReport",
    "DensityReport",
    "DensitySettings",
    "Footprint",
    "HostDensity",
    "capacity_report",
    "density_report",
    "density_settings",
]

VM_GUEST_MEMORY_MB = 512
"""Memory a VM's guest OS takes before any application runs (kernel, systemd, sshd,
cloud-init, page cache it cannot give back), in MiB."""
VM_OS_DISK_GB = 4
"""Disk a VM's guest OS image takes before any application is installed, in GiB."""
CONTAINER_MEMORY_MB = 10
"""Memory a container costs beyond its application (runtime shim, cgroup, namespaces)."""
CONTAINER_BASE_IMAGE_MB = 256
"""Disk of the shared base image (about a minbase Debian 12 rootfs), in MiB: its layers
are stored once per host however many containers use them."""

_Resource = Literal["cpu", "memory", "disk"]


class DensitySettings(UnkaiModel):
    """The overheads the density report assumes; set under ``settings.density``.

    Example environment YAML::

        settings:
          density: {vm_guest_memory_mb: 768, container_base_image_mb: 180}
    """

    vm_guest_memory_mb: int = Field(
        default=VM_GUEST_MEMORY_MB, ge=0, description="Guest OS memory per VM, in MiB."
    )
    vm_os_disk_gb: int = Field(
        default=VM_OS_DISK_GB, ge=0, description="Guest OS image disk per VM, in GiB."
    )
    container_memory_mb: int = Field(
        default=CONTAINER_MEMORY_MB, ge=0, description="Runtime overhead per container, MiB."
    )
    container_base_image_mb: int = Field(
        default=CONTAINER_BASE_IMAGE_MB,
        ge=0,
        description="Shared base image disk, counted once per host, in MiB.",
    )

    @classmethod
    def from_environment(cls, env: Environment) -> DensitySettings:
        """Read ``env.settings["density"]``; defaults for whatever it leaves out.

        Args:
            env: The environment.

        Returns:
            The settings.

        Raises:
            ConfigError: ``settings.density`` is not a mapping of the fields above with
                non-negative integers; the key path names the bad field.
        """
        raw = env.settings.get("density", {})
        if not isinstance(raw, Mapping):
            raise ConfigError(
                "must be a mapping",
                key_path="settings.density",
                value=raw,
                allowed=", ".join(cls.model_fields),
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            first = err.errors()[0]
            path = ".".join(str(part) for part in ("settings", "density", *first["loc"]))
            raise ConfigError(
                first["msg"],
                key_path=path,
                value=first.get("input"),
                allowed=f"the fields {', '.join(cls.model_fields)}, integers ≥ 0",
            ) from err


class CapacityReport(UnkaiModel):
    """Every host's allocation against its schedulable capacity, and the fleet's total."""

    environment: str = Field(description="Name of the environment.")
    hosts: tuple[HostAllocation, ...] = Field(description="One row per host, by host name.")
    cpus: Usage = Field(description="vCPUs allocated / schedulable over all hosts.")
    memory_mb: Usage = Field(description="MiB allocated / schedulable over all hosts.")
    disk_gb: Usage = Field(description="GiB allocated / schedulable over all hosts.")


def capacity_report(env: Environment, placement: Placement) -> CapacityReport:
    """Recompute every host's allocation from ``placement.assignments``, with totals.

    The numbers come from ``env`` (machine types, disks, pools), not from the
    allocations stored in ``placement``, so a hand-edited placement is reported truly;
    an overfull host shows more than 100 %.

    Args:
        env: The environment that was placed.
        placement: Its placement.

    Returns:
        The report (no side effects).

    Raises:
        PlacementError: ``placement`` does not match ``env``: an instance is missing or
            unknown, or a host is unknown.
    """
    demands = {demand.name: demand for demand in _demands(env)}
    assigned = placement.assignments
    missing = sorted(set(demands) - set(assigned))
    unknown = sorted(set(assigned) - set(demands))
    strange = sorted({host for host in assigned.values() if host not in env.hosts})
    if missing or unknown or strange:
        raise PlacementError(
            f"placement of {placement.environment!r} does not match environment {env.name!r}:"
            f" unplaced instances {missing}, unknown instances {unknown},"
            f" unknown hosts {strange}"
        )
    on_host: dict[str, list[_Demand]] = {name: [] for name in sorted(env.hosts)}
    for name in sorted(assigned):
        on_host[assigned[name]].append(demands[name])
    rows = []
    for name, placed in on_host.items():
        host = env.hosts[name]
        pool = env.host_pools[host.pool]
        rows.append(
            HostAllocation(
                host=name,
                zone=host.zone,
                pool=host.pool,
                instances=tuple(d.name for d in placed),
                cpus=Usage(used=sum(d.cpus for d in placed), capacity=pool.schedulable_cpus(host)),
                memory_mb=Usage(
                    used=sum(d.memory_mb for d in placed),
                    capacity=pool.schedulable_memory_mb(host),
                ),
                disk_gb=Usage(
                    used=sum(d.disk_gb for d in placed), capacity=pool.schedulable_disk_gb(host)
                ),
            )
        )

    def total(resource: Literal["cpus", "memory_mb", "disk_gb"]) -> Usage:
        usages = [getattr(row, resource) for row in rows]
        return Usage(used=sum(u.used for u in usages), capacity=sum(u.capacity for u in usages))

    return CapacityReport(
        environment=env.name,
        hosts=tuple(rows),
        cpus=total("cpus"),
        memory_mb=total("memory_mb"),
        disk_gb=total("disk_gb"),
    )


class Footprint(UnkaiModel):
    """What a set of instances costs one way (VMs or containers), overhead included."""

    cpus: int = Field(ge=0, description="vCPUs (the same either way).")
    memory_mb: int = Field(ge=0, description="Memory in MiB, overhead included.")
    disk_mb: int = Field(ge=0, description="Disk in MiB, overhead included.")
    overhead_memory_mb: int = Field(
        ge=0, description="Of ``memory_mb``: what is spent before any application, MiB."
    )
    overhead_disk_mb: int = Field(
        ge=0, description="Of ``disk_mb``: what is spent before any application, MiB."
    )


class HostDensity(ReportModel):
    """One host's instances as VMs and as containers, and how many of each it holds."""

    host: str = Field(description="Host name.")
    instances: int = Field(ge=0, description="Instances placed on the host.")
    vm: Footprint = Field(description="The instances as VMs (what placement allocates).")
    container: Footprint = Field(description="The same instances as containers.")
    vm_fit: int = Field(ge=0, description="Typical instances the empty host holds as VMs.")
    container_fit: int = Field(
        ge=0, description="Typical instances the empty host holds as containers."
    )
    vm_bound_by: _Resource = Field(description="The resource that limits ``vm_fit``.")
    container_bound_by: _Resource = Field(description="The resource that limits ``container_fit``.")

    @computed_field(description="MiB of memory the containers save against the VMs.")  # type: ignore[prop-decorator]
    @property
    def memory_saved_mb(self) -> int:
        """MiB of memory the containers save against the VMs."""
        return self.vm.memory_mb - self.container.memory_mb

    @computed_field(description="MiB of disk the containers save against the VMs.")  # type: ignore[prop-decorator]
    @property
    def disk_saved_mb(self) -> int:
        """MiB of disk the containers save against the VMs."""
        return self.vm.disk_mb - self.container.disk_mb

    @computed_field(description="``container_fit - vm_fit``: extra instances as containers.")  # type: ignore[prop-decorator]
    @property
    def extra_fit(self) -> int:
        """How many more typical instances the host holds as containers than as VMs."""
        return self.container_fit - self.vm_fit


class DensityReport(ReportModel):
    """The same workloads run as VMs and as containers on the same hosts.

    As VMs, each instance gets its machine type's memory and its disks, of which the
    guest OS takes ``settings.vm_guest_memory_mb`` and ``settings.vm_os_disk_gb``. As
    containers, each instance keeps what its application used inside the VM, plus
    ``settings.container_memory_mb``; the base image's ``container_base_image_mb`` is
    stored once per host that runs any container. CPU is the same either way.
    """

    environment: str = Field(description="Name of the environment.")
    settings: DensitySettings = Field(description="The overheads used.")
    sources: Mapping[str, str] = Field(
        default_factory=dict,
        description=(
            "Where each overhead comes from: ``settings.density``, a measurement (``unkai"
            " measure``, with what and when) or unkai's default."
        ),
    )
    hosts: tuple[HostDensity, ...] = Field(description="One row per host, by host name.")
    vm: Footprint = Field(description="Every instance as a VM.")
    container: Footprint = Field(description="Every instance as a container.")

    @computed_field(description="MiB of memory containers save over the whole fleet.")  # type: ignore[prop-decorator]
    @property
    def memory_saved_mb(self) -> int:
        """MiB of memory containers save over the whole fleet."""
        return self.vm.memory_mb - self.container.memory_mb

    @computed_field(description="MiB of disk containers save over the whole fleet.")  # type: ignore[prop-decorator]
    @property
    def disk_saved_mb(self) -> int:
        """MiB of disk containers save over the whole fleet."""
        return self.vm.disk_mb - self.container.disk_mb

    @computed_field(description="Extra typical instances the fleet holds as containers.")  # type: ignore[prop-decorator]
    @property
    def extra_fit(self) -> int:
        """Σ over hosts of :attr:`HostDensity.extra_fit`."""
        return sum(host.extra_fit for host in self.hosts)


def _costs(demand: _Demand, s: DensitySettings) -> tuple[int, int, int, int]:
    """(guest memory, guest disk, app memory, app disk) of one instance, in MiB."""
    guest_memory = min(s.vm_guest_memory_mb, demand.memory_mb)
    guest_disk = min(s.vm_os_disk_gb * 1024, demand.disk_gb * 1024)
    return (
        guest_memory,
        guest_disk,
        demand.memory_mb - guest_memory,
        demand.disk_gb * 1024 - guest_disk,
    )


def _footprints(placed: list[_Demand], s: DensitySettings) -> tuple[Footprint, Footprint, int]:
    """The VM and container footprints of ``placed`` on one host (``hosts`` = 1)."""
    costs = [_costs(demand, s) for demand in placed]
    cpus = sum(demand.cpus for demand in placed)
    base = s.container_base_image_mb if placed else 0
    vm = Footprint(
        cpus=cpus,
        memory_mb=sum(demand.memory_mb for demand in placed),
        disk_mb=sum(demand.disk_gb for demand in placed) * 1024,
        overhead_memory_mb=sum(c[0] for c in costs),
        overhead_disk_mb=sum(c[1] for c in costs),
    )
    container = Footprint(
        cpus=cpus,
        memory_mb=sum(c[2] for c in costs) + len(placed) * s.container_memory_mb,
        disk_mb=sum(c[3] for c in costs) + base,
        overhead_memory_mb=len(placed) * s.container_memory_mb,
        overhead_disk_mb=base,
    )
    return vm, container, len(placed)


def _fit(
    count: int, needs: tuple[int, int, int], capacity: tuple[int, int, int]
) -> tuple[int, _Resource]:
    """How many instances of the average shape ``needs / count`` fit in ``capacity``."""
    best: tuple[int, _Resource] | None = None
    names: tuple[_Resource, ...] = ("cpu", "memory", "disk")
    for resource, need, cap in zip(names, needs, capacity, strict=True):
        if need <= 0:
            continue  # the resource bounds nothing
        # floor(cap / (need / count)), in exact integers.
        fits = max(cap, 0) * count // need
        if best is None or fits < best[0]:
            best = (fits, resource)
    return best if best is not None else (0, "cpu")


DEFAULT_SOURCE = "assumed: unkai's default"
"""The source of an overhead that neither ``settings.density`` nor a measurement gives."""


def density_settings(
    env: Environment, measured: Mapping[str, tuple[int, str]] | None = None
) -> tuple[DensitySettings, dict[str, str]]:
    """The overheads for ``env`` and where each comes from.

    ``settings.density`` wins (the user said so), then ``measured`` (field → value and
    what measured it), then unkai's defaults.

    Raises:
        ConfigError: ``settings.density`` is invalid.
    """
    settings = DensitySettings.from_environment(env)
    raw = env.settings.get("density")
    given = set(raw) if isinstance(raw, Mapping) else set()
    values = settings.model_dump()
    sources: dict[str, str] = {}
    for name in DensitySettings.model_fields:
        if name in given:
            sources[name] = "settings.density"
        elif measured is not None and name in measured:
            values[name], sources[name] = measured[name]
        else:
            sources[name] = DEFAULT_SOURCE
    return DensitySettings.model_validate(values), sources


def density_report(
    env: Environment,
    *,
    placement: Placement | None = None,
    measured: Mapping[str, tuple[int, str]] | None = None,
) -> DensityReport:
    """Compare the instances of ``env`` run as VMs and as containers on the same hosts.

    Each host's instances (as :func:`place` put them) are costed both ways (see
    :class:`DensityReport`). Each host also says how many *typical* instances it holds
    when empty, as VMs and as containers: the typical instance is the average of the
    instances on that host, or of all instances when the host has none; for
    containers, the shared base image is taken off the host's disk first.

    Args:
        env: The environment; overheads come from ``env.settings["density"]``
            (:class:`DensitySettings`), then ``measured``, then the module constants.
        placement: The placement to use; computed with :func:`place` when omitted.
        measured: Overheads measured on the deployed environment: field of
            :class:`DensitySettings` → (value, what measured it and when).

    Returns:
        The report (pure: no side effects).

    Raises:
        PlacementError: ``placement`` was omitted and ``env`` cannot be placed.
        ConfigError: ``settings.density`` is invalid.
    """
    settings, sources = density_settings(env, measured)
    if placement is None:
        placement = place(env)
    demands = {demand.name: demand for demand in _demands(env)}
    everything = [demands[name] for name in sorted(demands)]
    rows = []
    for name in sorted(env.hosts):
        host = env.hosts[name]
        pool = env.host_pools[host.pool]
        allocation = placement.hosts.get(name)
        placed = [demands[i] for i in allocation.instances] if allocation else []
        vm, container, _ = _footprints(placed, settings)
        # The typical instance: the host's own, or the fleet's for an empty host. The
        # shared base image comes off the host's disk once, not off each container.
        typical_vm, typical_container, count = _footprints(placed or everything, settings)
        cpus = pool.schedulable_cpus(host)
        memory = pool.schedulable_memory_mb(host)
        disk = pool.schedulable_disk_gb(host) * 1024
        vm_fit, vm_bound = _fit(
            count, (typical_vm.cpus, typical_vm.memory_mb, typical_vm.disk_mb), (cpus, memory, disk)
        )
        container_fit, container_bound = _fit(
            count,
            (
                typical_container.cpus,
                typical_container.memory_mb,
                typical_container.disk_mb - typical_container.overhead_disk_mb,
            ),
            (cpus, memory, disk - settings.container_base_image_mb),
        )
        rows.append(
            HostDensity(
                host=name,
                instances=len(placed),
                vm=vm,
                container=container,
                vm_fit=vm_fit,
                container_fit=container_fit,
                vm_bound_by=vm_bound,
                container_bound_by=container_bound,
            )
        )

    def total(kind: Literal["vm", "container"]) -> Footprint:
        parts = [getattr(row, kind) for row in rows]
        return Footprint(
            cpus=sum(p.cpus for p in parts),
            memory_mb=sum(p.memory_mb for p in parts),
            disk_mb=sum(p.disk_mb for p in parts),
            overhead_memory_mb=sum(p.overhead_memory_mb for p in parts),
            overhead_disk_mb=sum(p.overhead_disk_mb for p in parts),
        )

    return DensityReport(
        environment=env.name,
        settings=settings,
        sources=sources,
        hosts=tuple(rows),
        vm=total("vm"),
        container=total("container"),
    )
