"""The ``kubernetes`` module: clusters, node pools and workloads."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from unkai.kinds._base import Inputs, Replace, Secret, State
from unkai.kinds._types import AbsolutePath, NonEmpty
from unkai.model._base import DnsLabel

__all__ = [
    "ClusterInputs",
    "ClusterState",
    "NodePoolInputs",
    "NodePoolState",
    "Taint",
    "VmNodeInputs",
    "VmNodeState",
    "WorkloadInputs",
    "WorkloadState",
]

_ENDPOINT = "the API server's certificates name its endpoint: the cluster is created anew"
_OTHER_CLUSTER = "a pool cannot move to another cluster: its nodes are created there anew"


def _loopback(host: str) -> str:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(
            "a local control plane listens on loopback only; allowed: 127.0.0.1, ::1 or localhost"
        )
    return host


class ClusterInputs(Inputs):
    """The control plane of one cluster on this machine.

    The resource id is the state folder. A control plane that is not healthy (stopped, a
    machine rebooted) shows as a change of ``healthy``, so ``up`` starts it again.
    """

    token: ClassVar[str] = "unkai:kubernetes:Cluster"

    name: Annotated[NonEmpty, Replace("a cluster cannot be renamed: its certificates name it")]
    """The cluster's name."""
    version: Annotated[
        NonEmpty, Replace("the control plane's binaries change: the cluster is created anew")
    ]
    """The Kubernetes version (the toolchain's pinned one)."""
    host: Annotated[str, AfterValidator(_loopback), Replace(_ENDPOINT)] = "127.0.0.1"
    """The API server's address (loopback)."""
    port: Annotated[int, Field(ge=1, le=65535), Replace(_ENDPOINT)]
    """The API server's port."""
    state_dir: Annotated[
        AbsolutePath,
        Replace("the cluster's data lives in its state folder: it is created anew there"),
    ]
    """Where the cluster keeps its certificates and data (``<project>/.unkai/clusters/<name>``)."""
    metrics: bool = False
    """Whether metrics-server runs beside it and serves ``metrics.k8s.io`` (the HPA's
    input): true for a cluster with ``vm`` node pools, whose kubelets it scrapes."""
    healthy: Literal[True] = True
    """Always true: what is wanted. A stopped control plane reads as false."""


class ClusterState(ClusterInputs, State):
    """The control plane as it runs."""

    healthy: bool = True  # type: ignore[assignment]
    """Whether every component answers its health check."""
    endpoint: str | None = None
    """``https://host:port``."""
    kubeconfig: str | None = None
    """Path of the admin kubeconfig."""
    ca_fingerprint: str | None = None
    """``sha256:`` of the cluster CA certificate."""
    components: Mapping[str, int] | None = None
    """Component name → pid."""


class Taint(Inputs):
    """A node taint."""

    key: NonEmpty
    """The taint's key."""
    value: str = ""
    """Its value (may be empty)."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
    """What it does to pods that do not tolerate it."""


class NodePoolInputs(Inputs):
    """One node pool of a cluster: its ``NodePool`` object, which unkai's operator keeps.

    The resource id is ``<cluster>/<pool>``. ``up`` applies :attr:`manifest` and waits
    until the operator reports the pool's nodes Ready; the operator creates, repairs and
    (between ``min_size`` and ``max_size``) scales the nodes from then on, without
    ``up``. A new size or bounds change the object in place; new labels or taints patch
    the nodes in place; a new capacity, machine type or version rolls the nodes (a new
    one first, then an old one drained), not the pool.
    """

    token: ClassVar[str] = "unkai:kubernetes:NodePool"

    cluster: Annotated[NonEmpty, Replace(_OTHER_CLUSTER)]
    """The cluster's name."""
    kubeconfig: Annotated[NonEmpty, Replace(_OTHER_CLUSTER)]
    """The cluster's admin kubeconfig (its ``kubeconfig`` output)."""
    cluster_ca: Annotated[
        NonEmpty, Replace("the cluster was created anew: its pools' nodes are created in it")
    ]
    """The cluster's ``ca_fingerprint`` output."""
    name: Annotated[NonEmpty, Replace("a pool cannot be renamed: its nodes are named after it")]
    """The pool's name."""
    size: Annotated[int, Field(ge=0, le=100_000)]
    """How many nodes."""
    cpu: NonEmpty
    """Each node's CPU capacity (a quantity)."""
    memory: NonEmpty
    """Each node's memory capacity (a quantity)."""
    pods: Annotated[int, Field(ge=1, le=100_000)] = 110
    """Each node's pod capacity."""
    machine_type: NonEmpty
    """The machine type the nodes stand for."""
    labels: Mapping[str, str] = Field(default_factory=dict)
    """Labels of every node."""
    taints: tuple[Taint, ...] = ()
    """Taints of every node."""
    min_size: Annotated[int, Field(ge=0, le=100_000)] | None = None
    """The autoscaler's floor (null: ``size``)."""
    max_size: Annotated[int, Field(ge=0, le=100_000)] | None = None
    """The autoscaler's ceiling (null: ``size``)."""
    auto_repair: bool = True
    """Whether the operator replaces nodes that stay NotReady."""
    auto_upgrade: bool = True
    """Whether the operator rolls nodes of an old template (shape or version)."""
    manifest: str = ""
    """The ``NodePool`` object, exactly :func:`unkai.render.render_node_pool`; a ``vm``
    pool's with its slots (each node's rendered ``Instance`` inputs, as for a group)."""
    image_volumes: Mapping[str, NonEmpty] = Field(default_factory=dict)
    """A ``vm`` pool's: host → the image volume its nodes' boot disks are layered over."""
    timeout: Annotated[float, Field(gt=0)] = 300
    """Seconds the pool gets to settle (a ``vm`` pool's nodes boot and join: longer)."""


