"""Simulated nodes of a node pool: Node objects that kwok keeps Ready.

A pool of size *n* is the nodes ``<pool>-0`` … ``<pool>-<n-1>``, each with the pool's
machine type as capacity, its labels and taints, and kwok's annotation, so kwok (and
only kwok) plays their kubelet: it marks them Ready, renews their leases and runs the
pods the real scheduler binds to them. :func:`fake_node_manifest` is pure; the other
functions talk to the API server through lightkube.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx2
from lightkube import ApiError, Client, codecs
from lightkube.resources.core_v1 import Node

from unkai.drivers.kubernetes._client import kube_session
from unkai.drivers.kubernetes._plan import KWOK_NODE_ANNOTATION
from unkai.errors import DriverError

POOL_LABEL = "unkai.dev/node-pool"
"""The label that names a simulated node's pool (and selects a pool's nodes)."""

_PARALLEL = 8


@dataclass(frozen=True)
class NodeTaint:
    """A node taint, as the model's ``Taint`` (key, value, effect)."""

    key: str
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
    value: str = ""


@dataclass(frozen=True)
class FakeNodePool:
    """A node pool as simulated nodes.

    Attributes:
        name: The pool name (node names and the ``unkai.dev/node-pool`` label).
        size: How many nodes.
        cpu: Each node's CPU capacity, a quantity (the machine type's vCPUs: ``"4"``).
        memory: Each node's memory capacity, a quantity (``"16384Mi"``).
        pods: Each node's pod capacity (kubelet's default: 110).
        machine_type: The machine type name, as ``node.kubernetes.io/instance-type``.
        labels: Further node labels.
        taints: Node taints.
    """

    name: str
    size: int
    cpu: str
    memory: str
    pods: int = 110
    machine_type: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[NodeTaint, ...] = ()


@dataclass(frozen=True)
class NodeState:
    """A simulated node as the API server reports it."""

    name: str
    ready: bool


@dataclass(frozen=True)
class ClusterNode:
    """Any node of a cluster, as ``unkai status`` and the console show it.

    Attributes:
        name: The node's name.
        pool: Its node pool (the ``unkai.dev/node-pool`` label); None for a node of none.
        simulated: Whether kwok plays its kubelet (no container runs on it).
        ready: Whether its Ready condition is True.
    """

    name: str
    pool: str | None
    simulated: bool
    ready: bool


def node_name(pool: str, index: int) -> str:
    """The name of node ``index`` of ``pool``: ``<pool>-<index>``."""
    return f"{pool}-{index}"


def _index(pool: str, name: str) -> int | None:
    match = re.fullmatch(re.escape(pool) + r"-(\d+)", name)
    return int(match[1]) if match else None


