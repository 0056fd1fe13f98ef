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
import ipaddress
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

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
from unkai.provider._resource import Diff, Resource
from unkai.provider._values import UNKNOWN, Props
from unkai.toolchain import kubernetes_version

NODES_READY_TIMEOUT = 180.0
"""Seconds a pool's nodes get to turn Ready (kwok marks them within seconds)."""

_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _say(name: str) -> Callable[[str], None]:
    # As for container images: the provider framework offers no Log channel to a
    # handler, so progress goes to the plugin's stderr.
    def say(line: str) -> None:
        print(f"unkai: {name}: {line}", file=sys.stderr, flush=True)

    return say


def _whole(value: Any, *, key: str, low: int, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != int(value)
        or not low <= value <= high
    ):
        raise ConfigError(
            "must be a whole number", key_path=key, value=value, allowed=f"{low}..{high}"
        )
    return int(value)


def ca_fingerprint(ca_file: Path) -> str:
    """``sha256:<hex>`` of the cluster CA certificate file (PEM bytes)."""
    return "sha256:" + hashlib.sha256(ca_file.read_bytes()).hexdigest()


class Cluster(Resource):
    """The control plane of one cluster on this machine.

    Inputs: ``name``, ``version`` (must be the toolchain's pinned Kubernetes version),
    ``host`` (loopback), ``port``, ``state_dir`` (absolute:
    ``<project>/.unkai/clusters/<name>``), ``healthy`` (always true: what is wanted).

    Outputs besides the inputs: ``endpoint`` (``https://host:port``), ``kubeconfig``
    (path of the admin kubeconfig), ``ca_fingerprint`` (``sha256:`` of the CA
    certificate), ``components`` (name → pid).

    The resource id is the state folder. A control plane that is not healthy (stopped,
    a machine rebooted) shows as a change of ``healthy`` in every diff, so ``up`` starts
    it again; ``read`` reports ``healthy: false`` the same way.
    """

    token = "unkai:kubernetes:Cluster"
    inputs = ("name", "version", "host", "port", "state_dir", "healthy")
    replace_on: ClassVar = {
        "name": "a cluster cannot be renamed: its certificates name it",
        "version": "the control plane's binaries change: the cluster is created anew",
        "host": "the API server's certificates name its endpoint: the cluster is created anew",
        "port": "the API server's certificates name its endpoint: the cluster is created anew",
        "state_dir": "the cluster's data lives in its state folder: it is created anew there",
    }

    def check(self, news: Props) -> dict[str, Any]:
        """Version the pinned one, host loopback, port a port, state folder absolute."""
        name, version = news.get("name"), news.get("version")
        host, port, state_dir = (
            news.get("host", "127.0.0.1"),
            news.get("port"),
            news.get("state_dir"),
        )
        pinned = kubernetes_version()
        if not isinstance(name, str) or not name:
            raise ConfigError("must be a cluster name", key_path="name", value=name)
        if version is not UNKNOWN and version != pinned:
            raise ConfigError(
                f"Kubernetes {version} is not the toolchain's pinned version {pinned}"
                " (toolchain.toml); the local control plane runs only the pinned binaries",
                key_path="version",
                value=version,
                allowed=pinned,
            )
        if host is not UNKNOWN:
            try:
                loopback = ipaddress.ip_address(str(host)).is_loopback
            except ValueError:
                loopback = str(host) == "localhost"
            if not loopback:
                raise ConfigError(
                    "a local control plane listens on loopback only",
                    key_path="host",
                    value=host,
                    allowed="127.0.0.1, ::1 or localhost",
                )
        if port is not UNKNOWN:
            port = _whole(port, key="port", low=1, high=65535)
        if state_dir is not UNKNOWN and (
            not isinstance(state_dir, str) or not os.path.isabs(state_dir)
        ):
            raise ConfigError(
                "must be an absolute path", key_path="state_dir", value=state_dir,
                allowed="<project>/.unkai/clusters/<name>",
            )  # fmt: skip
        return {
            "name": name,
            "version": version,
            "host": host,
            "port": port,
            "state_dir": state_dir,
            "healthy": True,
        }

    @staticmethod
    def _control_plane(props: Props) -> ControlPlane:
        return ControlPlane(
            name=props.get("name"),
            state_dir=Path(props.get("state_dir")),
            host=props.get("host"),
            port=int(props.get("port")),
            version=props.get("version"),
        )

    def diff(self, olds: Props, news: Props) -> Diff:
        """The generic diff, plus ``healthy`` when the running control plane is not.

        Looks at the processes (health URLs) but changes nothing.
        """
        result = super().diff(olds, news)
        if "healthy" in result.changed or result.replaces or not olds.get("state_dir"):
            return result
        if not self._control_plane(olds).is_healthy():
            return Diff((*result.changed, "healthy"), result.replaces, result.reasons)
        return result

    def _outputs(self, inputs: Props, cp: ControlPlane, *, healthy: bool) -> dict[str, Any]:
        ca = cp.state_dir / "pki" / "ca.crt"
        return {
            **{key: inputs.get(key) for key in self.inputs},
            "healthy": healthy,
            "endpoint": cp.endpoint,
            "kubeconfig": str(cp.kubeconfig_path),
            "ca_fingerprint": ca_fingerprint(ca) if ca.is_file() else None,
            "components": {s.name: s.pid for s in cp.status() if s.pid is not None},
        }

    def create(self, inputs: Props) -> tuple[str, dict[str, Any]]:
        """Start the control plane (idempotent) and wait until every component answers.

        Side effects: writes certificates, kubeconfigs and data under ``state_dir``;
        starts detached processes that outlive the provider (until ``delete``).
        """
        cp = self._control_plane(inputs)
        cp.start(say=_say(f"cluster {cp.name}"))
        return str(cp.state_dir), self._outputs(inputs, cp, healthy=True)

    def read(self, resource_id: str, state: Props) -> dict[str, Any] | None:
        """The control plane as it is: None when its state folder is gone."""
        cp = self._control_plane(state)
        if not cp.state_dir.is_dir():
            return None
        return self._outputs(state, cp, healthy=cp.is_healthy())

    def update(self, resource_id: str, olds: Props, news: Props) -> dict[str, Any]:
        """Start what is not running (the only in-place change is ``healthy``)."""
        _, outputs = self.create(news)
        return outputs

    def delete(self, resource_id: str, state: Props) -> None:
        """Stop every process of the control plane and delete its state folder."""
        self._control_plane(state).remove()


