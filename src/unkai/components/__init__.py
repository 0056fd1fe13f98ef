"""What a stack imports: resources of the unkai provider and the components built on them."""

from __future__ import annotations

from unkai.components._cloud import Cloud, CloudArgs, InstanceGroup, InstanceGroupArgs
from unkai.components._compute import KvmHost, KvmHostArgs
from unkai.components._containers import ContainerImage, ContainerImageArgs
from unkai.components._local import LocalFile, LocalFileArgs
from unkai.components._vms import Instance, Network, NetworkArgs, VmImage, VmImageArgs

__all__ = [
    "Cloud",
    "CloudArgs",
    "ContainerImage",
    "ContainerImageArgs",
    "Instance",
    "InstanceGroup",
    "InstanceGroupArgs",
    "KvmHost",
    "KvmHostArgs",
    "LocalFile",
    "LocalFileArgs",
    "Network",
    "NetworkArgs",
    "VmImage",
    "VmImageArgs",
]
