"""What a node pool's reconciler does next: pure decisions, no I/O.

The operator reads a pool's custom resource, its nodes and the cluster's pods, and
:func:`decide` answers with a :class:`Decision`: the size to aim for, the nodes to add,
the node to drain and remove, the nodes to repair, the Events to post and the memory
to keep in the pool's status for the next round. The rules follow the Cluster
Autoscaler's FAQ, because its Go module is not available here:

- **Scale-up** happens when a pod is unschedulable (the scheduler said so) and a new node
  of the pool would take it: its requests fit an empty node's allocatable, it tolerates
  the pool's taints and its node selector matches the pool's labels. The pods are packed
  first-fit-decreasing onto as many new nodes as they need, first onto nodes already
  coming up (so one burst of pods is not answered twice), never past ``max_size``.
- **Scale-down** removes one node per round: a Ready node whose requested CPU and memory
  are both under the utilisation threshold, all of whose pods are backed by a controller
  and fit on the pool's other Ready nodes and none of whose pods a PodDisruptionBudget
  protects at its limit, that has been so for ``scale_down_unneeded``
  seconds, not within ``scale_down_delay_after_add`` of a scale-up, never below
  ``min_size``. Its pods leave through the eviction API, so PodDisruptionBudgets hold;
  a refused eviction abandons the removal and the node is uncordoned.
- **Auto-repair** replaces a node that has not been Ready for ``repair_after`` seconds, at
  most ``max_repairs`` in any ``repair_window`` (a node that keeps failing must not drag
  the whole pool through replacement).
- **Rolling upgrade**: a node made from another template (the spec's machine shape or
  Kubernetes version changed) is replaced while ``auto_upgrade`` is on, as a Cluster API
  MachineDeployment rolls: a new node first (at most ``max_surge`` beyond the target),
  then an old one drained through the eviction API and removed once the pool keeps
  ``target - max_unavailable`` Ready nodes without it; a drain a PodDisruptionBudget
  refuses keeps the node cordoned and is tried again next round. No scale-down while a
  rollout runs.
- **Size** is the spec's ``size`` until the autoscaler moves it; a new ``size`` in the spec
  (a change made with ``unkai up``) is taken again, clamped to ``[min_size, max_size]``.

Times are seconds since the epoch, passed in: nothing here reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Resources:
    """CPU in millicores, memory in bytes, and a pod count."""

    cpu: int = 0
    memory: int = 0
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory, self.pods + other.pods)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu - other.cpu, self.memory - other.memory, self.pods - other.pods)

    def fits_in(self, room: Resources) -> bool:
        """Whether these requests fit in ``room``."""
        return self.cpu <= room.cpu and self.memory <= room.memory and self.pods <= room.pods


@dataclass(frozen=True)
class Toleration:
    """A pod's toleration (``operator`` ``Equal`` or ``Exists``)."""

    key: str = ""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        """Whether this toleration lets a pod onto a node with ``taint``."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key
        return self.key == taint.key and self.value == taint.value


@dataclass(frozen=True)
class Taint:
    """A node taint."""

    key: str
    effect: str
    value: str = ""


@dataclass(frozen=True)
class PoolShape:
    """What a new node of the pool looks like."""

    allocatable: Resources
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()


@dataclass(frozen=True)
class PoolSpec:
    """A node pool's custom resource ``spec``, as the reconciler needs it.

    Attributes:
        name: The pool; its nodes are ``<name>-<index>``.
        size: The size ``unkai up`` asked for.
        min_size: The autoscaler's lower bound.
        max_size: The autoscaler's upper bound.
        shape: What one node offers and how it is labelled and tainted.
        auto_repair: Whether nodes that stay NotReady are replaced.
        repair_after: Seconds NotReady before a node is replaced.
        node_startup: Seconds a new node may take to report Ready for the first time
            before it is replaced (Cluster API's ``nodeStartupTimeout``): a node just
            made is starting, not broken.
        max_repairs: Repairs allowed in any ``repair_window``.
        repair_window: Seconds over which ``max_repairs`` is counted.
        scale_down_unneeded: Seconds a node must be unneeded before it is removed.
        scale_down_delay_after_add: Seconds after a scale-up before any scale-down.
        utilization_threshold: Below this share of CPU and of memory requested, a node is
            a scale-down candidate.
        template: What a new node is made from (a hash of its shape and version): nodes
            of another template are rolled.
        auto_upgrade: Whether nodes of an old template are replaced.
        max_surge: Nodes beyond the target a rollout may add.
        max_unavailable: Ready nodes below the target a rollout may leave.
    """

    name: str
    size: int
    min_size: int
    max_size: int
    shape: PoolShape
    auto_repair: bool = True
    repair_after: float = 60.0
    node_startup: float = 600.0
    max_repairs: int = 3
    repair_window: float = 600.0
    scale_down_unneeded: float = 600.0
    scale_down_delay_after_add: float = 600.0
    utilization_threshold: float = 0.5
    template: str = ""
    auto_upgrade: bool = True
    max_surge: int = 1
    max_unavailable: int = 0

    @property
    def autoscaled(self) -> bool:
        """Whether the pool may change size on its own (``min_size < max_size``)."""
        return self.min_size < self.max_size


@dataclass(frozen=True)
class NodeView:
    """A node of the pool as the API server reports it.

    Attributes:
        name: ``<pool>-<index>``.
        ready: Its Ready condition is True.
        since: When the Ready condition last changed (its ``lastTransitionTime``), or when
            the node was created if it has no condition yet.
        reported: It has a Ready condition at all: a node its kubelet (or KWOK) has not
            reported on yet is still starting, and is given ``node_startup`` to do so.
        allocatable: What the scheduler may place on it.
        unschedulable: It is cordoned.
        template: The template it was made from.
    """

    name: str
    ready: bool
    since: float
    allocatable: Resources
    unschedulable: bool = False
    template: str = ""
    reported: bool = True


@dataclass(frozen=True)
class PodView:
    """A pod, as far as placement on the pool goes.

    Attributes:
        namespace: Its namespace.
        name: Its name.
        node: The node it is bound to, if any.
        requests: The sum of its containers' requests (one pod slot included).
        unschedulable: The scheduler reported it cannot be placed anywhere.
        controlled: It is owned by a controller (a ReplicaSet, StatefulSet, Job …), so it
            comes back elsewhere when evicted.
        daemon: It is a DaemonSet's pod (it stays with its node and does not count).
        disruptable: No PodDisruptionBudget covering it is at its limit (its
            ``disruptionsAllowed`` is above 0), so it may be evicted now.
        tolerations: Its tolerations.
        node_selector: Its node selector.
    """

    namespace: str
    name: str
    node: str | None
    requests: Resources
    unschedulable: bool = False
    controlled: bool = True
    daemon: bool = False
    disruptable: bool = True
    tolerations: tuple[Toleration, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Memory:
    """What the reconciler keeps in the pool's status between rounds.

    Attributes:
        target: The size it aims for (``None``: not decided yet, take the spec's).
        observed_size: The spec's ``size`` it last acted on.
        last_scale_up: When it last added nodes for pending pods.
        unneeded_since: Per node, since when it has been a scale-down candidate.
        repairs: When each recent repair started (within ``repair_window``).
    """

    target: int | None = None
    observed_size: int | None = None
    last_scale_up: float | None = None
    unneeded_since: Mapping[str, float] = field(default_factory=dict)
    repairs: tuple[float, ...] = ()


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the pool."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    """What to do this round.

    Attributes:
        target: The size aimed for from now on.
        create: Names of nodes to create.
        remove: Nodes to drain (through the eviction API) and delete: the one the
            autoscaler found unneeded, or those beyond a smaller size, highest index first.
        repair: Names of nodes to delete and create again.
        roll: Nodes of an old template to drain and delete; a drain a budget refuses leaves
            the node cordoned, to be tried again.
        events: Events to post, in order.
        memory: What to keep for the next round.
    """

    target: int
    create: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    repair: tuple[str, ...] = ()
    roll: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()
    memory: Memory = field(default_factory=Memory)


def aimed_size(
    size: int,
    min_size: int,
    max_size: int,
    remembered: int | None,
    observed: int | None,
    events: list[Event],
) -> int:
    """The size to aim for: the one remembered, or the spec's ``size`` when it changed.

    Clamped to ``[min_size, max_size]``; each is said as an Event appended to ``events``.

    Args:
        size: The spec's size.
        min_size: The lower bound.
        max_size: The upper bound.
        remembered: The target the last round kept (``None``: none yet).
        observed: The spec's size the last round acted on.
        events: Where the Events go.
    """
    target = remembered if remembered is not None else size
    if observed is not None and observed != size:
        events.append(Event("Normal", "SizeChanged", f"size set to {size} (was {observed})"))
        target = size
    clamped = min(max(target, min_size), max_size)
    if clamped != target:
        events.append(
            Event(
                "Normal",
                "SizeClamped",
                f"size {target} is outside [{min_size}, {max_size}]: aiming for {clamped}",
            )
        )
    return clamped


def node_index(pool: str, name: str) -> int | None:
    """The index of node ``name`` in ``pool`` (``None``: not one of its names)."""
    match = re.fullmatch(re.escape(pool) + r"-(\d+)", name)
    return int(match[1]) if match else None


def fits_pool(pod: PodView, shape: PoolShape) -> bool:
    """Whether ``pod`` may run on a node of this shape: taints, selector, and size."""
    no_schedule = [t for t in shape.taints if t.effect in ("NoSchedule", "NoExecute")]
    if not all(any(tol.tolerates(taint) for tol in pod.tolerations) for taint in no_schedule):
        return False
    if any(shape.labels.get(key) != value for key, value in pod.node_selector.items()):
        return False
    return pod.requests.fits_in(shape.allocatable)


def _pack(pods: Sequence[PodView], rooms: list[Resources]) -> list[PodView]:
    """First-fit-decreasing: place ``pods`` into ``rooms`` (changed in place); the rest."""
    left = []
    for pod in sorted(pods, key=lambda p: (-p.requests.cpu, -p.requests.memory, p.name)):
        for i, room in enumerate(rooms):
            if pod.requests.fits_in(room):
                rooms[i] = room - pod.requests
                break
        else:
            left.append(pod)
    return left


def _free_names(pool: str, taken: Sequence[str], count: int) -> tuple[str, ...]:
    """The ``count`` lowest ``<pool>-<index>`` names not in ``taken``."""
    used = {node_index(pool, name) for name in taken}
    names: list[str] = []
    index = 0
    while len(names) < count:
        if index not in used:
            names.append(f"{pool}-{index}")
        index += 1
    return tuple(names)


def _requested(pods: Sequence[PodView], node: str) -> Resources:
    total = Resources()
    for pod in pods:
        if pod.node == node and not pod.daemon:
            total += pod.requests
    return total


def _scale_down_candidate(
    spec: PoolSpec, node: NodeView, nodes: Sequence[NodeView], pods: Sequence[PodView]
) -> bool:
    """Whether ``node`` is underused and its pods would all fit on the other Ready nodes."""
    if not node.ready or node.unschedulable:
        return False
    used = _requested(pods, node.name)
    alloc = node.allocatable
    if alloc.cpu and used.cpu / alloc.cpu >= spec.utilization_threshold:
        return False
    if alloc.memory and used.memory / alloc.memory >= spec.utilization_threshold:
        return False
    movable = [p for p in pods if p.node == node.name and not p.daemon]
    if any(not p.controlled or not p.disruptable for p in movable):
        return False
    others = [n for n in nodes if n.name != node.name and n.ready and not n.unschedulable]
    rooms = [n.allocatable - _requested(pods, n.name) for n in others]
    return not _pack(movable, rooms)


def decide(
    spec: PoolSpec,
    memory: Memory,
    nodes: Sequence[NodeView],
    pods: Sequence[PodView],
    *,
    now: float,
) -> Decision:
    """The next step for one node pool. Pure.

    Args:
        spec: The pool's spec.
        memory: What the previous round kept (an empty :class:`Memory` the first time).
        nodes: The pool's nodes.
        pods: The cluster's pods that are bound to the pool's nodes or unschedulable.
        now: The current time.

    Returns:
        The decision; its ``memory`` goes into the status for the next round.
    """
    events: list[Event] = []
    target = aimed_size(
        spec.size, spec.min_size, spec.max_size, memory.target, memory.observed_size, events
    )
    last_scale_up = memory.last_scale_up
    names = [n.name for n in nodes]

    # Auto-repair: nodes NotReady for too long, within the rate limit.
    repairs = [t for t in memory.repairs if now - t < spec.repair_window]
    repair: list[str] = []
    if spec.auto_repair:
        for node in sorted(nodes, key=lambda n: n.since):
            limit = spec.repair_after if node.reported else spec.node_startup
            if node.ready or now - node.since < limit:
                continue
            if len(repairs) >= spec.max_repairs:
                events.append(
                    Event(
                        "Warning",
                        "RepairLimited",
                        f"node {node.name} has not been Ready for {now - node.since:.0f} s; not"
                        f" repaired yet: {spec.max_repairs} repairs already in the last"
                        f" {spec.repair_window:.0f} s",
                    )
                )
                break
            repairs.append(now)
            repair.append(node.name)
            events.append(
                Event(
                    "Normal",
                    "NodeRepair",
                    (
                        f"node {node.name} has not been Ready for {now - node.since:.0f} s"
                        f" (more than {spec.repair_after:.0f} s): replacing it"
                        if node.reported
                        else f"node {node.name} has not reported Ready in"
                        f" {now - node.since:.0f} s since it was made (more than"
                        f" {spec.node_startup:.0f} s): replacing it"
                    ),
                )
            )

    # Scale-up: unschedulable pods that a new node of the pool would take.
    pending = [p for p in pods if p.unschedulable and p.node is None and fits_pool(p, spec.shape)]
    if spec.autoscaled and pending:
        # Nodes still coming up (not Ready yet, not being repaired) will take some of them.
        coming = [n for n in nodes if not n.ready and n.name not in repair]
        coming_rooms = [n.allocatable - _requested(pods, n.name) for n in coming]
        coming_rooms += [spec.shape.allocatable] * max(target - len(nodes), 0)
        left = _pack(pending, coming_rooms)
        needed = 0
        while left and target + needed < spec.max_size:
            needed += 1
            left = _pack(left, [spec.shape.allocatable])
        if needed:
            events.append(
                Event(
                    "Normal",
                    "ScaleUp",
                    f"{len(pending)} unschedulable pod(s) fit this pool:"
                    f" {target} → {target + needed} nodes",
                )
            )
            target += needed
            last_scale_up = now
        if left and target >= spec.max_size:
            events.append(
                Event(
                    "Warning",
                    "ScaleUpLimited",
                    f"{len(left)} pod(s) still unschedulable: the pool is at max_size"
                    f" {spec.max_size}",
                )
            )

    # A rollout: nodes of an old template (repaired ones come back with the new one).
    outdated = [n for n in nodes if n.template != spec.template and n.name not in repair]
    if spec.auto_upgrade and outdated:
        return _roll(spec, memory, nodes, outdated, target, repair, repairs, last_scale_up, events)

    # Scale-down: one unneeded node per round, after the delays.
    unneeded: dict[str, float] = {}
    remove: str | None = None
    cooling = last_scale_up is not None and now - last_scale_up < spec.scale_down_delay_after_add
    if spec.autoscaled and not pending and target > spec.min_size and len(nodes) == target:
        for node in sorted(nodes, key=lambda n: -(node_index(spec.name, n.name) or 0)):
            if _scale_down_candidate(spec, node, nodes, pods):
                unneeded[node.name] = memory.unneeded_since.get(node.name, now)
        for name, since in sorted(unneeded.items(), key=lambda kv: kv[1]):
            if not cooling and now - since >= spec.scale_down_unneeded and not repair:
                remove = name
                target -= 1
                events.append(
                    Event(
                        "Normal",
                        "ScaleDown",
                        f"node {name} has been unneeded for {now - since:.0f} s: draining and"
                        f" removing it ({target + 1} → {target} nodes)",
                    )
                )
                del unneeded[name]
                break

    # Size: create what is missing, remove what is beyond the target (highest first).
    present = [n for n in names if n != remove]
    create = _free_names(spec.name, names, max(target - len(present), 0))
    excess_count = max(len(present) - target, 0)
    by_index = sorted(present, key=lambda n: -(node_index(spec.name, n) or 0))
    excess = tuple(by_index[:excess_count])
    if create:
        events.append(Event("Normal", "NodesCreated", f"adding {', '.join(create)}"))
    if excess:
        events.append(Event("Normal", "NodesRemoved", f"removing {', '.join(excess)}"))
    return Decision(
        target=target,
        create=create,
        remove=((remove,) if remove else ()) + excess,
        repair=tuple(repair),
        events=tuple(events),
        memory=replace(
            memory,
            target=target,
            observed_size=spec.size,
            last_scale_up=last_scale_up,
            unneeded_since=unneeded,
            repairs=tuple(repairs),
        ),
    )


def _roll(
    spec: PoolSpec,
    memory: Memory,
    nodes: Sequence[NodeView],
    outdated: Sequence[NodeView],
    target: int,
    repair: Sequence[str],
    repairs: Sequence[float],
    last_scale_up: float | None,
    events: list[Event],
) -> Decision:
    """One round of a rollout.

    New nodes first (up to ``max_surge`` beyond the target), then one old node drained,
    if the pool keeps ``target - max_unavailable`` Ready nodes without it.
    """
    names = [n.name for n in nodes]
    current = len(nodes) - len(outdated)
    room = target + spec.max_surge - len(nodes)
    create = _free_names(spec.name, names, max(0, min(room, target - current)))
    if create:
        events.append(
            Event(
                "Normal",
                "UpgradeSurge",
                f"{len(outdated)} node(s) of an old template: adding {', '.join(create)}"
                f" with the new one",
            )
        )
    ready = sum(1 for n in nodes if n.ready and n.name not in repair)
    floor = target - spec.max_unavailable
    # NotReady old nodes go first: removing them costs no capacity.
    victim = min(
        outdated,
        key=lambda n: (n.ready, -(node_index(spec.name, n.name) or 0)),
    )
    roll: tuple[str, ...] = ()
    if ready - (1 if victim.ready else 0) >= floor and len(nodes) > target - spec.max_unavailable:
        roll = (victim.name,)
        events.append(
            Event(
                "Normal",
                "UpgradeDrain",
                f"draining {victim.name} (old template) through the eviction API: {ready}"
                f" nodes Ready, at least {floor} kept",
            )
        )
    return Decision(
        target=target,
        create=create,
        repair=tuple(repair),
        roll=roll,
        events=tuple(events),
        memory=replace(
            memory,
            target=target,
            observed_size=spec.size,
            last_scale_up=last_scale_up,
            unneeded_since={},
            repairs=tuple(repairs),
        ),
    )
