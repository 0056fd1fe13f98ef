"""``unkai:kubernetes:Cluster`` and ``unkai:kubernetes:NodePool``: a local cluster.

A Cluster is the control plane only (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok on loopback, :class:`~unkai.drivers.kubernetes.ControlPlane`);
each node pool is a resource of its own, so scaling one pool changes that resource alone
in a preview and touches only that pool's nodes. A node pool on ``local`` is simulated
nodes (KWOK) with its machine type as capacity, its labels and taints.

A pool names its cluster by kubeconfig path and CA fingerprint: a cluster replaced (a
new version or endpoint) has a new CA, so its pools are replaced with it, even though
the new cluster's kubeconfig lives at the same path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from unkai.drivers.kubernetes import (
    ControlPlane,
    FakeNodePool,
    NodeTaint,
    list_fake_nodes,
    node_metadata_patch,
    patch_pool_nodes,
    sync_fake_nodes,
    wait_nodes_ready,
)
from unkai.errors import ConfigError, DriverError
from unkai.kinds import (
    ClusterInputs,
    ClusterState,
    NodePoolInputs,
    NodePoolState,
    input_values,
)
from unkai.provider._log import say
from unkai.provider._resource import Diff, Resource
from unkai.provider._values import Props
from unkai.toolchain import kubernetes_version

NODES_READY_TIMEOUT = 180.0
"""Seconds a pool's nodes get to turn Ready (kwok marks them within seconds)."""


def ca_fingerprint(ca_file: Path) -> str:
    """``sha256:<hex>`` of the cluster CA certificate file (PEM bytes)."""
    return "sha256:" + hashlib.sha256(ca_file.read_bytes()).hexdigest()


def _control_plane(cluster: ClusterInputs) -> ControlPlane:
    return ControlPlane(
        name=cluster.name,
        state_dir=Path(cluster.state_dir),
        host=cluster.host,
        port=cluster.port,
        version=cluster.version,
    )


class Cluster(Resource[ClusterInputs, ClusterState]):
    """The control plane of one cluster on this machine (see :class:`unkai.kinds.ClusterInputs`).

    Outputs besides the inputs: ``endpoint`` (``https://host:port``), ``kubeconfig``
    (path of the admin kubeconfig), ``ca_fingerprint`` (``sha256:`` of the CA
    certificate), ``components`` (name → pid).
    """

    inputs_model = ClusterInputs
    state_model = ClusterState

    def validate(self, inputs: ClusterInputs, *, secrets: frozenset[str]) -> None:
        """The version must be the toolchain's pinned one: only those binaries exist here."""
        pinned = kubernetes_version()
        if inputs.version != pinned:
            raise ConfigError(
                f"Kubernetes {inputs.version} is not the toolchain's pinned version {pinned}"
                " (toolchain.toml); the local control plane runs only the pinned binaries",
                key_path="version",
                value=inputs.version,
                allowed=pinned,
            )

    def diff(self, olds: Props, news: Props) -> Diff:
        """The generic diff, plus ``healthy`` when the running control plane is not.

        Looks at the processes (health URLs) but changes nothing.
        """
        result = super().diff(olds, news)
        if "healthy" in result.changed or result.replaces or not olds.get("state_dir"):
            return result
        state = ClusterInputs.model_validate(
            {k: v for k, v in olds.values.items() if k in ClusterInputs.model_fields}
            | {"healthy": True}
        )
        if not _control_plane(state).is_healthy():
            return Diff((*result.changed, "healthy"), result.replaces, result.reasons)
        return result

    @staticmethod
    def _state(inputs: ClusterInputs, cp: ControlPlane, *, healthy: bool) -> ClusterState:
        ca = cp.state_dir / "pki" / "ca.crt"
        return ClusterState(
            **{**input_values(inputs), "healthy": healthy},
            endpoint=cp.endpoint,
            kubeconfig=str(cp.kubeconfig_path),
            ca_fingerprint=ca_fingerprint(ca) if ca.is_file() else None,
            components={s.name: s.pid for s in cp.status() if s.pid is not None},
        )

    def create(self, inputs: ClusterInputs) -> tuple[str, ClusterState]:
        """Start the control plane (idempotent) and wait until every component answers.

        Side effects: writes certificates, kubeconfigs and data under ``state_dir``;
        starts detached processes that outlive the provider (until ``delete``).
        """
        cp = _control_plane(inputs)
        cp.start(say=say)
        return str(cp.state_dir), self._state(inputs, cp, healthy=True)

    def read(self, resource_id: str, state: ClusterState) -> ClusterState | None:
        """The control plane as it is: None when its state folder is gone."""
        cp = _control_plane(state)
        if not cp.state_dir.is_dir():
            return None
        return self._state(state, cp, healthy=cp.is_healthy())

    def update(self, resource_id: str, olds: ClusterState, news: ClusterInputs) -> ClusterState:
        """Start what is not running (the only in-place change is ``healthy``)."""
        return self.create(news)[1]

    def delete(self, resource_id: str, state: ClusterState) -> None:
        """Stop every process of the control plane and delete its state folder."""
        _control_plane(state).remove()


