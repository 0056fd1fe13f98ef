"""What an instance group's reconciler does next: pure decisions, no I/O.

A group's custom resource lists its *slots*: the member names ``<group>-0`` …
``<group>-<S-1>``, where S is ``max_size + max_surge``, each with the digest of the inputs
``unkai up`` rendered for a VM in it (the domain XML and cloud-init of that name on the
host the planner chose, as ``unkai render`` writes them). A member is the VM in one
slot; it is *current* while it was made from its slot's digest. The operator reads the
members' state from their hosts and :func:`decide` answers with a :class:`Decision`:
the size to aim for, the slots to fill, the members to delete or recreate, the Events
to post and the memory to keep in the group's status. The rules are GCE's managed
instance groups':

- **Size** is the spec's ``size`` until the autoscaler moves it; a new ``size`` in the spec
  (a change made with ``unkai up``) is taken again, clamped to ``[min_size, max_size]``.
  Missing members are made in the lowest free slots; members beyond the size go,
  unhealthy ones first, then the highest slot.
- **Autohealing** recreates, in its slot, a member whose domain stopped running, and a
  member its health check found unhealthy once ``initial_delay`` has passed since it was
  made; at most ``max_repairs`` in any ``repair_window``, so a template that cannot
  boot does not churn the whole group. A member whose domain is gone is simply missing:
  the size brings it back.
- **Autoscaling** (``min_size < max_size``) recommends ``ceil(total CPU use /
  target_cpu)`` members. A member is not measured while it boots and for
  ``initialization`` seconds after it is up (a boot's length varies, and the work that
  follows it is no load); it counts as needed until it is measured. A larger
  recommendation is taken at once; a smaller one only when it is the largest of the
  last ``scale_in_stabilization`` seconds (and that long has been watched).
- **Rolling update**: members made from an old digest are replaced as a Cluster API
  MachineDeployment rolls. New members first, in free slots, while the group has at
  most ``target + max_surge`` members; old ones are deleted while at least
  ``target - max_unavailable`` members stay healthy without them (old unhealthy ones
  first: removing them costs nothing). No scale-in while an update runs.
- **A host that does not answer**: its members are ``unreachable`` and still count
  towards the size while the host may be back soon (a restarted libvirtd, a dropped
  link); after the operator's grace period they are ``lost`` and no longer count, so the
  size brings in as many members in free slots of hosts that answer, as GCE recreates
  the instances of a failed host elsewhere. Nothing is deleted or rolled on a host
  that does not answer, and none of its slots is filled. When it answers again its
  members count again, and the size removes the extra ones.

Times are seconds since the epoch, passed in: nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

from unkai.operator._pools import Event, aimed_size

Phase = Literal["booting", "healthy", "unhealthy", "stopped", "unreachable", "lost"]
"""A member's state: being made (until cloud-init finished and its first checks), passing
its health check, failing it, its domain not running, or its host not answering (for less
than the operator's grace period, then for longer)."""

_AWAY: frozenset[Phase] = frozenset({"unreachable", "lost"})
"""The phases of a member whose host does not answer: nothing can be done to it."""


@dataclass(frozen=True)
class GroupSpec:
    """An instance group's custom resource ``spec``, as the reconciler needs it.

    Attributes:
        name: The group's object (its slots are named after the group, not after it).
        size: The size ``unkai up`` asked for.
        min_size: The autoscaler's lower bound.
        max_size: The autoscaler's upper bound.
        slots: Slot (member name) → the digest of what a member there is made from, in
            slot order.
        max_surge: Members beyond the target an update may add.
        max_unavailable: Healthy members below the target an update may leave.
        auto_healing: Whether stopped and unhealthy members are recreated.
        initial_delay: Seconds after a member was made before its health check counts.
        max_repairs: Repairs allowed in any ``repair_window``.
        repair_window: Seconds over which ``max_repairs`` is counted.
        target_cpu: CPU use per member the autoscaler aims for, above 0 and at most 1.
        scale_in_stabilization: Seconds of smaller recommendations before a scale-in.
        initialization: Seconds after a member is up that it is not measured (it is
            counted as needed).
    """

    name: str
    size: int
    min_size: int
    max_size: int
    slots: Mapping[str, str]
    max_surge: int = 1
    max_unavailable: int = 0
    auto_healing: bool = True
    initial_delay: float = 300.0
    max_repairs: int = 3
    repair_window: float = 600.0
    target_cpu: float = 0.6
    scale_in_stabilization: float = 600.0
    initialization: float = 120.0

    @property
    def autoscaled(self) -> bool:
        """Whether the group may change size on its own (``min_size < max_size``)."""
        return self.min_size < self.max_size

    @cached_property
    def positions(self) -> dict[str, int]:
        """Each slot's place in the slot order (``web-0`` → 0 …)."""
        return {name: index for index, name in enumerate(self.slots)}


@dataclass(frozen=True)
class MemberView:
    """A member as its host reports it.

    Attributes:
        name: Its slot.
        digest: What it was made from.
        phase: Its state.
        created: When it was made.
        cpu: Its CPU use over the autoscaler's window, as a share of its vCPUs (0 to 1);
            ``None`` until measured.
        ready: When it came up (cloud-init finished); ``None`` while booting, or when not
            known (then ``created`` stands for it).
    """

    name: str
    digest: str
    phase: Phase
    created: float
    cpu: float | None = None
    ready: float | None = None


@dataclass(frozen=True)
class Memory:
    """What the reconciler keeps in the group's status between rounds.

    Attributes:
        target: The size it aims for (``None``: not decided yet, take the spec's).
        observed_size: The spec's ``size`` it last acted on.
        recommendations: The autoscaler's recent ``(time, size)`` recommendations: those
            of the stabilization window, and the newest one before it (which shows the
            window has been watched whole).
        repairs: When each recent repair started (within ``repair_window``).
    """

    target: int | None = None
    observed_size: int | None = None
    recommendations: tuple[tuple[float, int], ...] = ()
    repairs: tuple[float, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What to do this round.

    Attributes:
        target: The size aimed for from now on.
        create: Slots to make a member in, from the slot's digest.
        delete: Members to delete (their slots become free).
        repair: Members to delete and make again in the same slot.
        events: Events to post, in order.
        memory: What to keep for the next round.
    """

    target: int
    create: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    repair: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()
    memory: Memory = field(default_factory=Memory)


def _by_slot(spec: GroupSpec, name: str) -> int:
    """Where slot ``name`` is in the group's slot order (-1: not one of its slots).

    By position, not by parsing the name: the slots are named after the group
    (``web-3``), the object and so ``spec.name`` after its environment too.
    """
    return spec.positions.get(name, -1)


def _heal(
    spec: GroupSpec,
    memory: Memory,
    members: Sequence[MemberView],
    now: float,
    events: list[Event],
) -> tuple[list[str], list[float]]:
    """The members to recreate, within the rate limit, and the repairs of the window."""
    repairs = [t for t in memory.repairs if now - t < spec.repair_window]
    repair: list[str] = []
    if not spec.auto_healing:
        return repair, repairs
    failing = [
        m
        for m in members
        if m.phase == "stopped"
        or (m.phase == "unhealthy" and now - m.created >= spec.initial_delay)
    ]
    for member in sorted(failing, key=lambda m: (m.created, _by_slot(spec, m.name))):
        what = (
            "its domain is not running"
            if member.phase == "stopped"
            else "it fails its health check"
        )
        if len(repairs) >= spec.max_repairs:
            events.append(
                Event(
                    "Warning",
                    "RepairLimited",
                    f"{member.name}: {what}; not recreated yet: {spec.max_repairs} repairs"
                    f" already in the last {spec.repair_window:.0f} s",
                )
            )
            break
        repairs.append(now)
        repair.append(member.name)
        events.append(Event("Normal", "MemberRepair", f"{member.name}: {what}: recreating it"))
    return repair, repairs


def _initializing(spec: GroupSpec, member: MemberView, now: float) -> bool:
    """Whether ``member`` boots, or came up less than ``initialization`` seconds ago."""
    up = member.ready if member.ready is not None else member.created
    return member.phase == "booting" or now - up < spec.initialization


def _recommend(spec: GroupSpec, members: Sequence[MemberView], now: float) -> int | None:
    """The autoscaler's size for the members' CPU use (``None``: nothing measured yet).

    Members booting or initializing, and healthy ones not measured yet, count as needed.
    """
    measured = [
        m
        for m in members
        if m.phase == "healthy" and m.cpu is not None and not _initializing(spec, m, now)
    ]
    if not measured:
        return None
    done = {m.name for m in measured}
    waiting = sum(
        1
        for m in members
        if m.name not in done and (m.phase == "healthy" or _initializing(spec, m, now))
    )
    # A ratio a hair above a whole number is measurement noise, not a member's worth of load.
    wanted = math.ceil(round(sum(m.cpu or 0.0 for m in measured) / spec.target_cpu, 6)) + waiting
    return min(max(wanted, spec.min_size), spec.max_size)


def _autoscale(
    spec: GroupSpec,
    memory: Memory,
    members: Sequence[MemberView],
    target: int,
    now: float,
    *,
    rolling: bool,
    events: list[Event],
) -> tuple[int, tuple[tuple[float, int], ...]]:
    """The target after this round's recommendation, and the recommendations to keep."""
    if not spec.autoscaled:
        return target, ()
    recommended = _recommend(spec, members, now)
    since = now - spec.scale_in_stabilization
    history = list(memory.recommendations)
    if recommended is not None:
        history.append((now, recommended))
    older = [r for r in history if r[0] <= since]
    window = [r for r in history if r[0] > since]
    kept = tuple(([older[-1]] if older else []) + window)
    if recommended is None:
        return target, kept
    if recommended > target:
        events.append(
            Event(
                "Normal",
                "ScaleOut",
                f"CPU use needs {recommended} members at {spec.target_cpu:.0%} each:"
                f" {target} → {recommended}",
            )
        )
        return recommended, kept
    highest = max(size for _, size in window)
    if older and highest < target and not rolling:
        events.append(
            Event(
                "Normal",
                "ScaleIn",
                f"CPU use has needed at most {highest} members for"
                f" {spec.scale_in_stabilization:.0f} s: {target} → {highest}",
            )
        )
        return highest, kept
    return target, kept


def _free_slots(spec: GroupSpec, taken: Sequence[str], count: int) -> list[str]:
    """The ``count`` lowest slots not in ``taken`` (fewer when the slots run out)."""
    used = set(taken)
    return [name for name in spec.slots if name not in used][:count]


def decide(
    spec: GroupSpec,
    memory: Memory,
    members: Sequence[MemberView],
    *,
    now: float,
    down: frozenset[str] = frozenset(),
) -> Decision:
    """The next step for one instance group. Pure.

    Args:
        spec: The group's spec.
        memory: What the previous round kept (an empty :class:`Memory` the first time).
        members: The group's members, as their hosts report them.
        now: The current time.
        down: The slots whose host did not answer this round (none is filled).

    Returns:
        The decision; its ``memory`` goes into the status for the next round.
    """
    events: list[Event] = []
    target = aimed_size(
        spec.size, spec.min_size, spec.max_size, memory.target, memory.observed_size, events
    )
    repair, repairs = _heal(spec, memory, members, now, events)
    # Members on a host that does not answer can be neither deleted nor rolled; the lost
    # ones (unanswered past the grace period) no longer count towards the size.
    lost = [m.name for m in members if m.phase == "lost"]
    counted = [m for m in members if m.phase != "lost"]
    outdated = [
        m
        for m in members
        if spec.slots.get(m.name) != m.digest and m.name not in repair and m.phase not in _AWAY
    ]
    target, recommendations = _autoscale(
        spec, memory, members, target, now, rolling=bool(outdated), events=events
    )
    taken = [*(m.name for m in members), *sorted(down)]
    create: list[str] = []
    delete: list[str] = []
    if outdated:
        create, delete = _roll(spec, counted, outdated, target, repair, taken, events)
    else:
        create = _free_slots(spec, taken, max(target - len(counted), 0))
        excess = len(counted) - target
        if excess > 0:
            order = sorted(
                (m for m in counted if m.name not in repair and m.phase not in _AWAY),
                key=lambda m: (m.phase == "healthy", m.phase == "booting", -_by_slot(spec, m.name)),
            )
            delete = [m.name for m in order[:excess]]
        if create:
            events.append(Event("Normal", "MembersCreated", f"making {', '.join(create)}"))
        if delete:
            events.append(
                Event("Normal", "MembersRemoved", f"removing {', '.join(delete)} (size {target})")
            )
    if lost and create:
        events.append(
            Event(
                "Warning",
                "MembersLost",
                f"{', '.join(lost)}: the host does not answer; {', '.join(create)} made in"
                " their place on hosts that do (the extra members go when it answers again)",
            )
        )
    missing = max(target - len(counted), 0) - len(create)
    if missing > 0 and not outdated:
        where = f" or on a host that does not answer ({len(down)})" if down else ""
        events.append(
            Event(
                "Warning",
                "NoFreeSlot",
                f"{missing} more member(s) wanted but every one of the {len(spec.slots)}"
                f" slots is taken{where}: run `unkai up` to place more",
            )
        )
    return Decision(
        target=target,
        create=tuple(create),
        delete=tuple(delete),
        repair=tuple(repair),
        events=tuple(events),
        memory=replace(
            memory,
            target=target,
            observed_size=spec.size,
            recommendations=recommendations,
            repairs=tuple(repairs),
        ),
    )


def _roll(
    spec: GroupSpec,
    members: Sequence[MemberView],
    outdated: Sequence[MemberView],
    target: int,
    repair: Sequence[str],
    taken: Sequence[str],
    events: list[Event],
) -> tuple[list[str], list[str]]:
    """One round of a rolling update: the slots to fill and the old members to delete.

    ``members`` are those that count towards the size; ``taken``, the slots not to fill.
    New members first, while the group has at most ``target + max_surge``; then old ones,
    while ``target - max_unavailable`` members stay healthy without them.
    """
    current = len(members) - len(outdated)
    room = target + spec.max_surge - len(members)
    create = _free_slots(spec, taken, max(0, min(room, target - current)))
    if create:
        events.append(
            Event(
                "Normal",
                "UpdateSurge",
                f"{len(outdated)} member(s) of an old template: making {', '.join(create)}"
                " from the new one",
            )
        )
    healthy = sum(1 for m in members if m.phase == "healthy" and m.name not in repair)
    floor = target - spec.max_unavailable
    count = len(members)
    delete: list[str] = []
    # Old members that are not healthy go first: removing them costs no capacity.
    for victim in sorted(outdated, key=lambda m: (m.phase == "healthy", -_by_slot(spec, m.name))):
        cost = 1 if victim.phase == "healthy" else 0
        if healthy - cost < floor or count - 1 < floor:
            break
        healthy -= cost
        count -= 1
        delete.append(victim.name)
    if delete:
        events.append(
            Event(
                "Normal",
                "UpdateReplace",
                f"deleting {', '.join(delete)} (old template): {healthy} healthy members"
                f" left, at least {floor} kept",
            )
        )
    return create, delete
