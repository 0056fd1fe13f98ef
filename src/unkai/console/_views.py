"""What each page of the console shows, read through the functions the CLI uses.

Nothing here has a source of its own: the plan is :mod:`unkai.placement`'s (as
``unkai plan`` computes it), the groups and pools are :func:`unkai.cli.status.cluster_status`
(as ``unkai status`` reads them), the VMs are read from each host's libvirt (the
environment's domains, as ``destroy``'s sweep finds them) and from the stack's outputs
(as ``up`` prints them), and the history is the engine's. Every function returns plain
frozen values the templates draw; none changes anything. Secrets are never read: the
stack's outputs carry them as the engine's secret marker, which is shown as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from unkai.cli._updates import KeptUpdate, Step
from unkai.model import Environment
from unkai.placement import (
    CapacityReport,
    DensityReport,
    Placement,
    capacity_report,
    density_report,
    place,
)

__all__ = [
    "FAILING_PHASES",
    "Bar",
    "ClusterView",
    "HistoryEntry",
    "HostView",
    "PlanView",
    "VmView",
    "history_entries",
    "host_views",
    "plan_view",
    "vm_views",
    "zones",
]


FAILING_PHASES = frozenset({"unhealthy", "stopped", "unreachable", "lost"})
"""A group member's phases (the operator's) that the console marks as failing."""


@dataclass(frozen=True)
class Bar:
    """One resource of one host: allocated against schedulable and physical.

    Attributes:
        allocated: What the placed instances take.
        schedulable: What placement may hand out (overcommit applied).
        physical: What the host has.
        unit: ``vCPU``, ``GiB``.
    """

    allocated: float
    schedulable: float
    physical: float
    unit: str

    @property
    def scale(self) -> float:
        """The bar's full width: the largest of the three."""
        return max(self.allocated, self.schedulable, self.physical, 1e-9)

    def width(self, value: float) -> float:
        """``value`` as a percentage of the bar's width, rounded to 0.1."""
        return round(100.0 * value / self.scale, 1)

    @property
    def percent(self) -> float:
        """Allocated as a percentage of schedulable (0 for none)."""
        return round(100.0 * self.allocated / self.schedulable, 1) if self.schedulable else 0.0

    @property
    def overcommitted(self) -> float:
        """What is allocated beyond the physical amount (0 when it fits)."""
        return max(0.0, self.allocated - self.physical)

    @property
    def level(self) -> str:
        """``full`` past 90 %, ``busy`` past 75 %, else ``ok``: the bar's colour."""
        return "full" if self.percent > 90 else "busy" if self.percent > 75 else "ok"


@dataclass(frozen=True)
class VmView:
    """A VM as its host reports it, with what ``up`` and the operator recorded.

    Attributes:
        name: The domain's name.
        host: The host it runs on.
        state: libvirt's state (``running``, ``shut off``…).
        vcpus: vCPUs it boots with.
        memory_mb: Memory it boots with.
        disk: Its boot disk's source on the host.
        group: The instance group it is a member of; "" for a plain instance.
        addresses: Its guest addresses, as recorded.
        ssh_port: Its forwarded SSH port on the host, if any.
        boot_seconds: Seconds from start to cloud-init finished, as ``up`` measured.
        health: A group member's phase as the operator sees it.
    """

    name: str
    host: str
    state: str
    vcpus: int
    memory_mb: int
    disk: str = ""
    group: str = ""
    addresses: tuple[str, ...] = ()
    ssh_port: int | None = None
    boot_seconds: float | None = None
    health: str = ""

    @property
    def ok(self) -> bool:
        """Whether it runs (and, for a member, is not unhealthy)."""
        return self.state == "running" and self.health not in FAILING_PHASES


@dataclass(frozen=True)
class HostView:
    """A host: its capacity bars, what placement puts on it and what runs on it.

    Attributes:
        name: The host.
        zone: Its zone.
        pool: Its host pool.
        address: Where it is reached.
        cpus: vCPUs.
        memory: Memory in GiB.
        disk: Disk in GiB.
        planned: The instances placement puts on it.
        vms: The environment's VMs running there; ``None`` when it was not read.
        error: Why it was not read (unreachable, libvirtd refusing).
    """

    name: str
    zone: str
    pool: str
    address: str
    cpus: Bar
    memory: Bar
    disk: Bar
    planned: tuple[str, ...]
    vms: tuple[VmView, ...] | None = None
    error: str = ""


@dataclass(frozen=True)
class PlanView:
    """The plan as ``unkai plan`` computes it."""

    placement: Placement
    capacity: CapacityReport
    density: DensityReport


@dataclass(frozen=True)
class ClusterView:
    """One cluster as ``unkai status`` reads it (its ``cluster_status`` document)."""

    name: str
    status: Mapping[str, Any]


@dataclass(frozen=True)
class HistoryEntry:
    """One engine update of the stack.

    Attributes:
        version: The update's number.
        kind: ``update``, ``refresh``, ``destroy``, ``preview``…
        result: ``succeeded``, ``failed``, ``in-progress``.
        started: When it started (UTC, to the second).
        seconds: How long it took; None while it runs.
        changes: Its counts by operation (``create``, ``update``, ``replace``, ``delete``,
            ``same``).
        message: Its message.
        steps: What it did to each resource, and why (what ``unkai up`` kept of it;
            empty for the engine's other updates).
    """

    version: int
    kind: str
    result: str
    started: str
    seconds: float | None
    changes: Mapping[str, int] = field(default_factory=dict)
    message: str = ""
    steps: tuple[Step, ...] = ()


