"""One round of a node pool's reconciliation against the API server.

:func:`observe` reads the pool's nodes and the pods that matter to it into the pure
views of :mod:`unkai.operator._pools`; :func:`act` carries out a
:class:`~unkai.operator._pools.Decision` with the Kubernetes driver's node functions and
the eviction API; :func:`status_of` is what goes into the pool's ``status``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx2
from lightkube import ApiError, Client, codecs
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.core_v1 import Node, Pod
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.types import PatchType
from lightkube.utils.quantity import parse_quantity

from unkai.drivers.kubernetes import FakeNodePool, NodeTaint, fake_node_manifest
from unkai.drivers.kubernetes._nodes import POOL_LABEL
from unkai.errors import DriverError
from unkai.operator._pools import (
    Decision,
    Event,
    Memory,
    NodeView,
    PodView,
    PoolShape,
    PoolSpec,
    Resources,
    Taint,
    Toleration,
    node_index,
)


def _cpu(value: object) -> int:
    quantity = parse_quantity(str(value)) if value is not None else None
    return int(quantity * 1000) if quantity is not None else 0


def _bytes(value: object) -> int:
    quantity = parse_quantity(str(value)) if value is not None else None
    return int(quantity) if quantity is not None else 0


TEMPLATE_LABEL = "unkai.dev/node-template"
"""The node label naming the template a node was made from (:func:`node_template`)."""

VERSION_LABEL = "unkai.dev/kubernetes-version"
"""The node label naming the Kubernetes version a node was made for."""


def node_template(spec: Mapping[str, Any]) -> str:
    """What a new node of the pool is made from: a short hash of what shapes it.

    Those are its capacity, machine type and Kubernetes version; a change to any of them
    rolls the pool.
    """
    shape = {k: spec.get(k) for k in ("cpu", "memory", "pods", "machineType", "version")}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def pool_spec(name: str, spec: Mapping[str, Any]) -> PoolSpec:
    """The reconciler's view of a ``NodePool`` object's ``spec``.

    The API server has already applied the schema's defaults.
    """
    shape = PoolShape(
        allocatable=Resources(
            cpu=_cpu(spec["cpu"]), memory=_bytes(spec["memory"]), pods=int(spec.get("pods", 110))
        ),
        labels=dict(spec.get("labels") or {}),
        taints=tuple(
            Taint(key=t["key"], effect=t["effect"], value=t.get("value", ""))
            for t in spec.get("taints") or ()
        ),
    )
    return PoolSpec(
        name=name,
        size=int(spec["size"]),
        min_size=int(spec["minSize"]),
        max_size=int(spec["maxSize"]),
        shape=shape,
        auto_repair=bool(spec.get("autoRepair", True)),
        repair_after=float(spec.get("repairAfterSeconds", 60)),
        node_startup=float(spec.get("nodeStartupSeconds", 600)),
        max_repairs=int(spec.get("maxRepairs", 3)),
        repair_window=float(spec.get("repairWindowSeconds", 600)),
        scale_down_unneeded=float(spec.get("scaleDownUnneededSeconds", 600)),
        scale_down_delay_after_add=float(spec.get("scaleDownDelayAfterAddSeconds", 600)),
        utilization_threshold=int(spec.get("scaleDownUtilizationPercent", 50)) / 100,
        template=node_template(spec),
        auto_upgrade=bool(spec.get("autoUpgrade", True)),
        max_surge=int(spec.get("maxSurge", 1)),
        max_unavailable=int(spec.get("maxUnavailable", 0)),
    )


def fake_pool(name: str, spec: Mapping[str, Any]) -> FakeNodePool:
    """The simulated nodes a ``NodePool`` spec describes, for the driver."""
    return FakeNodePool(
        name=name,
        size=int(spec["size"]),
        cpu=str(spec["cpu"]),
        memory=str(spec["memory"]),
        pods=int(spec.get("pods", 110)),
        machine_type=spec.get("machineType"),
        labels={
            **(spec.get("labels") or {}),
            TEMPLATE_LABEL: node_template(spec),
            **({VERSION_LABEL: spec["version"]} if spec.get("version") else {}),
        },
        taints=tuple(
            NodeTaint(key=t["key"], effect=t["effect"], value=t.get("value", ""))
            for t in spec.get("taints") or ()
        ),
    )


def _time(value: str | None) -> float | None:
    return dt.datetime.fromisoformat(value).timestamp() if value else None


def _stamp(value: float) -> str:
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def memory_of(status: Mapping[str, Any]) -> Memory:
    """What the previous round kept in ``status`` (empty on the first round)."""
    return Memory(
        target=status.get("targetSize"),
        observed_size=status.get("observedSize"),
        last_scale_up=_time(status.get("lastScaleUp")),
        unneeded_since={
            name: stamp
            for name, value in (status.get("unneededSince") or {}).items()
            if (stamp := _time(value)) is not None
        },
        repairs=tuple(t for value in status.get("repairs") or () if (t := _time(value))),
    )


@dataclass(frozen=True)
class Observed:
    """The pool's nodes and the pods that matter to it, read in one round."""

    nodes: tuple[NodeView, ...]
    pods: tuple[PodView, ...]


