"""``unkai:kubernetes:Cluster`` and ``unkai:kubernetes:NodePool``: a local cluster.

A Cluster is the control plane only (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok and unkai's operator on loopback,
:class:`~unkai.drivers.kubernetes.ControlPlane`); each node pool is a resource of its
own, a NodePool object on the cluster whose nodes the operator makes and keeps, so
scaling one pool changes that resource alone in a preview. A node pool on ``local`` is
simulated nodes (KWOK) with its machine type as capacity, its labels and taints.

A pool names its cluster by kubeconfig path and CA fingerprint: a cluster replaced (a
new version or endpoint) has a new CA, so its pools are replaced with it, even though
the new cluster's kubeconfig lives at the same path.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from unkai.drivers._ssh import ssh_executable
from unkai.drivers.kubernetes import (
    ControlPlane,
    PoolStatus,
    apply_node_pool,
    delete_fake_nodes,
    delete_node_pool,
    node_metadata_patch,
    patch_pool_nodes,
    read_node_pool,
    wait_node_pool,
)
from unkai.drivers.kubernetes._join import ensure_sandbox_image
from unkai.errors import ConfigError, DriverError
from unkai.kinds import (
    ClusterInputs,
    ClusterState,
    NodePoolInputs,
    NodePoolState,
    Taint,
    input_values,
)
from unkai.provider._log import say
from unkai.provider._resource import Diff, Resource
from unkai.provider._values import Props
from unkai.provider.resources.instance_group import NO_WAIT
from unkai.render import sandbox_image
from unkai.toolchain import ensure_pause, kubernetes_version

NODES_READY_TIMEOUT = 300.0
"""Seconds a pool gets to settle: the operator acts every few seconds and kwok marks
nodes Ready within seconds, but a pool of a thousand nodes takes minutes on two cores."""


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
        metrics=cluster.metrics,
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
        """Start what is not running, or runs with other flags (``healthy``, ``metrics``)."""
        return self.create(news)[1]

    def delete(self, resource_id: str, state: ClusterState) -> None:
        """Stop every process of the control plane and delete its state folder."""
        _control_plane(state).remove()


def pool_object(pool: NodePoolInputs) -> dict[str, Any]:
    """The object ``up`` applies: the rendered manifest.

    A ``vm`` pool's gets each host's image volume and the SSH client the operator joins
    the VMs with (this run's: the environment's, with the operator key).
    """
    obj: dict[str, Any] = yaml.safe_load(pool.manifest)
    if pool.image_volumes:
        obj["spec"]["imageVolumes"] = dict(sorted(pool.image_volumes.items()))
        client = ssh_executable()
        if client:
            obj["spec"]["sshClient"] = client
    return obj


class NodePool(Resource[NodePoolInputs, NodePoolState]):
    """One node pool: its NodePool object, whose nodes unkai's operator keeps.

    See :class:`unkai.kinds.NodePoolInputs`. ``create`` and ``update`` apply the rendered
    object and wait until the operator has acted on it and its nodes are Ready; ``read``
    reports the object's spec (what ``up`` owns) and its status (what the operator did),
    so a pool the operator repaired or scaled between its bounds is no change. A pool
    names its cluster by kubeconfig path and CA fingerprint: a cluster replaced has a new
    CA, so its pools are replaced with it, even though the new cluster's kubeconfig lives
    at the same path.
    """

    inputs_model = NodePoolInputs
    state_model = NodePoolState

    def validate(self, inputs: NodePoolInputs, *, secrets: frozenset[str]) -> None:
        """The bounds must hold the size: the operator never goes past them."""
        low = inputs.size if inputs.min_size is None else inputs.min_size
        high = inputs.size if inputs.max_size is None else inputs.max_size
        if not low <= inputs.size <= high:
            raise ConfigError(
                f"node pool {inputs.name}: need min_size ≤ size ≤ max_size, got"
                f" {low} ≤ {inputs.size} ≤ {high}",
                key_path="size",
                value=inputs.size,
                allowed=f"{low} to {high}",
            )

    @staticmethod
    def _state(pool: NodePoolInputs, found: PoolStatus) -> NodePoolState:
        return NodePoolState(
            **input_values(pool),
            nodes=found.nodes,
            ready=found.ready,
            target=found.target,
        )

    def _apply(self, pool: NodePoolInputs) -> NodePoolState:
        kubeconfig = Path(pool.kubeconfig)
        if pool.image_volumes:
            # The nodes' containerd pulls the pod sandbox from unkai's registry.
            pause = ensure_pause(say=say)
            ensure_sandbox_image(reference=sandbox_image(), binary=pause.binary, say=say)
        found = apply_node_pool(kubeconfig=kubeconfig, manifest=pool_object(pool))
        if pool.image_volumes and os.environ.get(NO_WAIT) == "1":
            say(f"{pool.cluster}: node pool {pool.name}: applied; not waiting (--no-wait)")
            return self._state(pool, found)
        found = wait_node_pool(
            kubeconfig=kubeconfig,
            name=pool.name,
            timeout=pool.timeout,
            say=lambda line: say(f"{pool.cluster}: {line}"),
        )
        return self._state(pool, found)

    def create(self, inputs: NodePoolInputs) -> tuple[str, NodePoolState]:
        """Apply the pool's NodePool object and wait until its nodes are Ready.

        Side effects: the object on the cluster; the operator creates Node objects
        ``<pool>-0`` … for it, which kwok plays the kubelet of.
        """
        return f"{inputs.cluster}/{inputs.name}", self._apply(inputs)

    def read(self, resource_id: str, state: NodePoolState) -> NodePoolState | None:
        """The pool as the cluster has it; None when its object is gone.

        ``size``, the bounds, labels, taints and auto-repair are the object's spec (an
        edit by hand shows as drift); ``nodes``, ``ready`` and ``target`` its status. A
        cluster whose API server does not answer reports the recorded state.
        """
        kubeconfig = Path(state.kubeconfig)
        if not kubeconfig.is_file():
            return None
        try:
            found = read_node_pool(kubeconfig=kubeconfig, name=state.name)
        except DriverError:
            return state
        if found is None or found.deleting:
            return None
        spec = found.spec
        live = state.model_copy(
            update={
                "size": int(spec.get("size", state.size)),
                "min_size": spec.get("minSize", state.min_size),
                "max_size": spec.get("maxSize", state.max_size),
                "auto_repair": bool(spec.get("autoRepair", state.auto_repair)),
                "auto_upgrade": bool(spec.get("autoUpgrade", state.auto_upgrade)),
                "labels": dict(spec.get("labels") or {}),
                "taints": tuple(
                    Taint(key=t["key"], value=t.get("value", ""), effect=t["effect"])
                    for t in spec.get("taints") or ()
                ),
            }
        )
        return self._state(live, found)

    def update(self, resource_id: str, olds: NodePoolState, news: NodePoolInputs) -> NodePoolState:
        """Apply the new object; new labels or taints are also patched onto the nodes."""
        state = self._apply(news)
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
        return state

    def delete(self, resource_id: str, state: NodePoolState) -> None:
        """Delete the pool's object; the operator deletes its nodes first.

        A cluster already gone (its kubeconfig deleted) has no nodes left to delete. A
        pool made before pools were objects has only nodes: they are deleted directly.
        """
        kubeconfig = Path(state.kubeconfig)
        if not kubeconfig.is_file():
            return
        # A vm pool's node being made (a boot and a join) is removed once its making ends.
        timeout = max(NODES_READY_TIMEOUT, state.timeout)
        delete_node_pool(kubeconfig=kubeconfig, name=state.name, timeout=timeout)
        delete_fake_nodes(kubeconfig=kubeconfig, pool=state.name)
