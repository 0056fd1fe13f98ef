"""One round of a ``vm`` node pool: its nodes are VMs of its slots, joined with kubeadm.

The decisions are any node pool's (:func:`unkai.operator._pools.decide`: size, repair,
autoscaling by pending pods, rollout); the VMs are made and removed as an instance
group's members are (:mod:`unkai.operator._members`, the ``Instance`` kind's own code,
from the inputs ``unkai up`` rendered into each slot), and each new VM joins the cluster
(:func:`unkai.drivers.kubernetes._join.join_vm`, the playbook over SSH) before its making
ends. A node leaves by being drained through the eviction API (budgets hold), then its
Node object goes, then its VM.

A node being made (its VM boots, then joins and turns Ready: a couple of minutes under
TCG) is a node that has not reported yet (:attr:`NodeView.reported` false, since its
making started): ``decide`` neither makes another in its place nor repairs it before
``nodeStartupSeconds``. A node is current while what it was made from (its record's
digest) is its slot's; the others are rolled.

What outlives the process is in the object's status: each node's record (its digest,
when it was made and came up, its address and the host keys it printed, which ``unkai
ssh`` reads). A making a killed process left is recorded ``booting`` and is made again
from scratch by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lightkube import Client

from unkai.drivers.kubernetes._join import JoinRequest, ca_cert_hash, cluster_ca, join_vm
from unkai.errors import DriverError
from unkai.kinds import InstanceInputs
from unkai.operator import _members as members
from unkai.operator._members import GroupWorker, Recorded, slot_digests, slot_inputs
from unkai.operator._pools import Decision, Event, NodeView, PoolSpec, node_index
from unkai.operator._reconcile import Observed, _delete_node, pool_spec, try_drain

log = logging.getLogger("unkai.operator")

CURRENT = "current"
"""The template of a node made from its slot's current digest (others are rolled)."""

JOIN_TIMEOUT = 900.0
"""Seconds a new VM's join and first Ready get (a VM under TCG is slow)."""


def node_prefix(name: str, spec: Mapping[str, Any]) -> str:
    """What a ``vm`` pool's node names begin with: ``<cluster>-<pool>``."""
    return f"{spec['cluster']}-{name}"


def vm_pool_spec(name: str, spec: Mapping[str, Any]) -> PoolSpec:
    """The reconciler's view of a ``vm`` pool: nodes named after the cluster and pool."""
    return replace(pool_spec(node_prefix(name, spec), spec), template=CURRENT)


@dataclass(frozen=True)
class Join:
    """What a ``vm`` pool's node joins with (from the object's spec and the process).

    Attributes:
        pool: The pool (the nodes' ``unkai.dev/node-pool`` label).
        kubeconfig: The operator's kubeconfig (``system:masters``: it issues tokens).
        version: The cluster's Kubernetes version.
        endpoint: Where the nodes reach the API server (``host:port``).
        labels: The nodes' labels besides their pool's.
        taints: The nodes' taints.
        ssh_client: The environment's SSH client (its key), if ``up`` named one.
    """

    pool: str
    kubeconfig: Path
    version: str
    endpoint: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, str], ...]
    ssh_client: str | None

    @classmethod
    def of(cls, name: str, spec: Mapping[str, Any], kubeconfig: Path) -> Join:
        """The join of the ``vm`` pool ``name``."""
        return cls(
            pool=name,
            kubeconfig=kubeconfig,
            version=str(spec.get("version", "")),
            endpoint=str(spec.get("endpoint", "")),
            labels=dict(spec.get("labels") or {}),
            taints=tuple(dict(t) for t in spec.get("taints") or ()),
            ssh_client=spec.get("sshClient") or None,
        )


def node_views(
    worker: GroupWorker,
    spec: Mapping[str, Any],
    name: str,
    nodes: Sequence[NodeView],
    records: Mapping[str, Recorded],
) -> tuple[NodeView, ...]:
    """The pool's nodes as ``decide`` sees them (pure but for ``worker``'s makings).

    A Node object of a slot counts with its template: :data:`CURRENT` when its record's
    digest is its slot's. A node still being made counts as starting (not reported,
    since its making started), whatever its Node object says yet; one being made that
    has no Node object yet counts so too. Nodes that are no slot of the pool are not its.
    """
    prefix = node_prefix(name, spec)
    digests = slot_digests(spec)
    shape = pool_spec(prefix, spec).shape
    views: dict[str, NodeView] = {}
    for node in nodes:
        if node.name not in digests:
            continue
        making = worker.making.get(node.name)
        record = records.get(node.name)
        made_from = making.digest if making else (record.digest if record else "")
        template = CURRENT if made_from == digests[node.name] else made_from or "unrecorded"
        view = replace(node, template=template)
        if making is not None:
            view = replace(view, ready=False, reported=False, since=making.started)
        views[node.name] = view
    for slot, making in worker.making.items():
        if slot not in views and slot in digests:
            views[slot] = NodeView(
                name=slot,
                ready=False,
                since=making.started,
                allocatable=shape.allocatable,
                template=CURRENT if making.digest == digests[slot] else making.digest,
                reported=False,
            )
    return tuple(sorted(views.values(), key=lambda n: (node_index(prefix, n.name) or 0, n.name)))


