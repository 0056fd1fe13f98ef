"""The resource types of the unkai provider, one module each."""

from __future__ import annotations

from unkai.provider.resources.cluster import Cluster, NodePool
from unkai.provider.resources.container_image import ContainerImage
from unkai.provider.resources.image_build import ImageBuild
from unkai.provider.resources.instance import Instance
from unkai.provider.resources.instance_group import InstanceGroupManager
from unkai.provider.resources.kvm_host import KvmHost
from unkai.provider.resources.local_file import LocalFile
from unkai.provider.resources.network import Network
from unkai.provider.resources.vm_image import VmImage
from unkai.provider.resources.vm_node import VmNode
from unkai.provider.resources.volume import Volume
from unkai.provider.resources.workload import Workload

ALL = (
    LocalFile(),
    ImageBuild(),
    VmImage(),
    Volume(),
    Network(),
    Instance(),
    ContainerImage(),
    KvmHost(),
    Cluster(),
    NodePool(),
    VmNode(),
    Workload(),
    InstanceGroupManager(),
)

__all__ = [
    "ALL",
    "Cluster",
    "ContainerImage",
    "ImageBuild",
    "Instance",
    "InstanceGroupManager",
    "KvmHost",
    "LocalFile",
    "Network",
    "NodePool",
    "VmImage",
    "VmNode",
    "Volume",
    "Workload",
]
