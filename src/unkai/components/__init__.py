"""What a stack imports: resources of the unkai provider and the components built on them.

Each resource's inputs are its kind's declaration (:mod:`unkai.kinds`); the
``*_inputs`` functions build them from model values with the same render functions
``unkai render`` uses, so what a reviewer reads is what is applied.
"""

from __future__ import annotations

from unkai.components._cloud import Cloud, CloudArgs, InstanceGroup, InstanceGroupArgs
from unkai.components._compute import KvmHost, kvm_host_inputs
from unkai.components._containers import ContainerImage, container_image_inputs
from unkai.components._groups import (
    InstanceGroupManager,
    ManagedGroupArgs,
    group_object_name,
    instance_group_object,
    manager_inputs,
    slot_digest,
)
from unkai.components._kind import KindResource
from unkai.components._kubernetes import (
    Cluster,
    Kubernetes,
    NodePool,
    NodePoolArgs,
    VmNode,
    VmNodeArgs,
    Workload,
    WorkloadArgs,
    add_kubernetes,
    cluster_inputs,
    clusters_root,
    pinned_image_ref,
    secret_config,
)
from unkai.components._local import LocalFile, LocalFileArgs
from unkai.components._machine import (
    VirtualMachine,
    VirtualMachineArgs,
    machine_environment,
)
from unkai.components._program import deploy_environment
from unkai.components._vms import (
    ImageBuild,
    Instance,
    Network,
    VmImage,
    Volume,
    image_build_inputs,
    instance_inputs,
    network_inputs,
    slot_values,
    vm_image_inputs,
    volume_inputs,
)

__all__ = [
    "Cloud",
    "CloudArgs",
    "Cluster",
    "ContainerImage",
    "ImageBuild",
    "Instance",
    "InstanceGroup",
    "InstanceGroupArgs",
    "InstanceGroupManager",
    "KindResource",
    "Kubernetes",
    "KvmHost",
    "LocalFile",
    "LocalFileArgs",
    "ManagedGroupArgs",
    "Network",
    "NodePool",
    "NodePoolArgs",
    "VirtualMachine",
    "VirtualMachineArgs",
    "VmImage",
    "VmNode",
    "VmNodeArgs",
    "Volume",
    "Workload",
    "WorkloadArgs",
    "add_kubernetes",
    "cluster_inputs",
    "clusters_root",
    "container_image_inputs",
    "deploy_environment",
    "group_object_name",
    "image_build_inputs",
    "instance_group_object",
    "instance_inputs",
    "kvm_host_inputs",
    "machine_environment",
    "manager_inputs",
    "network_inputs",
    "pinned_image_ref",
    "secret_config",
    "slot_digest",
    "slot_values",
    "vm_image_inputs",
    "volume_inputs",
]
