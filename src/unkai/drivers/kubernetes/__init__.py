"""The Kubernetes driver: a real control plane on loopback and simulated (KWOK) nodes.

``ControlPlane`` runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok
and unkai's operator for one cluster, from the pinned toolchain, with per-cluster
certificates and kubeconfigs in the cluster's state folder; nothing listens beyond
127.0.0.1. ``apply_node_pool``/``wait_node_pool``/``delete_node_pool`` put a node pool's
NodePool object on the cluster, whose nodes the operator makes, and
``apply_instance_group``/``wait_instance_group``/``delete_instance_group`` an instance
group's InstanceGroup object, whose members (VMs) it makes;
``create_fake_nodes``/``delete_fake_nodes``/``sync_fake_nodes`` are the simulated nodes
themselves, which kwok keeps Ready and whose pods it runs. ``apply_objects`` and
its siblings put a workload's rendered manifests on a cluster with server-side apply.
``kube_client``/``kube_session`` are the lightkube client all of them use.
"""

from __future__ import annotations

from unkai.drivers.kubernetes._client import kube_client, kube_session
from unkai.drivers.kubernetes._control_plane import ComponentStatus, ControlPlane, pinned_binaries
from unkai.drivers.kubernetes._instance_groups import (
    SECRETS_NAMESPACE,
    GroupStatus,
    InstanceGroupObject,
    MemberStatus,
    apply_group_secret,
    apply_instance_group,
    delete_group_secret,
    delete_instance_group,
    instance_group_events,
    list_instance_groups,
    read_group_secret,
    read_instance_group,
    wait_instance_group,
)
from unkai.drivers.kubernetes._node_pools import (
    NodePoolObject,
    PoolEvent,
    PoolStatus,
    apply_node_pool,
    delete_node_pool,
    list_node_pools,
    node_pool_events,
    operator_log,
    read_node_pool,
    wait_node_pool,
)
from unkai.drivers.kubernetes._nodes import (
    ClusterNode,
    FakeNodePool,
    NodeTaint,
    create_fake_nodes,
    delete_fake_nodes,
    fake_node_manifest,
    list_fake_nodes,
    list_nodes,
    sync_fake_nodes,
    wait_nodes_ready,
)
from unkai.drivers.kubernetes._pki import CertSpec, issue, pki_plan, sans_of
from unkai.drivers.kubernetes._plan import (
    COMPONENTS,
    Binaries,
    Component,
    Kubeconfig,
    Plan,
    Ports,
    plan_control_plane,
    render_kubeconfig,
)
from unkai.drivers.kubernetes._workloads import (
    DeploymentState,
    ObjectRef,
    PodState,
    WorkloadStatus,
    apply_differences,
    apply_objects,
    changed_paths,
    delete_objects,
    deployment_state,
    ensure_namespace,
    list_workloads,
    node_metadata_patch,
    patch_pool_nodes,
    plan_objects,
    read_objects,
    ref_of,
    secret_manifest,
    wait_deployment_available,
)

__all__ = [
    "COMPONENTS",
    "SECRETS_NAMESPACE",
    "Binaries",
    "CertSpec",
    "ClusterNode",
    "Component",
    "ComponentStatus",
    "ControlPlane",
    "DeploymentState",
    "FakeNodePool",
    "GroupStatus",
    "InstanceGroupObject",
    "Kubeconfig",
    "MemberStatus",
    "NodePoolObject",
    "NodeTaint",
    "ObjectRef",
    "Plan",
    "PodState",
    "PoolEvent",
    "PoolStatus",
    "Ports",
    "WorkloadStatus",
    "apply_differences",
    "apply_group_secret",
    "apply_instance_group",
    "apply_node_pool",
    "apply_objects",
    "changed_paths",
    "create_fake_nodes",
    "delete_fake_nodes",
    "delete_group_secret",
    "delete_instance_group",
    "delete_node_pool",
    "delete_objects",
    "deployment_state",
    "ensure_namespace",
    "fake_node_manifest",
    "instance_group_events",
    "issue",
    "kube_client",
    "kube_session",
    "list_fake_nodes",
    "list_instance_groups",
    "list_node_pools",
    "list_nodes",
    "list_workloads",
    "node_metadata_patch",
    "node_pool_events",
    "operator_log",
    "patch_pool_nodes",
    "pinned_binaries",
    "pki_plan",
    "plan_control_plane",
    "plan_objects",
    "read_group_secret",
    "read_instance_group",
    "read_node_pool",
    "read_objects",
    "ref_of",
    "render_kubeconfig",
    "sans_of",
    "secret_manifest",
    "sync_fake_nodes",
    "wait_deployment_available",
    "wait_instance_group",
    "wait_node_pool",
    "wait_nodes_ready",
]
