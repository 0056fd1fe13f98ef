"""The scheduler: filters, then weighers, over heaps of hosts.

How it works, and why it is fast (see :func:`place` for the contract):

* Every host gets an index in name order, so "ties broken by host name" is "ties broken
  by index", and the result never depends on the order the input was written in.
* Static filters (zone, pinned host, label selector) depend only on the instance, so the
  hosts that pass them form a *bucket*, computed once per distinct filter key.
* Within a bucket, candidates sit in a heap ordered by the weigher: ``(load, index)``
  for ``spread``, ``(-load, index)`` for ``pack``, where load is the host's dominant
  share (the largest of its CPU, memory and disk fractions in use). There is one heap
  per (bucket, instance shape, weigher, anti-affinity group). Resources only ever
  decrease, so a host that cannot fit a shape now never will: it is dropped from that
  heap for good, as is a host that already runs a member of the heap's anti-affinity
  group. Every pop therefore either places the instance or permanently discards an
  entry.
* A placement changes one host's load. Rather than re-keying that host in every heap,
  each heap remembers how far it has read a global log of placements and, before it is
  used, pushes fresh entries for the hosts placed on since; older entries carry a stale
  version and are skipped when popped.

With ``I`` instances, ``H`` hosts and ``K`` distinct heaps the cost is
``O((I + K·H) log H)`` plus log catch-up, instead of the ``O(I·H)`` of scanning every
host for every instance. Instances with identical shapes are processed next to each
other (first-fit-decreasing order), so each heap is used in one burst and its catch-up
stays short.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from unkai.model import Environment, Instance, MachineType, machine_type
from unkai.placement._values import (
    _MEMBER,
    HostAllocation,
    Placement,
    PlacementFailed,
    PlacementProblem,
    Shortfall,
    Usage,
)

__all__ = ["HOST_SELECTOR_PREFIX", "place"]

HOST_SELECTOR_PREFIX = "placement.unkai.dev/"
"""Instance labels under this prefix select hosts: ``placement.unkai.dev/disk: ssd``
places the instance only on hosts whose labels (the pool's, overridden by the host's)
include ``disk: ssd``. Other instance labels do not affect placement."""

_Weigher = Literal["spread", "pack"]
_Resource = Literal["cpu", "memory", "disk"]
_BucketKey = tuple[str | None, str | None, tuple[tuple[str, str], ...]]
_HeapKey = tuple[_BucketKey, int, int, int, _Weigher, str | None]
_Entry = tuple[float, int, int]


@dataclass(frozen=True)
class _Demand:
    """One instance as the scheduler sees it."""

    name: str
    cpus: int
    memory_mb: int
    disk_gb: int
    zone: str | None
    pin: str | None
    selector: tuple[tuple[str, str], ...]
    weigher: _Weigher
    group: str | None  # set only for members of a group with anti_affinity

    @property
    def bucket(self) -> _BucketKey:
        return (self.zone, self.pin, self.selector)

    @property
    def shape(self) -> str:
        return f"{self.cpus} vCPU, {self.memory_mb} MiB, {self.disk_gb} GiB"

    def order(self) -> tuple[int, int, int, int, str, str, int]:
        # Pinned instances have no choice, so they claim their host first; then the
        # biggest first (memory is what usually runs out), identical shapes together.
        match = _MEMBER.fullmatch(self.name)
        stem, index = (match[1], int(match[2])) if match else (self.name, -1)
        return (
            0 if self.pin else 1,
            -self.memory_mb,
            -self.cpus,
            -self.disk_gb,
            self.group or "",
            stem,
            index,
        )


class _Fleet:
    """Mutable per-run state of every host, indexed in host-name order."""

    def __init__(self, env: Environment) -> None:
        hosts = [env.hosts[name] for name in sorted(env.hosts)]
        self.names = [host.name for host in hosts]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.zone = [host.zone for host in hosts]
        self.pool = [host.pool for host in hosts]
        self.labels: list[Mapping[str, str]] = []
        self.cap_c: list[int] = []
        self.cap_m: list[int] = []
        self.cap_d: list[int] = []
        for host in hosts:
            pool = env.host_pools[host.pool]
            self.labels.append({**pool.labels, **host.labels})
            self.cap_c.append(pool.schedulable_cpus(host))
            self.cap_m.append(pool.schedulable_memory_mb(host))
            self.cap_d.append(pool.schedulable_disk_gb(host))
        # max() keeps the first of equals: the largest host whose name sorts first.
        resources: tuple[tuple[_Resource, list[int]], ...] = (
            ("cpu", self.cap_c),
            ("memory", self.cap_m),
            ("disk", self.cap_d),
        )
        self.largest = {
            resource: max(range(len(caps)), key=caps.__getitem__, default=0)
            for resource, caps in resources
        }
        count = len(hosts)
        self.used_c = [0] * count
        self.used_m = [0] * count
        self.used_d = [0] * count
        self.version = [0] * count
        self.log: list[int] = []
        self.instances: list[list[str]] = [[] for _ in range(count)]

    def load(self, i: int) -> float:
        return max(
            self.used_c[i] / self.cap_c[i],
            self.used_m[i] / self.cap_m[i],
            self.used_d[i] / self.cap_d[i],
        )

    def fits(self, i: int, demand: _Demand) -> bool:
        return (
            self.used_c[i] + demand.cpus <= self.cap_c[i]
            and self.used_m[i] + demand.memory_mb <= self.cap_m[i]
            and self.used_d[i] + demand.disk_gb <= self.cap_d[i]
        )

    def allocate(self, i: int, demand: _Demand) -> None:
        self.used_c[i] += demand.cpus
        self.used_m[i] += demand.memory_mb
        self.used_d[i] += demand.disk_gb
        self.version[i] += 1
        self.log.append(i)
        self.instances[i].append(demand.name)

    def shortfalls(self, i: int, demand: _Demand) -> tuple[Shortfall, ...]:
        rows: tuple[tuple[_Resource, int, int, int, str], ...] = (
            ("cpu", demand.cpus, self.cap_c[i], self.used_c[i], "vCPU"),
            ("memory", demand.memory_mb, self.cap_m[i], self.used_m[i], "MiB"),
            ("disk", demand.disk_gb, self.cap_d[i], self.used_d[i], "GiB"),
        )
        return tuple(
            Shortfall(resource, needed, capacity - used, capacity, unit)
            for resource, needed, capacity, used, unit in rows
            if needed > capacity - used
        )

    def where(self, i: int) -> str:
        return f"{self.names[i]} (zone {self.zone[i]})"


@dataclass
class _Heap:
    """Candidates of one (bucket, shape, weigher, group), best first."""

    weigher: _Weigher
    state: bytearray  # per host: 0 not a candidate, 1 candidate, 2 dropped for good
    entries: list[_Entry] = field(default_factory=list)
    read: int = 0  # how much of the fleet's placement log the entries reflect

    def key(self, fleet: _Fleet, i: int) -> _Entry:
        load = fleet.load(i)
        return (load if self.weigher == "spread" else -load, i, fleet.version[i])

    def catch_up(self, fleet: _Fleet) -> None:
        log = fleet.log
        if self.read < len(log):
            for i in dict.fromkeys(log[self.read :]):
                if self.state[i] == 1:
                    heapq.heappush(self.entries, self.key(fleet, i))
            self.read = len(log)


def _selector(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    cut = len(HOST_SELECTOR_PREFIX)
    return tuple(
        sorted(
            (key[cut:], value)
            for key, value in labels.items()
            if key.startswith(HOST_SELECTOR_PREFIX)
        )
    )


def _demands(
    env: Environment,
    previous: Mapping[str, str] | None = None,
    exclude: frozenset[str] = frozenset(),
) -> list[_Demand]:
    previous = previous or {}
    machines: dict[str, MachineType] = {}
    demands = []
    for instance in env.all_instances():
        if instance.name in exclude:
            continue
        machine = machines.get(instance.machine_type)
        if machine is None:
            machine = machines[instance.machine_type] = machine_type(instance.machine_type)
        group = env.instance_groups[instance.group] if instance.group else None
        demands.append(
            _Demand(
                name=instance.name,
                cpus=machine.cpus,
                memory_mb=machine.memory_mb,
                disk_gb=_disk_gb(instance),
                zone=instance.zone,
                pin=instance.host or _kept(previous.get(instance.name), env),
                selector=_selector(instance.labels),
                weigher=group.spread if group else "spread",
                group=group.name if group and group.anti_affinity else None,
            )
        )
    return demands


def _kept(host: str | None, env: Environment) -> str | None:
    """The host an instance ran on before, if the environment still has it."""
    return host if host is not None and host in env.hosts else None


def _disk_gb(instance: Instance) -> int:
    # all_instances() resolved every size; thin provisioning is not counted on.
    return sum(disk.size_gb or 0 for disk in instance.disks)


class _Scheduler:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.fleet = _Fleet(env)
        self.buckets: dict[_BucketKey, list[int]] = {}
        self.heaps: dict[_HeapKey, _Heap] = {}
        self.group_hosts: dict[str, set[int]] = {}
        self.assignments: dict[str, str] = {}
        self.problems: list[PlacementProblem] = []
        self.diagnoses: dict[tuple[object, ...], tuple[int, PlacementProblem]] = {}

    def bucket(self, demand: _Demand) -> list[int]:
        key = demand.bucket
        found = self.buckets.get(key)
        if found is None:
            fleet = self.fleet
            candidates = range(len(fleet.names))
            if demand.pin is not None:
                candidates = range(fleet.index[demand.pin], fleet.index[demand.pin] + 1)
            found = [
                i
                for i in candidates
                if (demand.zone is None or fleet.zone[i] == demand.zone)
                and all(fleet.labels[i].get(k) == v for k, v in demand.selector)
            ]
            self.buckets[key] = found
        return found

    def run(self, demands: Sequence[_Demand]) -> None:
        feasible = [d for d in demands if not self.too_big(d) and not self.filtered_out(d)]
        feasible = self.anti_affinity_limits(feasible)
        for demand in sorted(feasible, key=_Demand.order):
            self.place_one(demand)

    # -- checks before scheduling -------------------------------------------------------

    def too_big(self, demand: _Demand) -> bool:
        fleet = self.fleet
        if not fleet.names:
            self.fail(demand, "zone", "the environment has no hosts")
            return True
        reasons: list[str] = []
        shortfalls: list[Shortfall] = []
        largest: int | None = None
        rows: tuple[tuple[_Resource, int, list[int], str], ...] = (
            ("cpu", demand.cpus, fleet.cap_c, "vCPU"),
            ("memory", demand.memory_mb, fleet.cap_m, "MiB"),
            ("disk", demand.disk_gb, fleet.cap_d, "GiB"),
        )
        for resource, needed, caps, unit in rows:
            best = fleet.largest[resource]
            if needed > caps[best]:
                largest = best if largest is None else largest
                shortfalls.append(Shortfall(resource, needed, caps[best], caps[best], unit))
                reasons.append(
                    f"{resource} needs {needed} {unit} but the largest host"
                    f" {fleet.where(best)} has {caps[best]} {unit} schedulable"
                )
        if largest is None:
            return False
        self.problems.append(
            PlacementProblem(
                instance=demand.name,
                reason=shortfalls[0].resource,
                shape=demand.shape,
                detail=f"larger than any host: {'; '.join(reasons)}",
                host=fleet.names[largest],
                shortfalls=tuple(shortfalls),
            )
        )
        return True

    def filtered_out(self, demand: _Demand) -> bool:
        if self.bucket(demand):
            return False
        fleet = self.fleet
        zone_ok = [
            i
            for i in range(len(fleet.names))
            if demand.zone is None or fleet.zone[i] == demand.zone
        ]
        if not zone_ok:
            self.fail(demand, "zone", f"no host is in zone {demand.zone}")
        else:
            wanted = ", ".join(f"{k}={v}" for k, v in demand.selector)
            where = f"host {demand.pin}" if demand.pin else "no host"
            scope = f" in zone {demand.zone}" if demand.zone else ""
            verb = "lacks" if demand.pin else "has"
            self.fail(demand, "labels", f"{where}{scope} {verb} the labels {wanted}")
        return True

    def anti_affinity_limits(self, demands: list[_Demand]) -> list[_Demand]:
        members: dict[str, list[_Demand]] = {}
        for demand in demands:
            if demand.group is not None:
                members.setdefault(demand.group, []).append(demand)
        rejected: set[str] = set()
        for group, group_members in sorted(members.items()):
            # Members pinned to their hosts (sticky placement) each have a bucket of one:
            # the group has the hosts of all its members' buckets.
            hosts = set().union(*(self.bucket(member) for member in group_members))
            if len(group_members) <= len(hosts):
                continue
            size = len(group_members)
            scope = f" in zone {group_members[0].zone}" if group_members[0].zone else ""
            for demand in sorted(group_members, key=_Demand.order)[len(hosts) :]:
                rejected.add(demand.name)
                self.fail(
                    demand,
                    "anti-affinity",
                    f"instance group {group} has anti_affinity, so its {size} members need"
                    f" {size} different hosts, but only {len(hosts)} hosts{scope} pass its"
                    f" filters; add hosts, or set instance_groups.{group}.anti_affinity to"
                    " false to let members share a host",
                )
        return [demand for demand in demands if demand.name not in rejected]

    # -- scheduling ---------------------------------------------------------------------

    def heap(self, demand: _Demand) -> _Heap:
        key: _HeapKey = (
            demand.bucket,
            demand.cpus,
            demand.memory_mb,
            demand.disk_gb,
            demand.weigher,
            demand.group,
        )
        heap = self.heaps.get(key)
        if heap is None:
            fleet = self.fleet
            used = self.group_hosts.get(demand.group, set()) if demand.group else set()
            heap = _Heap(weigher=demand.weigher, state=bytearray(len(fleet.names)))
            for i in self.bucket(demand):
                if i not in used and fleet.fits(i, demand):
                    heap.state[i] = 1
                    heap.entries.append(heap.key(fleet, i))
                else:
                    heap.state[i] = 2
            heapq.heapify(heap.entries)
            heap.read = len(fleet.log)
            self.heaps[key] = heap
        return heap

    def place_one(self, demand: _Demand) -> None:
        fleet = self.fleet
        heap = self.heap(demand)
        heap.catch_up(fleet)
        used = self.group_hosts.setdefault(demand.group, set()) if demand.group else None
        entries, state, version = heap.entries, heap.state, fleet.version
        while entries:
            _, i, seen = heapq.heappop(entries)
            if seen != version[i] or state[i] != 1:
                continue  # stale: a fresher entry for this host is in the heap, or none
            if (used is not None and i in used) or not fleet.fits(i, demand):
                state[i] = 2
                continue
            fleet.allocate(i, demand)
            self.assignments[demand.name] = fleet.names[i]
            if used is not None:
                used.add(i)
                state[i] = 2
            return
        self.diagnose(demand)

    # -- errors -------------------------------------------------------------------------

    def fail(
        self, demand: _Demand, reason: Literal["zone", "labels", "anti-affinity"], why: str
    ) -> None:
        self.problems.append(
            PlacementProblem(
                instance=demand.name,
                reason=reason,
                shape=demand.shape,
                detail=why,
            )
        )

    def diagnose(self, demand: _Demand) -> None:
        # Nothing changes between placements: an overfull fleet has thousands of
        # instances failing on the same heap, and they share one diagnosis.
        key = (demand.bucket, demand.cpus, demand.memory_mb, demand.disk_gb, demand.group)
        cached = self.diagnoses.get(key)
        if cached is not None and cached[0] == len(self.fleet.log):
            self.problems.append(replace(cached[1], instance=demand.name))
            return
        self._diagnose(demand)
        self.diagnoses[key] = (len(self.fleet.log), self.problems[-1])

    def _diagnose(self, demand: _Demand) -> None:
        fleet = self.fleet
        used = self.group_hosts.get(demand.group, set()) if demand.group else set()
        candidates = [i for i in self.bucket(demand) if i not in used]
        if not candidates:
            self.fail(
                demand,
                "anti-affinity",
                f"every host that passes its filters already runs a member of instance"
                f" group {demand.group} (anti_affinity)",
            )
            return

        def closeness(i: int) -> tuple[int, float, int]:
            short = fleet.shortfalls(i, demand)
            return (len(short), sum(s.short / max(s.capacity, 1) for s in short), i)

        best = min(candidates, key=closeness)
        short = fleet.shortfalls(best, demand)
        missing = ", ".join(
            f"{s.resource} short by {s.short} {s.unit}"
            f" (needs {s.needed}, {s.free} free of {s.capacity})"
            for s in short
        )
        fine = ", ".join(
            f"{name} ok"
            for name in ("cpu", "memory", "disk")
            if name not in {s.resource for s in short}
        )
        message = f"{missing} on the best host {fleet.where(best)}"
        if fine:
            message += f"; {fine}"
        if used:
            count = len(used)
            message += (
                f"; {count} host{'s' if count > 1 else ''} skipped: already running a member"
                f" of instance group {demand.group} (anti_affinity)"
            )
        self.problems.append(
            PlacementProblem(
                instance=demand.name,
                shape=demand.shape,
                reason=short[0].resource,
                detail=message,
                host=fleet.names[best],
                shortfalls=short,
            )
        )

    def result(self) -> Placement:
        fleet = self.fleet
        hosts = {
            name: HostAllocation(
                host=name,
                zone=fleet.zone[i],
                pool=fleet.pool[i],
                instances=tuple(sorted(fleet.instances[i])),
                cpus=Usage(used=fleet.used_c[i], capacity=fleet.cap_c[i]),
                memory_mb=Usage(used=fleet.used_m[i], capacity=fleet.cap_m[i]),
                disk_gb=Usage(used=fleet.used_d[i], capacity=fleet.cap_d[i]),
            )
            for i, name in enumerate(fleet.names)
        }
        return Placement(
            environment=self.env.name,
            assignments={name: self.assignments[name] for name in sorted(self.assignments)},
            hosts=hosts,
        )


def place(
    env: Environment,
    *,
    previous: Mapping[str, str] | None = None,
    unavailable: Collection[str] = (),
) -> Placement:
    """Assign every instance of ``env`` to a host.

    Filters first: the instance's zone, its pinned host, its host selector (labels under
    :data:`HOST_SELECTOR_PREFIX`), free capacity (vCPUs, memory and disk as
    :class:`~unkai.model.HostPool` makes them schedulable: overcommit ratios and the
    hypervisor's memory reserve applied; every disk counted at full size) and
    anti-affinity. Then the weigher of the instance's group picks among the hosts left:
    ``spread`` the least-loaded host, ``pack`` the most-loaded one; standalone
    instances spread. Load is a host's dominant share: the largest fraction of its CPU,
    memory or disk already allocated. Ties go to the host whose name sorts first.

    Anti-affinity is hard: members of a group with ``anti_affinity`` never share a
    host. The model documents it as "never", and a group spread for availability that
    silently doubles up on one host loses the very property it asked for; ``spread``
    already gives the soft preference. A group with more members than hosts that pass
    its filters is an error, not a degraded placement.

    Instances are placed in first-fit-decreasing order: pinned ones, then by memory,
    vCPUs and disk, largest first, then by group and member index. Bin packing is
    NP-hard, so this heuristic can fail on a fleet where a cleverer assignment exists;
    it is stable, fast and good in practice.

    Placement is sticky: ``previous`` (instance → host, what the last ``up`` stored)
    pins each instance to the host it runs on while that host is still in the
    environment and the instance still fits there, so adding a host or an instance moves
    nothing that already runs. An instance that no longer fits its old host (it grew,
    the host shrank or left) is placed anew, as are new instances.

    Hosts in ``unavailable`` (down, unreachable, drained) take nothing: their instances
    are placed on the others (an evacuation). One that fits nowhere else stays assigned
    to its old host and is listed in :attr:`Placement.stranded` with the reason, so the
    rest of the environment still moves; any other instance that cannot be placed is an
    error as usual.

    Pure and deterministic: no I/O, and the same environment (whatever order its
    mappings were written in) gives an equal placement.

    Args:
        env: The environment to place.
        previous: Where each instance ran before (stored by the last ``up``).
        unavailable: Hosts that must take no instance.

    Returns:
        Where every instance runs, and every host's allocation.

    Raises:
        PlacementFailed: Some instances fit nowhere (a :class:`~unkai.errors.PlacementError`).
            Its message and ``problems`` list every one of them with the reason (the
            short resource and by how much on the best candidate host, the largest host
            when the instance is larger than any host, or the filter that left no host).
    """
    down = frozenset(unavailable) & set(env.hosts)
    if not down:
        return _place(env, previous or {}, frozenset())
    working = env.model_copy(
        update={"hosts": {n: h for n, h in env.hosts.items() if n not in down}}
    )
    was_down = {n for n, h in (previous or {}).items() if h in down}
    # An instance pinned to a host that is down has nowhere else to go.
    stranded: tuple[PlacementProblem, ...] = tuple(
        PlacementProblem(
            instance=d.name,
            shape=d.shape,
            reason="host",
            detail=f"pinned to host {d.pin}, which is unavailable",
            host=d.pin,
        )
        for d in _demands(env)
        if d.pin in down
    )
    was_down |= {p.instance for p in stranded}
    previous = {**(previous or {}), **{p.instance: p.host or "" for p in stranded}}
    while True:
        try:
            result = _place(working, previous or {}, frozenset(p.instance for p in stranded))
        except PlacementFailed as err:
            stuck = _stuck(err.problems, was_down - {p.instance for p in stranded})
            if not stuck:
                raise
            stranded += stuck
            continue
        assignments = {
            **result.assignments,
            **{p.instance: (previous or {})[p.instance] for p in stranded},
        }
        return result.model_copy(
            update={"assignments": dict(sorted(assignments.items())), "stranded": stranded}
        )


def _stuck(problems: Sequence[PlacementProblem], moving: set[str]) -> tuple[PlacementProblem, ...]:
    """The problems that evacuees cause: theirs, or their group's when others were named.

    Anti-affinity names the highest members of a group that is short of hosts, not
    necessarily the ones that lost theirs: the evacuees of that group are the ones to
    keep where they were.
    """
    own = tuple(p for p in problems if p.instance in moving)
    if own:
        return own
    found: list[PlacementProblem] = []
    for problem in problems:
        group = _MEMBER.fullmatch(problem.instance)
        if problem.reason != "anti-affinity" or group is None:
            continue
        for name in sorted(moving):
            member = _MEMBER.fullmatch(name)
            if member is not None and member[1] == group[1] and len(found) < len(problems):
                found.append(replace(problem, instance=name))
                moving = moving - {name}
    return tuple(found)


def _place(env: Environment, previous: Mapping[str, str], exclude: frozenset[str]) -> Placement:
    kept = dict(previous)
    while True:
        scheduler = _Scheduler(env)
        demands = _demands(env, kept, exclude)
        scheduler.run(demands)
        # An instance held to its old host where it no longer fits is placed anew.
        stuck = {p.instance for p in scheduler.problems} & {
            d.name for d in demands if d.pin is not None and d.pin == kept.get(d.name)
        }
        stuck -= {i.name for i in env.all_instances() if i.host is not None}
        if not stuck:
            break
        kept = {name: host for name, host in kept.items() if name not in stuck}
    if scheduler.problems:
        raise PlacementFailed(env.name, len(demands), tuple(scheduler.problems))
    return scheduler.result()
