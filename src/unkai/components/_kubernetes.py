"""Resources of the ``kubernetes`` module of the unkai provider, and how a cloud wires them.

A :class:`Cluster` is a control plane; each of its node pools is a :class:`NodePool`
(scaling one changes that resource alone); each workload is a :class:`Workload` whose
manifests are exactly what ``unkai render`` writes for the image reference pinned to
the :class:`~unkai.components.ContainerImage` that built it. :func:`add_kubernetes`
builds all of them for an environment (what :class:`~unkai.components.Cloud` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from unkai import model
from unkai.components._containers import ContainerImage
from unkai.components._groups import rendered_slots, slot_entries, slot_image_volumes
from unkai.components._kind import KindResource
from unkai.components._vms import Instance
from unkai.kinds import (
    ClusterInputs,
    ClusterState,
    NodePoolInputs,
    NodePoolState,
    Taint,
    VmNodeInputs,
    VmNodeState,
    WorkloadInputs,
    WorkloadState,
    explained,
)
from unkai.render import Templates, render_manifests, render_node_pool, secret_name


def clusters_root(root: Path) -> Path:
    """Where local clusters keep their state: ``<project>/.unkai/clusters``."""
    return root / ".unkai" / "clusters"


def pinned_image_ref(reference: str, repo_digest: str | None) -> str:
    """The image reference a workload runs: the repository digest when pushed, else the tag.

    A pushed image has ``registry/name@sha256:…`` (immutable). A local image has no
    repository digest (the ContainerImage reports its image id instead), so its
    ``name:<content-hash tag>`` is used: the tag is the hash of its Dockerfile.
    """
    if repo_digest and "@sha256:" in repo_digest:
        return repo_digest
    return reference


def secret_config(name: str) -> pulumi.Output[str]:
    """The Pulumi config secret named by a SecretRef (``key`` or ``namespace:key``).

    A bare key is read from the project's namespace. Read when the program runs, never
    at import time.

    Raises:
        pulumi.ConfigMissingError: the stack has no such config key.
    """
    namespace, _, key = name.rpartition(":")
    return pulumi.Config(namespace or None).require_secret(key)


def cluster_inputs(cluster: model.Cluster, *, state_root: Path) -> ClusterInputs:
    """The inputs of ``cluster``, its state kept in ``state_root/<name>``."""
    with explained(ClusterInputs, f"cluster {cluster.name}"):
        return _cluster(cluster, state_root=state_root)


def _cluster(cluster: model.Cluster, *, state_root: Path) -> ClusterInputs:
    return ClusterInputs(
        name=cluster.name,
        version=cluster.kubernetes_version,
        host=cluster.control_plane.host,
        port=cluster.control_plane.port,
        state_dir=str((state_root / cluster.name).absolute()),
        metrics=any(pool.kind == "vm" for pool in cluster.node_pools),
    )


class Cluster(KindResource):
    """A local Kubernetes control plane (``unkai:kubernetes:Cluster``).

    Creating it starts etcd, the API server, controllers, scheduler and kwok on
    loopback; a stopped one is started again by the next ``up``; a new version or
    endpoint replaces it; deleting it stops every process and deletes its state.
    """

    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    ca_fingerprint: pulumi.Output[str]
    healthy: pulumi.Output[bool]

    def __init__(
        self, name: str, args: ClusterInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, ClusterState, opts)


@dataclass(frozen=True)
class NodeSlots:
    """What the VMs of a ``vm`` pool the operator keeps are made from.

    Attributes:
        slots: Each slot's instance (``Environment.node_instances``) and its host.
        accelerators: Accelerator of each host, by host name (the KvmHosts' outputs).
        images: Volume path of each (image, host) pair's uploaded image.
    """

    slots: tuple[tuple[model.Instance, model.Host], ...]
    accelerators: Mapping[str, pulumi.Input[str]]
    images: Mapping[tuple[str, str], pulumi.Input[str]]


VM_POOL_TIMEOUT = 1800.0
"""Seconds a ``vm`` pool gets to settle: its VMs boot (under TCG too) and join."""


@dataclass(frozen=True)
class NodePoolArgs:
    """Inputs of :class:`NodePool`.

    Attributes:
        cluster: The cluster's name.
        kubeconfig: The cluster's ``kubeconfig`` output.
        cluster_ca: The cluster's ``ca_fingerprint`` output.
        pool: The node pool.
        env: Its environment (the NodePool object is rendered from both).
        templates: Where the object's template comes from (default: the built-ins).
        slots: A ``vm`` pool's slots, when the operator keeps it.
    """

    cluster: str
    kubeconfig: pulumi.Input[str]
    cluster_ca: pulumi.Input[str]
    pool: model.NodePool
    env: model.Environment
    templates: Templates | None = None
    slots: NodeSlots | None = None


def vm_pool_object(
    manifest: str,
    env: model.Environment,
    slots: NodeSlots,
    accelerators: Mapping[str, str],
    templates: Templates | None = None,
) -> str:
    """A ``vm`` pool's object: the rendered one with each slot's inputs (pure).

    Each slot is what :func:`unkai.components.slot_values` makes of that node on the host
    the planner placed it on, as an instance group's slots are.
    """
    obj = yaml.safe_load(manifest)
    rendered = rendered_slots(slots.slots, env=env, accelerators=accelerators, templates=templates)
    obj["spec"]["slots"] = slot_entries(rendered)
    return yaml.safe_dump(obj, sort_keys=False, width=1000)


class NodePool(KindResource):
    """A node pool (``unkai:kubernetes:NodePool``): its NodePool object on the cluster.

    The object is :func:`unkai.render.render_node_pool`; unkai's operator makes the
    nodes (the pool's machine type as capacity, its labels and taints), repairs them,
    scales them between the pool's bounds and rolls them to a new machine type.
    """

    nodes: pulumi.Output[list[str]]
    ready: pulumi.Output[int]
    size: pulumi.Output[int]

    def __init__(
        self, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        pool = args.pool
        shape = model.machine_type(pool.machine_type)
        manifest: pulumi.Input[str] = render_node_pool(
            args.cluster, pool, args.env, templates=args.templates
        )
        image_volumes: dict[str, pulumi.Input[str]] = {}
        slots = args.slots
        if slots is not None:
            hosts = sorted({host.name for _, host in slots.slots})
            rendered = str(manifest)

            def with_slots(accelerators: list[str]) -> str:
                by_host = dict(zip(hosts, accelerators, strict=True))
                return vm_pool_object(rendered, args.env, slots, by_host, args.templates)

            manifest = pulumi.Output.all(*(slots.accelerators[h] for h in hosts)).apply(with_slots)
            image_volumes = slot_image_volumes(slots.slots, slots.images)
        inputs = NodePoolInputs.model_construct(
            cluster=args.cluster,
            kubeconfig=args.kubeconfig,  # type: ignore[arg-type]  # an Output
            cluster_ca=args.cluster_ca,  # type: ignore[arg-type]  # an Output
            name=pool.name,
            size=pool.size,
            cpu=str(shape.cpus),
            memory=f"{shape.memory_mb}Mi",
            machine_type=shape.name,
            labels=dict(pool.labels),
            taints=tuple(Taint.model_validate(t.model_dump(mode="json")) for t in pool.taints),
            min_size=pool.min_size,
            max_size=pool.max_size,
            auto_repair=pool.auto_repair,
            auto_upgrade=pool.auto_upgrade,
            manifest=manifest,  # type: ignore[arg-type]  # an Output for a vm pool
            image_volumes=image_volumes,  # type: ignore[arg-type]  # Outputs
            timeout=VM_POOL_TIMEOUT if slots is not None else 300,
        )
        super().__init__(name, inputs, NodePoolState, opts)


@dataclass(frozen=True)
class VmNodeArgs:
    """Inputs of :class:`VmNode`.

    Attributes:
        cluster: The cluster (its name, version and API port).
        kubeconfig: The cluster's ``kubeconfig`` output.
        cluster_ca: The cluster's ``ca_fingerprint`` output.
        pool: The ``vm`` node pool.
        name: The node's name (its VM's).
        vm: The VM's Instance resource.
    """

    cluster: model.Cluster
    kubeconfig: pulumi.Input[str]
    cluster_ca: pulumi.Input[str]
    pool: model.NodePool
    name: str
    vm: Instance


class VmNode(KindResource):
    """A VM of a ``vm`` pool joined to its cluster (``unkai:kubernetes:VmNode``).

    The VM reaches the API server through QEMU user networking's address of this machine
    (:data:`unkai.model.USER_NETWORK_HOST_IP`); what else it needs of the cluster its
    cloud-init wrote (:func:`unkai.render.node_files`).
    """

    ready: pulumi.Output[bool]
    kubelet_version: pulumi.Output[str]
    join_seconds: pulumi.Output[float]

    def __init__(
        self, name: str, args: VmNodeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        host = model.USER_NETWORK_HOST_IP
        inputs = VmNodeInputs.model_construct(
            cluster=args.cluster.name,
            kubeconfig=args.kubeconfig,  # type: ignore[arg-type]  # an Output
            cluster_ca=args.cluster_ca,  # type: ignore[arg-type]  # an Output
            version=args.cluster.kubernetes_version,
            endpoint=f"{host}:{args.cluster.control_plane.port}",
            name=args.name,
            pool=args.pool.name,
            vm_uuid=args.vm.uuid,  # type: ignore[attr-defined]  # an Output
            ssh_host=args.vm.ssh_host,  # type: ignore[arg-type]  # an Output
            ssh_port=args.vm.ssh_port,  # type: ignore[arg-type]  # an Output
            ssh_host_keys=args.vm.ssh_host_keys,  # type: ignore[arg-type]  # an Output
            labels=dict(args.pool.labels),
            taints=tuple(Taint.model_validate(t.model_dump(mode="json")) for t in args.pool.taints),
        )
        super().__init__(name, inputs, VmNodeState, opts)


@dataclass(frozen=True)
class WorkloadArgs:
    """Inputs of :class:`Workload`.

    Attributes:
        workload: The workload.
        env: Its environment (the manifests are rendered from both).
        kubeconfig: Its cluster's ``kubeconfig`` output.
        cluster_ca: Its cluster's ``ca_fingerprint`` output.
        image: The ContainerImage resource that builds its image.
        secret_values: Environment variable → value of each ``secret_env`` entry, as
            Pulumi secrets (:func:`secret_config`).
        namespace: Where its objects go.
        templates: Where the manifests' templates come from (default: the built-ins).
    """

    workload: model.Workload
    env: model.Environment
    kubeconfig: pulumi.Input[str]
    cluster_ca: pulumi.Input[str]
    image: ContainerImage
    secret_values: Mapping[str, pulumi.Input[str]]
    namespace: str = "default"
    templates: Templates | None = None


class Workload(KindResource):
    """A workload's objects on its cluster (``unkai:kubernetes:Workload``).

    The manifests are :func:`unkai.render.render_manifests` with the image pinned to
    the built image (:func:`pinned_image_ref`); the Secret is made from
    ``secret_values`` at apply time. ``up`` waits until the Deployment reports every
    replica available.
    """

    available: pulumi.Output[int]
    objects: pulumi.Output[list[str]]
    manifests: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: WorkloadArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        workload, env = args.workload, args.env
        image_ref = pulumi.Output.all(args.image.reference, args.image.repo_digest).apply(
            lambda ref: pinned_image_ref(ref[0], ref[1])
        )
        manifests = image_ref.apply(
            lambda ref: render_manifests(workload, env, image_ref=ref, templates=args.templates)
        )
        values: Any = None
        if args.secret_values:
            values = pulumi.Output.secret(dict(sorted(args.secret_values.items())))
        inputs = WorkloadInputs.model_construct(
            kubeconfig=args.kubeconfig,  # type: ignore[arg-type]  # an Output
            cluster_ca=args.cluster_ca,  # type: ignore[arg-type]  # an Output
            namespace=args.namespace,
            name=workload.name,
            manifests=manifests,  # type: ignore[arg-type]  # an Output
            replicas=None if workload.autoscaling is not None else workload.replicas,
            image_id=args.image.image_id,  # type: ignore[arg-type]  # an Output
            secret_name=secret_name(workload),
            secret_values=values,
        )
        super().__init__(
            name,
            inputs,
            WorkloadState,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[args.image])),
        )


def _vm_nodes(
    prefix: str,
    cluster: model.Cluster,
    pool: model.NodePool,
    cluster_res: Cluster,
    *,
    vms: Mapping[str, Instance],
    parent: pulumi.Resource | None,
) -> list[VmNode]:
    """The VmNode of each VM of ``pool``, after the cluster and its VM.

    Raises:
        KeyError: a node has no VM in ``vms``.
    """
    return [
        VmNode(
            f"{prefix}-{node}-node",
            VmNodeArgs(
                cluster, cluster_res.kubeconfig, cluster_res.ca_fingerprint, pool, node,
                vms[node],
            ),
            pulumi.ResourceOptions(parent=parent, depends_on=[cluster_res, vms[node]]),
        )
        for node in pool.node_names(cluster.name)
    ]  # fmt: skip


@dataclass
class Kubernetes:
    """What :func:`add_kubernetes` created, by model name.

    Attributes:
        clusters: Cluster resources.
        node_pools: NodePool resources by ``(cluster, pool)``.
        workloads: Workload resources.
        clusters_summary: Per cluster: endpoint, kubeconfig, nodes Ready per pool.
        workloads_summary: Per workload: cluster, available and desired replicas.
    """

    clusters: dict[str, Cluster]
    node_pools: dict[tuple[str, str], NodePool]
    workloads: dict[str, Workload]
    clusters_summary: dict[str, Any]
    workloads_summary: dict[str, Any]


def add_kubernetes(
    name: str,
    env: model.Environment,
    *,
    images: Mapping[str, ContainerImage],
    state_root: Path,
    secrets: Mapping[str, pulumi.Input[str]] | None = None,
    parent: pulumi.Resource | None = None,
    templates: Templates | None = None,
    vms: Mapping[str, Instance] | None = None,
    node_slots: Mapping[tuple[str, str], NodeSlots] | None = None,
) -> Kubernetes:
    """Create every cluster of ``env`` with its node pools, and every workload.

    Args:
        name: Prefix of the resource names (``<name>-<cluster>``,
            ``<name>-<cluster>-<pool>``, ``<name>-<workload>``).
        env: The environment.
        images: The ContainerImage resource of each container image the workloads run.
        state_root: Where clusters keep their state (:func:`clusters_root`).
        secrets: SecretRef name → value (secret); default: each read from stack config
            with :func:`secret_config`.
        parent: The parent of every resource created.
        templates: Where the manifests' templates come from (the project's first).
        vms: The Instance of each ``vm`` pool's node (``Environment.node_instances``),
            where ``up`` makes them.
        node_slots: By ``(cluster, pool)``: the slots of each ``vm`` pool the operator
            keeps (an environment with a management cluster); its NodePool object
            carries them, and the operator makes, joins and keeps the nodes.

    Returns:
        The resources and summaries.

    Raises:
        pulumi.ConfigMissingError: a workload's secret is not in the stack's config.
    """
    child = pulumi.ResourceOptions(parent=parent)
    clusters: dict[str, Cluster] = {}
    pools: dict[tuple[str, str], NodePool] = {}
    vm_nodes: dict[tuple[str, str], list[VmNode]] = {}
    for cluster_name, cluster in sorted(env.clusters.items()):
        res = Cluster(
            f"{name}-{cluster_name}",
            cluster_inputs(cluster, state_root=state_root),
            child,
        )
        clusters[cluster_name] = res
        for pool in cluster.node_pools:
            slots = (node_slots or {}).get((cluster_name, pool.name))
            if pool.kind == "vm" and slots is None:
                vm_nodes[(cluster_name, pool.name)] = _vm_nodes(
                    name, cluster, pool, res, vms=vms or {}, parent=parent
                )
                continue
            pools[(cluster_name, pool.name)] = NodePool(
                f"{name}-{cluster_name}-{pool.name}",
                NodePoolArgs(
                    cluster_name, res.kubeconfig, res.ca_fingerprint, pool, env, templates, slots
                ),
                pulumi.ResourceOptions(parent=parent, depends_on=[res]),
            )
    workloads: dict[str, Workload] = {}
    for workload_name, workload in sorted(env.workloads.items()):
        cluster_res = clusters[workload.cluster]
        values = {
            variable: (secrets or {}).get(ref.name) or secret_config(ref.name)
            for variable, ref in workload.secret_env.items()
        }
        own_pools: list[pulumi.Resource] = [
            p for (c, _), p in pools.items() if c == workload.cluster
        ]
        own_pools += [
            n for (c, _), nodes in vm_nodes.items() if c == workload.cluster for n in nodes
        ]
        workloads[workload_name] = Workload(
            f"{name}-{workload_name}",
            WorkloadArgs(
                workload=workload,
                env=env,
                kubeconfig=cluster_res.kubeconfig,
                cluster_ca=cluster_res.ca_fingerprint,
                image=images[workload.image],
                secret_values=values,
                templates=templates,
            ),
            # Its pods need nodes: the pools first (and, on destroy, the workload first).
            pulumi.ResourceOptions(parent=parent, depends_on=[cluster_res, *own_pools]),
        )
    clusters_summary: dict[str, Any] = {
        cluster_name: pulumi.Output.all(
            endpoint=res.endpoint,
            kubeconfig=res.kubeconfig,
            pools={
                **{pool: pools[(c, pool)].ready for (c, pool) in pools if c == cluster_name},
                **{
                    pool: pulumi.Output.all(*(n.ready for n in nodes)).apply(
                        lambda ready: sum(bool(r) for r in ready)
                    )
                    for (c, pool), nodes in vm_nodes.items()
                    if c == cluster_name
                },
            },
        )
        for cluster_name, res in clusters.items()
    }
    workloads_summary: dict[str, Any] = {
        workload_name: pulumi.Output.all(
            cluster=env.workloads[workload_name].cluster,
            available=res.available,
            replicas=env.workloads[workload_name].replicas,
        )
        for workload_name, res in workloads.items()
    }
    return Kubernetes(clusters, pools, workloads, clusters_summary, workloads_summary)