def _fake_pool(pool: NodePoolInputs, *, size: int | None = None) -> FakeNodePool:
    return FakeNodePool(
        name=pool.name,
        size=pool.size if size is None else size,
        cpu=pool.cpu,
        memory=pool.memory,
        pods=pool.pods,
        machine_type=pool.machine_type,
        labels=dict(pool.labels),
        taints=tuple(NodeTaint(key=t.key, effect=t.effect, value=t.value) for t in pool.taints),
    )


class NodePool(Resource[NodePoolInputs, NodePoolState]):
    """The simulated (KWOK) nodes of one node pool of a local cluster.

    See :class:`unkai.kinds.NodePoolInputs`. A pool names its cluster by kubeconfig path
    and CA fingerprint: a cluster replaced has a new CA, so its pools are replaced with
    it, even though the new cluster's kubeconfig lives at the same path.
    """

    inputs_model = NodePoolInputs
    state_model = NodePoolState

    def _state(self, pool: NodePoolInputs) -> NodePoolState:
        nodes = list_fake_nodes(kubeconfig=Path(pool.kubeconfig), pool=pool.name)
        return NodePoolState(
            **input_values(pool),
            nodes=tuple(n.name for n in nodes),
            ready=sum(n.ready for n in nodes),
        )

    def _sync(self, pool: NodePoolInputs) -> None:
        kubeconfig = Path(pool.kubeconfig)
        created, deleted = sync_fake_nodes(kubeconfig=kubeconfig, pool=_fake_pool(pool))
        if created or deleted:
            say(f"node pool {pool.cluster}/{pool.name}: {len(created)} nodes created, "
                f"{len(deleted)} deleted")  # fmt: skip
        wait_nodes_ready(
            kubeconfig=kubeconfig, pool=pool.name, count=pool.size, timeout=NODES_READY_TIMEOUT
        )

    def create(self, inputs: NodePoolInputs) -> tuple[str, NodePoolState]:
        """Create the pool's nodes and wait until all are Ready.

        Side effects: Node objects ``<pool>-0`` … on the cluster; kwok plays their kubelet.
        """
        self._sync(inputs)
        return f"{inputs.cluster}/{inputs.name}", self._state(inputs)

    def read(self, resource_id: str, state: NodePoolState) -> NodePoolState | None:
        """The pool as it is: ``size`` is how many nodes exist; None when none do.

        A cluster whose API server does not answer reports the recorded state.
        """
        if not Path(state.kubeconfig).is_file():
            return None
        try:
            found = self._state(state)
        except DriverError:
            return state
        if not found.nodes and state.size:
            return None
        return found.model_copy(update={"size": len(found.nodes or ())})

    def update(self, resource_id: str, olds: NodePoolState, news: NodePoolInputs) -> NodePoolState:
        """Scale the pool (only the highest-numbered nodes change) and patch labels/taints."""
        self._sync(news)
        if olds.labels != news.labels or olds.taints != news.taints:
            patch = node_metadata_patch(
                labels=dict(news.labels),
                taints=[
                    {"key": t.key, "effect": t.effect, **({"value": t.value} if t.value else {})}
                    for t in news.taints
                ],
                dropped_labels=sorted(set(olds.labels) - set(news.labels)),
            )
            patch_pool_nodes(kubeconfig=Path(news.kubeconfig), pool=news.name, patch=patch)
        return self._state(news)

    def delete(self, resource_id: str, state: NodePoolState) -> None:
        """Delete the pool's nodes (their pods are rescheduled or left Pending).

        A cluster already gone (its kubeconfig deleted) has no nodes left to delete.
        """
        kubeconfig = Path(state.kubeconfig)
        if kubeconfig.is_file():
            sync_fake_nodes(kubeconfig=kubeconfig, pool=_fake_pool(state, size=0))