def plan_view(env: Environment, measured: Mapping[str, tuple[int, str]] | None) -> PlanView:
    """Place ``env`` and report capacity and density, as ``unkai plan`` does."""
    placement = place(env)
    return PlanView(
        placement=placement,
        capacity=capacity_report(env, placement),
        density=density_report(env, placement=placement, measured=measured),
    )


def host_views(
    env: Environment,
    plan: PlanView,
    vms: Mapping[str, Sequence[VmView] | str],
) -> list[HostView]:
    """Each host of ``env`` with its bars, by zone then name.

    Args:
        env: The environment.
        plan: Its plan.
        vms: Host → the VMs read there, or why it could not be read (a host missing is
            one not read at all).
    """
    views = []
    for row in plan.capacity.hosts:
        host = env.hosts[row.host]
        read = vms.get(row.host)
        views.append(
            HostView(
                name=row.host,
                zone=row.zone,
                pool=row.pool,
                address=host.address,
                cpus=Bar(row.cpus.used, row.cpus.capacity, host.cpus, "vCPU"),
                memory=Bar(
                    row.memory_mb.used / 1024,
                    row.memory_mb.capacity / 1024,
                    host.memory_mb / 1024,
                    "GiB",
                ),
                disk=Bar(row.disk_gb.used, row.disk_gb.capacity, host.disk_gb, "GiB"),
                planned=row.instances,
                vms=None if read is None or isinstance(read, str) else tuple(read),
                error=read if isinstance(read, str) else "",
            )
        )
    return sorted(views, key=lambda view: (view.zone, view.name))


def _members(clusters: Sequence[ClusterView]) -> dict[str, Mapping[str, Any]]:
    """Member name → the operator's view of it, from every cluster read."""
    found: dict[str, Mapping[str, Any]] = {}
    for cluster in clusters:
        for seen in (cluster.status.get("groups") or {}).values():
            for member in seen.get("members") or ():
                found[member["name"]] = member
    return found


def _group_of(name: str, groups: Sequence[str]) -> str:
    """The group whose member ``name`` is (``web-3`` → ``web``), or ""."""
    for group in groups:
        rest = name.removeprefix(f"{group}-")
        if rest != name and rest.isdigit():
            return group
    return ""


def vm_views(
    host: str,
    domains: Sequence[Any],
    *,
    owner: str,
    groups: Sequence[str],
    outputs: Mapping[str, Mapping[str, Any]],
    clusters: Sequence[ClusterView],
) -> list[VmView]:
    """The VMs of one host, from its domains and what was recorded about them.

    Args:
        host: The host's name.
        domains: Its domains of the environment (:class:`unkai.drivers.libvirt.DomainInfo`).
        owner: The first part of the environment's domain names (``unkai-local``): a VM
            is shown by its instance's name, the domain's without it.
        groups: The environment's instance groups: a member is named ``<group>-<n>``.
        outputs: The stack's ``instances`` output (name → what ``up`` recorded).
        clusters: The clusters read, for the members the operator keeps.
    """
    members = _members(clusters)
    views = []
    for domain in domains:
        name = domain.name.removeprefix(f"{owner}-")
        recorded = outputs.get(name) or {}
        member = members.get(name) or {}
        address = member.get("address")
        addresses = tuple(recorded.get("ips") or ([address] if address else []))
        port = recorded.get("ssh_port")
        boot = recorded.get("boot_seconds")
        views.append(
            VmView(
                name=name,
                host=host,
                state=domain.state,
                vcpus=domain.vcpus,
                memory_mb=domain.memory_mb,
                disk=next((d.source or "" for d in domain.disks if d.device == "disk"), ""),
                group=_group_of(name, groups),
                addresses=addresses,
                ssh_port=int(port) if port else None,
                boot_seconds=float(boot) if boot else None,
                health=str(member.get("phase") or ""),
            )
        )
    return views


MATCH_SLACK = dt.timedelta(seconds=5)
"""How far apart an engine update's start and ``unkai up``'s own times may be."""


def history_entries(updates: Sequence[Any], kept: Sequence[KeptUpdate] = ()) -> list[HistoryEntry]:
    """The engine's update summaries (``Stack.history``) as entries, newest first.

    An update gets the steps of the ``unkai up`` that ran it: the kept update whose run
    spans its start (updates of one stack never overlap: ``up`` holds its lock).
    """
    entries = []
    for update in updates:
        started = _time(update.start_time)
        ended = _time(update.end_time) if update.end_time else None
        steps: tuple[Step, ...] = ()
        if started is not None and str(update.kind) == "update":
            for run in kept:
                if run.started - MATCH_SLACK <= started <= run.ended + MATCH_SLACK:
                    steps = run.steps
        entries.append(
            HistoryEntry(
                version=int(update.version),
                kind=str(update.kind),
                result=str(update.result),
                started=started.strftime("%Y-%m-%d %H:%M:%S") if started else "",
                seconds=(ended - started).total_seconds() if started and ended else None,
                changes=dict(sorted((update.resource_changes or {}).items())),
                message=str(update.message or ""),
                steps=steps,
            )
        )
    return sorted(entries, key=lambda entry: entry.version, reverse=True)


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return None


def zones(hosts: Sequence[HostView]) -> dict[str, list[HostView]]:
    """``hosts`` grouped by zone, in order."""
    grouped: dict[str, list[HostView]] = {}
    for host in hosts:
        grouped.setdefault(host.zone, []).append(host)
    return grouped