def _make_node(
    worker: GroupWorker, name: str, inputs: InstanceInputs, join: Join
) -> dict[str, Any]:
    """Make node ``name`` (in a thread): its VM from scratch, booted, then joined and Ready.

    The node is named after its slot; its VM's domain carries its environment's prefix.
    """
    made = members._make(worker, inputs)
    if not made:
        return {}  # the pool was deleted meanwhile: the VM is gone again
    ca = cluster_ca(join.kubeconfig)
    request = JoinRequest(
        name=name,
        pool=join.pool,
        ssh_host=str(made.get("address") or "127.0.0.1"),
        ssh_port=inputs.ssh_port or 22,
        endpoint=join.endpoint,
        ca_hash=ca_cert_hash(ca),
        labels=dict(join.labels),
        taints=list(join.taints),
        ssh_client=join.ssh_client,
    )
    join_vm(
        request,
        kubeconfig=join.kubeconfig,
        version=join.version,
        ca_pem=ca,
        host_keys=tuple(made.get("host_keys") or ()),
        timeout=JOIN_TIMEOUT,
        say=lambda line: log.info("%s: %s", worker.name, line),
    )
    return made


def _remove_node(client: Client, name: str, inputs: InstanceInputs) -> None:
    """Node ``name``'s Node object, then its VM (domain, disks, seed)."""
    _delete_node(client, name)
    members.remove_member(inputs)


NODE_SAID = members.Said(
    ready="NodeReady", up="joined and is Ready", failed="NodeFailed", down="did not join"
)
"""How the end of a node's making is said (its Events)."""


def act(
    worker: GroupWorker,
    client: Client,
    join: Join,
    spec: Mapping[str, Any],
    decision: Decision,
    observed: Observed,
    records: Mapping[str, Recorded],
    *,
    now: float,
) -> tuple[Decision, tuple[Event, ...], dict[str, Recorded]]:
    """Carry out ``decision`` on the pool's VMs and Nodes.

    Repairs and removals happen now (a removal drains first; a drain a budget refuses
    keeps the node, as for any pool); each node to make (a new one, a repair, or one a
    killed process left ``booting``) starts in a thread.

    Returns:
        The decision as it ended, the Events beyond its own, and the nodes' records.
    """
    inputs = slot_inputs(spec)
    digests = slot_digests(spec)
    kept = dict(records)
    extra: list[Event] = []
    for name in decision.repair:
        if name in inputs and name not in worker.making:
            _remove_node(client, name, inputs[name])
            kept.pop(name, None)
    for name in decision.roll:
        refused = try_drain(client, name, observed.pods, uncordon_on_refusal=False)
        if refused is None and name in inputs:
            _remove_node(client, name, inputs[name])
            kept.pop(name, None)
        elif refused is not None:
            extra.append(Event("Warning", "UpgradeBlocked", f"node {name} waits: {refused}"))
    target = decision.target
    for name in decision.remove:
        refused = try_drain(client, name, observed.pods)
        if refused is None:
            if name in inputs:
                _remove_node(client, name, inputs[name])
            kept.pop(name, None)
            continue
        target += 1
        extra.append(Event("Warning", "ScaleDownBlocked", f"node {name} stays: {refused}"))
    resumed = [
        name
        for name, record in records.items()
        if record.phase == "booting" and name not in worker.making
    ]
    for name in (*decision.repair, *decision.create, *resumed):
        if name in worker.making or name not in inputs:
            continue
        future = members._pool.submit(_make_node, worker, name, inputs[name], join)
        worker.making[name] = members._Making(digest=digests[name], started=now, future=future)
        kept[name] = Recorded(digest=digests[name], created=now, phase="booting")
    if target != decision.target:
        decision = replace(decision, target=target, memory=replace(decision.memory, target=target))
    return decision, tuple(extra), kept


def members_status(
    records: Mapping[str, Recorded], views: Sequence[NodeView], spec: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The nodes' records for the status (what ``unkai ssh`` and ``unkai status`` read)."""
    hosts = {slot["name"]: slot["host"] for slot in spec.get("slots") or ()}
    ready = {v.name: v.ready for v in views}
    found = []
    for name in sorted(records, key=lambda n: (len(n), n)):
        record = records[name]
        phase = record.phase
        if phase != "booting":
            phase = "healthy" if ready.get(name) else ("missing" if name not in ready else "down")
        found.append(members.record_entry(name, record, host=hosts.get(name, ""), phase=phase))
    return found


def remove_all(worker: GroupWorker, client: Client, spec: Mapping[str, Any]) -> list[str]:
    """Every node of a ``vm`` pool being deleted (those in the making go when they end)."""
    worker.deleted = True
    removed = []
    for name, inputs in slot_inputs(spec).items():
        if name in worker.making:
            continue
        try:
            _delete_node(client, name)
        except DriverError as err:
            log.warning("%s: %s", worker.name, err)
        if members.remove_member(inputs):
            removed.append(name)
    return removed
