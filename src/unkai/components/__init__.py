"""What a stack imports: resources of the unkai provider and the components built on them."""

from __future__ import annotations

from unkai.components._cloud import Cloud, CloudArgs, InstanceGroup, InstanceGroupArgs
from unkai.components._compute import KvmHost, KvmHostArgs
from unkai.components._containers import ContainerImage, ContainerImageArgs
from unkai.components._kubernetes import (
    Cluster,
    ClusterArgs,
    Kubernetes,
    NodePool,
    NodePoolArgs,
    Workload,
    WorkloadArgs,
    add_kubernetes,
    clusters_root,
    pinned_image_ref,
    secret_config,
)
from unkai.components._local import LocalFile, LocalFileArgs
from unkai.components._vms import Instance, Network, NetworkArgs, VmImage, VmImageArgs

__all__ = [
    "Cloud",
    "CloudArgs",
    "Cluster",
    "ClusterArgs",
    "ContainerImage",
    "ContainerImageArgs",
    "Instance",
    "InstanceGroup",
    "InstanceGroupArgs",
    "Kubernetes",
    "KvmHost",
    "KvmHostArgs",
    "LocalFile",
    "LocalFileArgs",
    "Network",
    "NetworkArgs",
    "NodePool",
    "NodePoolArgs",
    "VmImage",
    "VmImageArgs",
    "Workload",
    "WorkloadArgs",
    "add_kubernetes",
    "clusters_root",
    "pinned_image_ref",
    "secret_config",
]