class NodePool(Resource):
    """The simulated (KWOK) nodes of one node pool of a local cluster.

    Inputs: ``cluster`` (name), ``kubeconfig`` and ``cluster_ca`` (the Cluster's
    ``kubeconfig`` and ``ca_fingerprint`` outputs), ``name``, ``size``, ``cpu`` and
    ``memory`` (each node's capacity, quantities), ``pods``, ``machine_type``,
    ``labels``, ``taints`` (``{key, value, effect}``).

    Outputs besides the inputs: ``nodes`` (their names), ``ready`` (how many Ready).

    The resource id is ``<cluster>/<pool>``. A new size creates or deletes the
    highest-numbered nodes only; new labels or taints patch the pool's nodes in place;
    a new capacity or machine type replaces the pool (a node's capacity is fixed when
    it registers).
    """

    token = "unkai:kubernetes:NodePool"
    inputs = (
        "cluster", "kubeconfig", "cluster_ca", "name", "size", "cpu", "memory", "pods",
        "machine_type", "labels", "taints",
    )  # fmt: skip
    replace_on: ClassVar = {
        "cluster": "a pool cannot move to another cluster: its nodes are created there anew",
        "kubeconfig": "a pool cannot move to another cluster: its nodes are created there anew",
        "cluster_ca": "the cluster was created anew: its pools' nodes are created in it",
        "name": "a pool cannot be renamed: its nodes are named after it",
        "cpu": "a node's capacity is fixed when it registers: the nodes are created anew",
        "memory": "a node's capacity is fixed when it registers: the nodes are created anew",
        "pods": "a node's capacity is fixed when it registers: the nodes are created anew",
        "machine_type": "a node's machine type is fixed: the nodes are created anew",
    }

    def check(self, news: Props) -> dict[str, Any]:
        """Size a whole number ≥ 0, capacities quantities, labels text, taints valid."""
        values = {key: news.get(key) for key in self.inputs}
        values["pods"] = news.get("pods", 110)
        values["labels"] = news.get("labels") or {}
        values["taints"] = news.get("taints") or []
        if values["size"] is not UNKNOWN:
            values["size"] = _whole(values["size"], key="size", low=0, high=100_000)
        if values["pods"] is not UNKNOWN:
            values["pods"] = _whole(values["pods"], key="pods", low=1, high=100_000)
        for key in ("cpu", "memory"):
            if values[key] is not UNKNOWN and (not isinstance(values[key], str) or not values[key]):
                raise ConfigError("must be a quantity", key_path=key, value=values[key])
        labels = values["labels"]
        if labels is not UNKNOWN and (
            not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values())
        ):
            raise ConfigError("must map label names to text", key_path="labels")
        taints = values["taints"]
        if taints is not UNKNOWN:
            if not isinstance(taints, list):
                raise ConfigError("must be a list of taints", key_path="taints")
            for i, taint in enumerate(taints):
                if not isinstance(taint, Mapping) or taint.get("effect") not in _EFFECTS:
                    raise ConfigError(
                        "must be {key, value, effect}",
                        key_path=f"taints.{i}",
                        allowed=f"effect one of {', '.join(_EFFECTS)}",
                    )
        return values

    @staticmethod
    def _pool(props: Props) -> FakeNodePool:
        return FakeNodePool(
            name=props.get("name"),
            size=int(props.get("size")),
            cpu=props.get("cpu"),
            memory=props.get("memory"),
            pods=int(props.get("pods")),
            machine_type=props.get("machine_type"),
            labels=dict(props.get("labels") or {}),
            taints=tuple(
                NodeTaint(key=t["key"], effect=t["effect"], value=t.get("value") or "")
                for t in props.get("taints") or []
            ),
        )

    def _outputs(self, props: Props) -> dict[str, Any]:
        nodes = list_fake_nodes(kubeconfig=Path(props.get("kubeconfig")), pool=props.get("name"))
        return {
            **{key: props.get(key) for key in self.inputs},
            "nodes": [n.name for n in nodes],
            "ready": sum(n.ready for n in nodes),
        }

    def _sync(self, props: Props) -> None:
        pool = self._pool(props)
        kubeconfig = Path(props.get("kubeconfig"))
        created, deleted = sync_fake_nodes(kubeconfig=kubeconfig, pool=pool)
        say = _say(f"node pool {props.get('cluster')}/{pool.name}")
        if created or deleted:
            say(f"{len(created)} nodes created, {len(deleted)} deleted")
        wait_nodes_ready(
            kubeconfig=kubeconfig, pool=pool.name, count=pool.size, timeout=NODES_READY_TIMEOUT
        )

    def create(self, inputs: Props) -> tuple[str, dict[str, Any]]:
        """Create the pool's nodes and wait until all are Ready.

        Side effects: Node objects ``<pool>-0`` … on the cluster; kwok plays their kubelet.
        """
        self._sync(inputs)
        return f"{inputs.get('cluster')}/{inputs.get('name')}", self._outputs(inputs)

    def read(self, resource_id: str, state: Props) -> dict[str, Any] | None:
        """The pool as it is: ``size`` is how many nodes exist; None when none do.

        A cluster whose API server does not answer reports the recorded state.
        """
        kubeconfig = Path(state.get("kubeconfig"))
        if not kubeconfig.is_file():
            return None
        try:
            outputs = self._outputs(state)
        except DriverError:
            return {key: state.get(key) for key in (*self.inputs, "nodes", "ready")}
        if not outputs["nodes"] and state.get("size"):
            return None
        outputs["size"] = len(outputs["nodes"])
        return outputs

    def update(self, resource_id: str, olds: Props, news: Props) -> dict[str, Any]:
        """Scale the pool (only the highest-numbered nodes change) and patch labels/taints."""
        self._sync(news)
        if olds.get("labels") != news.get("labels") or olds.get("taints") != news.get("taints"):
            dropped = sorted(set(olds.get("labels") or {}) - set(news.get("labels") or {}))
            patch = node_metadata_patch(
                labels=news.get("labels") or {},
                taints=[
                    {k: v for k, v in t.items() if k != "value" or v}
                    for t in news.get("taints") or []
                ],
                dropped_labels=dropped,
            )
            patch_pool_nodes(
                kubeconfig=Path(news.get("kubeconfig")), pool=news.get("name"), patch=patch
            )
        return self._outputs(news)

    def delete(self, resource_id: str, state: Props) -> None:
        """Delete the pool's nodes (their pods are rescheduled or left Pending).

        A cluster already gone (its kubeconfig deleted) has no nodes left to delete.
        """
        kubeconfig = Path(state.get("kubeconfig"))
        if kubeconfig.is_file():
            pool = self._pool(state)
            sync_fake_nodes(kubeconfig=kubeconfig, pool=FakeNodePool(**{**vars(pool), "size": 0}))