class NodePoolState(NodePoolInputs, State):
    """The pool as the cluster has it: the object's spec, and its status by the operator."""

    nodes: tuple[str, ...] | None = None
    """The nodes' names."""
    ready: int | None = None
    """How many are Ready."""
    target: int | None = None
    """The size the operator aims for (the autoscaler may have moved it from ``size``)."""


class VmNodeInputs(Inputs):
    """A VM of a ``vm`` node pool joined to its cluster with ``kubeadm join``.

    The resource id is ``<cluster>/<node>``. ``create`` puts what a join needs on the
    cluster, issues a one-hour bootstrap token, makes sure the sandbox image is in
    unkai's registry, runs ``playbooks/k8s-node.yml`` on the VM over SSH and waits until
    the node is Ready. The rest of the node's configuration (registry, pod network,
    kube-proxy) is in the VM's own user data (``unkai.render.node_files``). The VM itself
    is an ``Instance`` of its own: a VM made anew (a new UUID) joins anew.
    """

    token: ClassVar[str] = "unkai:kubernetes:VmNode"

    cluster: Annotated[NonEmpty, Replace("a node cannot move to another cluster: it joins anew")]
    """The cluster's name."""
    kubeconfig: Annotated[NonEmpty, Replace("a node cannot move to another cluster: it joins anew")]
    """The cluster's admin kubeconfig (its ``kubeconfig`` output)."""
    cluster_ca: Annotated[NonEmpty, Replace("the cluster was created anew: its nodes join it anew")]
    """The cluster's ``ca_fingerprint`` output."""
    version: NonEmpty
    """The cluster's Kubernetes version (what kubeadm's ClusterConfiguration says)."""
    endpoint: Annotated[
        NonEmpty, Replace("the node reaches its API server elsewhere: it joins anew")
    ]
    """Where the node reaches the API server, ``host:port`` (``10.0.2.2:6443`` from a VM
    on QEMU user networking)."""
    name: Annotated[NonEmpty, Replace("a node cannot be renamed: it joins anew")]
    """The node's name (its VM's)."""
    pool: Annotated[NonEmpty, Replace("a node cannot move to another pool: it joins anew")]
    """The node pool (the ``unkai.dev/node-pool`` label)."""
    vm_uuid: Annotated[NonEmpty, Replace("the VM was made anew: it joins anew")]
    """The VM's libvirt UUID."""
    ssh_host: NonEmpty
    """Where this machine reaches the VM's SSH server."""
    ssh_port: Annotated[int, Field(ge=1, le=65535)]
    """Its port."""
    ssh_host_keys: tuple[NonEmpty, ...]
    """The host keys the VM printed at first boot: the only ones trusted."""
    labels: Mapping[str, str] = Field(default_factory=dict)
    """Labels of the node besides its pool's."""
    taints: tuple[Taint, ...] = ()
    """Taints of the node."""
    timeout: Annotated[float, Field(gt=0)] = 900
    """Seconds the join and the node's first Ready get."""


class VmNodeState(VmNodeInputs, State):
    """The node as the cluster has it."""

    ready: bool | None = None
    """Whether the node is Ready."""
    kubelet_version: str | None = None
    """The version its kubelet reports."""
    container_runtime: str | None = None
    """The runtime its kubelet reports (``containerd://2.4.2``)."""
    join_seconds: float | None = None
    """How long the join took, from the playbook's start to the node's first Ready."""


class WorkloadInputs(Inputs):
    """A workload's Deployment, Service, HPA, PDB and Secret on a cluster.

    The resource id is ``<namespace>/<name>``.
    """

    token: ClassVar[str] = "unkai:kubernetes:Workload"

    kubeconfig: Annotated[
        NonEmpty, Replace("a workload cannot move to another cluster: it is created there anew")
    ]
    """The cluster's admin kubeconfig."""
    cluster_ca: Annotated[
        NonEmpty, Replace("the cluster was created anew: the workload is applied to it anew")
    ]
    """The cluster's ``ca_fingerprint`` output."""
    namespace: Annotated[
        DnsLabel, Replace("objects cannot move between namespaces: they are created anew")
    ] = "default"
    """Where its objects go."""
    name: Annotated[NonEmpty, Replace("a Deployment cannot be renamed: it is created anew")]
    """The Deployment's name."""
    manifests: Mapping[str, str]
    """File name → manifest text, exactly :func:`unkai.render.render_manifests`."""
    replicas: Annotated[int, Field(ge=0)] | None = None
    """The Deployment's replicas, or null when an HPA owns them."""
    image_id: str | None = None
    """The built image's id, so a rebuilt image shows as a change."""
    secret_name: NonEmpty | None = None
    """The Secret made from ``secret_values``."""
    secret_values: Annotated[Mapping[str, str] | None, Secret()] = None
    """Environment variable → value: must arrive as a Pulumi secret."""
    timeout: Annotated[float, Field(gt=0)] = 300
    """Seconds the Deployment gets to report every replica available."""


class WorkloadState(WorkloadInputs, State):
    """The live objects of the workload."""

    objects: tuple[str, ...] | None = None
    """``Kind/name`` of each object applied."""
    available: int | None = None
    """Available replicas."""
    drift: tuple[str, ...] | None = None
    """What a server-side apply would set back in the live objects, read by ``refresh``:
    ``Kind/name: path`` each (a field unkai declares, changed by someone else)."""
