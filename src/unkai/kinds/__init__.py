"""One typed declaration per resource kind of unkai's provider.

Each kind is a frozen pydantic model of its inputs and one of its state (the inputs
plus the outputs). Field metadata says what forces a replacement and why
(:class:`Replace`) and what is always secret (:class:`Secret`); defaults live on the
fields. Both :mod:`unkai.components` (the props a stack registers) and
:mod:`unkai.provider` (check, diff, read, the package schema) derive everything from
these classes. The module is pure: pydantic and the model, no engine, no driver.
"""

from __future__ import annotations

from unkai.kinds._base import (
    UNKNOWN,
    Inputs,
    Replace,
    Secret,
    State,
    check_inputs,
    component_props,
    explained,
    has_unknown,
    input_names,
    input_values,
    known,
    output_names,
    parse_state,
    replace_reasons,
    secret_names,
)
from unkai.kinds.compute import (
    DiskSpec,
    ImageBuildInputs,
    ImageBuildState,
    InstanceGroupManagerInputs,
    InstanceGroupManagerState,
    InstanceInputs,
    InstanceState,
    KvmHostInputs,
    KvmHostState,
    LibvirtNetwork,
    NetworkInputs,
    NetworkState,
    VmImageInputs,
    VmImageState,
    VolumeInputs,
    VolumeState,
)
from unkai.kinds.containers import (
    CONTENT_HASH_LABEL,
    ContainerBase,
    ContainerImageInputs,
    ContainerImageState,
)
from unkai.kinds.kubernetes import (
    ClusterInputs,
    ClusterState,
    NodePoolInputs,
    NodePoolState,
    Taint,
    VmNodeInputs,
    VmNodeState,
    WorkloadInputs,
    WorkloadState,
)
from unkai.kinds.local import LocalFileInputs, LocalFileState
from unkai.model import default_libvirt_uri

KINDS: tuple[type[State], ...] = (
    LocalFileState,
    KvmHostState,
    ImageBuildState,
    VmImageState,
    VolumeState,
    NetworkState,
    InstanceState,
    ContainerImageState,
    ClusterState,
    NodePoolState,
    VmNodeState,
    WorkloadState,
    InstanceGroupManagerState,
)
"""The state model of every kind the provider serves (its inputs are its base)."""

__all__ = [
    "CONTENT_HASH_LABEL",
    "KINDS",
    "UNKNOWN",
    "ClusterInputs",
    "ClusterState",
    "ContainerBase",
    "ContainerImageInputs",
    "ContainerImageState",
    "DiskSpec",
    "ImageBuildInputs",
    "ImageBuildState",
    "Inputs",
    "InstanceGroupManagerInputs",
    "InstanceGroupManagerState",
    "InstanceInputs",
    "InstanceState",
    "KvmHostInputs",
    "KvmHostState",
    "LibvirtNetwork",
    "LocalFileInputs",
    "LocalFileState",
    "NetworkInputs",
    "NetworkState",
    "NodePoolInputs",
    "NodePoolState",
    "Replace",
    "Secret",
    "State",
    "Taint",
    "VmImageInputs",
    "VmImageState",
    "VmNodeInputs",
    "VmNodeState",
    "VolumeInputs",
    "VolumeState",
    "WorkloadInputs",
    "WorkloadState",
    "check_inputs",
    "component_props",
    "default_libvirt_uri",
    "explained",
    "has_unknown",
    "input_names",
    "input_values",
    "known",
    "output_names",
    "parse_state",
    "replace_reasons",
    "secret_names",
]