def _node_view(node: Node) -> NodeView:
    meta = node.metadata or ObjectMeta()
    created = meta.creationTimestamp.timestamp() if meta.creationTimestamp else 0.0
    ready, since, reported = False, created, False
    for condition in (node.status.conditions if node.status else None) or ():
        if condition.type == "Ready":
            ready = condition.status == "True"
            reported = True
            if condition.lastTransitionTime:
                since = condition.lastTransitionTime.timestamp()
    allocatable = (node.status.allocatable if node.status else None) or {}
    return NodeView(
        name=meta.name or "",
        ready=ready,
        since=since,
        allocatable=Resources(
            cpu=_cpu(allocatable.get("cpu")),
            memory=_bytes(allocatable.get("memory")),
            pods=int(allocatable.get("pods", 110)),
        ),
        unschedulable=bool(node.spec and node.spec.unschedulable),
        template=(meta.labels or {}).get(TEMPLATE_LABEL, ""),
        reported=reported,
    )


def selects(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector selects ``labels`` (an empty or missing one selects all)."""
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in (selector.matchLabels or {}).items()):
        return False
    for rule in selector.matchExpressions or ():
        present = rule.key in labels
        value = labels.get(rule.key)
        wanted = rule.values or []
        if rule.operator == "In" and value not in wanted:
            return False
        if rule.operator == "NotIn" and present and value in wanted:
            return False
        if rule.operator == "Exists" and not present:
            return False
        if rule.operator == "DoesNotExist" and present:
            return False
    return True


def _spare(
    budgets: Sequence[PodDisruptionBudget], namespace: str, labels: Mapping[str, str]
) -> bool:
    """Whether every budget covering a pod allows one more disruption now."""
    for budget in budgets:
        meta = budget.metadata or ObjectMeta()
        if meta.namespace != namespace or budget.spec is None:
            continue
        if selects(budget.spec.selector, labels):
            allowed = (budget.status.disruptionsAllowed if budget.status else None) or 0
            if allowed < 1:
                return False
    return True


def _pod_view(pod: Pod, budgets: Sequence[PodDisruptionBudget] = ()) -> PodView:
    meta = pod.metadata or ObjectMeta()
    spec = pod.spec
    requests = Resources(pods=1)
    for container in (spec.containers if spec else None) or ():
        wanted = (container.resources.requests if container.resources else None) or {}
        requests += Resources(cpu=_cpu(wanted.get("cpu")), memory=_bytes(wanted.get("memory")))
    owners = meta.ownerReferences or ()
    unschedulable = any(
        c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
        for c in ((pod.status.conditions if pod.status else None) or ())
    )
    return PodView(
        namespace=meta.namespace or "",
        name=meta.name or "",
        node=spec.nodeName if spec else None,
        requests=requests,
        unschedulable=unschedulable,
        controlled=any(o.controller for o in owners),
        daemon=any(o.kind == "DaemonSet" for o in owners)
        or "kubernetes.io/config.mirror" in (meta.annotations or {}),
        disruptable=_spare(budgets, meta.namespace or "", meta.labels or {}),
        tolerations=tuple(
            Toleration(
                key=t.key or "",
                operator="Exists" if t.operator == "Exists" else "Equal",
                value=t.value or "",
                effect=t.effect or "",
            )
            for t in ((spec.tolerations if spec else None) or ())
        ),
        node_selector=dict((spec.nodeSelector if spec else None) or {}),
    )


def observe(client: Client, pool: str, *, with_pods: bool = True) -> Observed:
    """Read the pool's nodes and the pods bound to them or waiting for any node.

    ``with_pods=False`` skips the pods (and PodDisruptionBudgets): a pool that does not
    autoscale needs only its nodes, and a cluster of 10,000 pods is a big list to read
    every round.
    """
    nodes = tuple(
        sorted(
            (_node_view(n) for n in client.list(Node, labels={POOL_LABEL: pool})),
            key=lambda n: (node_index(pool, n.name) or 0, n.name),
        )
    )
    if not with_pods:
        return Observed(nodes=nodes, pods=())
    names = {n.name for n in nodes}
    budgets = list(client.list(PodDisruptionBudget, namespace="*"))
    pods = []
    for pod in client.list(Pod, namespace="*"):
        phase = pod.status.phase if pod.status else None
        if phase in ("Succeeded", "Failed"):
            continue
        view = _pod_view(pod, budgets)
        if view.node in names or (view.node is None and view.unschedulable):
            pods.append(view)
    return Observed(nodes=nodes, pods=tuple(pods))


def _create_node(client: Client, pool: FakeNodePool, name: str) -> None:
    index = node_index(pool.name, name)
    if index is None:
        raise DriverError(f"{name} is not a node name of pool {pool.name}")
    try:
        client.create(codecs.from_dict(fake_node_manifest(pool, index)))
    except ApiError as err:
        if err.status.code != 409:
            raise DriverError(f"cannot create node {name}: {err.status.message}") from err


def _delete_node(client: Client, name: str) -> None:
    try:
        client.delete(Node, name)
    except ApiError as err:
        if err.status.code != 404:
            raise DriverError(f"cannot delete node {name}: {err.status.message}") from err


def _cordon(client: Client, name: str, *, on: bool) -> None:
    client.patch(Node, name, {"spec": {"unschedulable": on}}, patch_type=PatchType.MERGE)


def drain(
    client: Client, node: str, pods: Sequence[PodView], *, uncordon_on_refusal: bool = True
) -> str | None:
    """Cordon ``node`` and evict its pods (DaemonSet pods stay).

    Returns ``None`` when every pod left; otherwise why not, and the node is uncordoned
    unless ``uncordon_on_refusal`` is false (a rollout keeps it cordoned and tries again).

    Evictions go through the eviction API, so the API server refuses any that would break
    a PodDisruptionBudget (429), exactly as ``kubectl drain`` is refused.
    """
    _cordon(client, node, on=True)
    for pod in pods:
        if pod.node != node or pod.daemon:
            continue
        eviction = Pod.Eviction(metadata=ObjectMeta(name=pod.name, namespace=pod.namespace))
        try:
            client.create(eviction, name=pod.name, namespace=pod.namespace)
        except ApiError as err:
            if err.status.code == 404:
                continue
            if uncordon_on_refusal:
                _cordon(client, node, on=False)
            if err.status.code == 429:
                return (
                    f"evicting {pod.namespace}/{pod.name} would break its"
                    f" PodDisruptionBudget: {err.status.message}"
                )
            return f"evicting {pod.namespace}/{pod.name} failed: {err.status.message}"
    return None


def try_drain(
    client: Client, node: str, pods: Sequence[PodView], *, uncordon_on_refusal: bool = True
) -> str | None:
    """:func:`drain`, with an API server that fails taken as a refusal (said)."""
    try:
        return drain(client, node, pods, uncordon_on_refusal=uncordon_on_refusal)
    except (ApiError, httpx2.HTTPError) as err:
        return f"the API server failed: {err}"


def act(
    client: Client, name: str, spec: Mapping[str, Any], decision: Decision, observed: Observed
) -> tuple[Decision, tuple[Event, ...]]:
    """Carry out ``decision``: repair, create, drain and remove nodes.

    Returns:
        The decision as it ended (a removal whose drain was refused puts its node back in
        the target) and the Events of what happened beyond the decision's own.

    Raises:
        DriverError: the API server refused a node write.
    """
    pool = fake_pool(name, spec)
    extra: list[Event] = []
    for node in decision.repair:
        _delete_node(client, node)
        _create_node(client, pool, node)
    for node in decision.create:
        _create_node(client, pool, node)
    for node in decision.roll:
        refused = try_drain(client, node, observed.pods, uncordon_on_refusal=False)
        if refused is None:
            _delete_node(client, node)
        else:
            extra.append(Event("Warning", "UpgradeBlocked", f"node {node} waits: {refused}"))
    target = decision.target
    for node in decision.remove:
        refused = try_drain(client, node, observed.pods)
        if refused is None:
            _delete_node(client, node)
            continue
        target += 1
        extra.append(Event("Warning", "ScaleDownBlocked", f"node {node} stays: {refused}"))
    if target == decision.target:
        return decision, tuple(extra)
    memory = replace(decision.memory, target=target)
    return replace(decision, target=target, memory=memory), tuple(extra)


def status_of(
    decision: Decision, observed: Observed, *, generation: int = 0, template: str = ""
) -> dict[str, Any]:
    """The pool's ``status`` after a round: its memory and what its nodes look like.

    ``observedGeneration`` is the object's generation this round acted on; ``targetSize``
    and ``nodes`` then say whether the pool has settled (``unkai up`` waits for that).
    """
    memory = decision.memory
    return {
        "observedGeneration": generation,
        "targetSize": decision.target,
        "observedSize": memory.observed_size,
        "readyNodes": sum(1 for n in observed.nodes if n.ready),
        "updatedNodes": sum(1 for n in observed.nodes if n.template == template),
        "nodes": [{"name": n.name, "ready": n.ready} for n in observed.nodes],
        "lastScaleUp": _stamp(memory.last_scale_up) if memory.last_scale_up else None,
        "unneededSince": {k: _stamp(v) for k, v in sorted(memory.unneeded_since.items())},
        "repairs": [_stamp(t) for t in memory.repairs],
    }