def fake_node_manifest(pool: FakeNodePool, index: int) -> dict[str, Any]:
    """The Node object of node ``index`` of ``pool``. Pure.

    Its status carries the capacity (kwok keeps what a node is created with) and
    allocatable equal to it; kwok fills in conditions, addresses and node info.
    """
    name = node_name(pool.name, index)
    labels = {
        **pool.labels,
        POOL_LABEL: pool.name,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    if pool.machine_type:
        labels["node.kubernetes.io/instance-type"] = pool.machine_type
    capacity = {"cpu": pool.cpu, "memory": pool.memory, "pods": str(pool.pods)}
    spec: dict[str, Any] = {}
    if pool.taints:
        spec["taints"] = [
            {"key": t.key, "value": t.value, "effect": t.effect}
            if t.value
            else {"key": t.key, "effect": t.effect}
            for t in pool.taints
        ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": dict(sorted(labels.items())),
            # kwok manages exactly the nodes with this annotation (see the plan's kwok argv).
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": spec,
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def list_fake_nodes(*, kubeconfig: Path, pool: str) -> tuple[NodeState, ...]:
    """The nodes of ``pool``, by index, with whether each is Ready.

    Raises:
        DriverError: the API server refused or did not answer.
    """
    try:
        with kube_session(kubeconfig) as client:
            nodes = list(client.list(Node, labels={POOL_LABEL: pool}))
    except (ApiError, httpx2.HTTPError) as err:
        raise DriverError(f"cannot list the nodes of pool {pool}: {err}") from err
    states = [NodeState(name=_name(node), ready=_ready(node)) for node in nodes]
    return tuple(sorted(states, key=lambda s: (_index(pool, s.name) or 0, s.name)))


def list_nodes(*, kubeconfig: Path) -> tuple[ClusterNode, ...]:
    """Every node of the cluster, by name: its pool, whether kwok plays it, whether Ready.

    Raises:
        DriverError: the API server refused or did not answer.
    """
    try:
        with kube_session(kubeconfig) as client:
            nodes = list(client.list(Node))
    except (ApiError, httpx2.HTTPError) as err:
        raise DriverError(f"cannot list the cluster's nodes: {err}") from err
    found = []
    for node in nodes:
        labels = (node.metadata.labels if node.metadata else None) or {}
        annotations = (node.metadata.annotations if node.metadata else None) or {}
        found.append(
            ClusterNode(
                name=_name(node),
                pool=labels.get(POOL_LABEL),
                simulated=KWOK_NODE_ANNOTATION in annotations,
                ready=_ready(node),
            )
        )
    return tuple(sorted(found, key=lambda n: n.name))


def _name(node: Node) -> str:
    return (node.metadata.name if node.metadata else None) or ""


def _ready(node: Node) -> bool:
    conditions = (node.status.conditions if node.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def create_fake_nodes(*, kubeconfig: Path, pool: FakeNodePool) -> tuple[str, ...]:
    """Create the nodes of ``pool`` that do not exist yet (``<pool>-0`` … ``-<size-1>``).

    Idempotent: existing nodes are left as they are.

    Returns:
        The names of the nodes created.

    Raises:
        DriverError: the API server refused a node.
    """
    existing = {state.name for state in list_fake_nodes(kubeconfig=kubeconfig, pool=pool.name)}
    missing = [i for i in range(pool.size) if node_name(pool.name, i) not in existing]

    def create(client: Client, index: int) -> str:
        manifest = fake_node_manifest(pool, index)
        try:
            client.create(codecs.from_dict(manifest))
        except ApiError as err:
            if err.status.code != 409:
                raise DriverError(
                    f"cannot create node {manifest['metadata']['name']}: {err}"
                ) from err
        except httpx2.HTTPError as err:
            raise DriverError(f"cannot create node {manifest['metadata']['name']}: {err}") from err
        return str(manifest["metadata"]["name"])

    with kube_session(kubeconfig) as client, ThreadPoolExecutor(max_workers=_PARALLEL) as executor:
        return tuple(executor.map(lambda index: create(client, index), missing))


def delete_fake_nodes(*, kubeconfig: Path, pool: str, keep: int = 0) -> tuple[str, ...]:
    """Delete the nodes of ``pool`` whose index is ``keep`` or more (all by default).

    The pods bound to a deleted node are removed by the controller manager's pod
    garbage collector, and their controllers create replacements elsewhere.

    Returns:
        The names of the nodes deleted.

    Raises:
        DriverError: the API server refused a deletion.
    """
    doomed = [
        state.name
        for state in list_fake_nodes(kubeconfig=kubeconfig, pool=pool)
        if (_index(pool, state.name) is None or (_index(pool, state.name) or 0) >= keep)
    ]

    def delete(client: Client, name: str) -> str:
        try:
            client.delete(Node, name)
        except ApiError as err:
            if err.status.code != 404:
                raise DriverError(f"cannot delete node {name}: {err}") from err
        except httpx2.HTTPError as err:
            raise DriverError(f"cannot delete node {name}: {err}") from err
        return name

    with kube_session(kubeconfig) as client, ThreadPoolExecutor(max_workers=_PARALLEL) as executor:
        return tuple(executor.map(lambda name: delete(client, name), doomed))


def sync_fake_nodes(
    *, kubeconfig: Path, pool: FakeNodePool
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Make ``pool`` exactly its size: create the missing nodes, delete the extra ones.

    Returns:
        The names created and the names deleted.

    Raises:
        DriverError: the API server refused a change.
    """
    deleted = delete_fake_nodes(kubeconfig=kubeconfig, pool=pool.name, keep=pool.size)
    created = create_fake_nodes(kubeconfig=kubeconfig, pool=pool)
    return created, deleted


def wait_nodes_ready(
    *, kubeconfig: Path, pool: str, count: int, timeout: float = 300.0
) -> Sequence[NodeState]:
    """Wait until ``pool`` has ``count`` nodes, all Ready.

    Raises:
        DriverError: they were not all Ready within ``timeout`` seconds (says how many were).
    """
    deadline = time.monotonic() + timeout
    states: Sequence[NodeState] = ()
    while time.monotonic() < deadline:
        states = list_fake_nodes(kubeconfig=kubeconfig, pool=pool)
        if len(states) == count and all(s.ready for s in states):
            return states
        time.sleep(0.5)
    ready = sum(s.ready for s in states)
    raise DriverError(
        f"pool {pool}: {ready} of {count} nodes Ready after {timeout:.0f} s ({len(states)} exist)"
    )
