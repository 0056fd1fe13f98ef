"""The typed model of an unkai cloud: immutable, validated, JSON-able values.

Every class is a frozen pydantic v2 model that rejects unknown keys. Values cross into
other layers only as ``model_dump(mode="json")``, and
``Model.model_validate(value.model_dump(mode="json")) == value`` holds for every model.
The model does no I/O and never holds a secret value: secrets are :class:`SecretRef`
references to Pulumi config secrets.

Units: memory in MiB (``memory_mb``), disk in GiB (``disk_gb``/``size_gb``), CPUs as
whole vCPUs. Every named thing has a DNS-label name (:data:`DnsLabel`).

Validation errors surface as ``pydantic.ValidationError``. Field errors carry the key
path in ``loc`` (``("instance_groups", "web", "machine_type")``) and a message that says
what is allowed. Problems between parts of an :class:`Environment` (unknown names,
mismatched zones, ...) are one :class:`CrossReferenceError` at the root whose
``problems`` each name their key path; the environment loader turns both into
:class:`unkai.errors.ConfigError` with the file name.

Example:
    >>> from unkai.model import Environment, machine_type
    >>> machine_type("custom-4-8192").memory_mb
    8192
    >>> env = Environment.model_validate({
    ...     "name": "lab",
    ...     "vm_images": {"debian-12": {"version": "1", "disk_gb": 8}},
    ...     "instance_templates": {"web": {"machine_type": "e2-small", "image": "debian-12"}},
    ...     "instance_groups": {"web": {"template": "web", "size": 2}},
    ... })
    >>> [(i.name, i.disks[0].size_gb) for i in env.all_instances()]
    [('web-0', 8), ('web-1', 8)]
    >>> Environment.model_validate(env.model_dump(mode="json")) == env
    True
"""

from __future__ import annotations

from unkai.model._base import (
    DNS_LABEL,
    NAME_PATTERN,
    NAME_RULE,
    DnsLabel,
    EnvVarName,
    Labels,
    Metadata,
    UnkaiModel,
    dns_label,
)
from unkai.model._compute import (
    BOOT_DISK_NAME,
    Disk,
    GroupAutoscaling,
    HealthCheck,
    Instance,
    InstanceGroup,
    InstanceTemplate,
    UpdatePolicy,
    expand_group,
)
from unkai.model._environment import (
    COLLECTIONS,
    CrossReferenceError,
    Environment,
    PolicyKey,
    PolicyLevel,
    PolicyName,
    ReferenceProblem,
)
from unkai.model._hosts import Host, HostPool, Zone, default_libvirt_uri
from unkai.model._images import (
    DEBIAN_BASE_IMAGE,
    DEBIAN_MIRROR,
    KUBERNETES_NODE_PACKAGES,
    LEAN_USER_DATA_KEYS,
    ContainerImage,
    ImageProfile,
    VmImage,
)
from unkai.model._kubernetes import (
    NODE_POOL_SURGE,
    Cluster,
    ContainerPort,
    ControlPlane,
    HorizontalAutoscaling,
    NodePool,
    NodePoolKind,
    Probe,
    Quantity,
    ResourceList,
    Resources,
    Service,
    ServicePort,
    Taint,
    Workload,
    parse_quantity,
)
from unkai.model._machine_types import (
    CUSTOM_MAX_CPUS,
    CUSTOM_MAX_MB_PER_CPU,
    CUSTOM_MEMORY_STEP_MB,
    CUSTOM_MIN_MB,
    MACHINE_TYPES,
    MachineType,
    MachineTypeName,
    machine_type,
)
from unkai.model._network import REGISTRY, USER_NETWORK_HOST_IP, Network
from unkai.model._secrets import SecretEnv, SecretRef

__all__ = [
    "BOOT_DISK_NAME",
    "COLLECTIONS",
    "CUSTOM_MAX_CPUS",
    "CUSTOM_MAX_MB_PER_CPU",
    "CUSTOM_MEMORY_STEP_MB",
    "CUSTOM_MIN_MB",
    "DEBIAN_BASE_IMAGE",
    "DEBIAN_MIRROR",
    "DNS_LABEL",
    "KUBERNETES_NODE_PACKAGES",
    "LEAN_USER_DATA_KEYS",
    "MACHINE_TYPES",
    "NAME_PATTERN",
    "NAME_RULE",
    "NODE_POOL_SURGE",
    "REGISTRY",
    "USER_NETWORK_HOST_IP",
    "Cluster",
    "ContainerImage",
    "ContainerPort",
    "ControlPlane",
    "CrossReferenceError",
    "Disk",
    "DnsLabel",
    "EnvVarName",
    "Environment",
    "GroupAutoscaling",
    "HealthCheck",
    "HorizontalAutoscaling",
    "Host",
    "HostPool",
    "ImageProfile",
    "Instance",
    "InstanceGroup",
    "InstanceTemplate",
    "Labels",
    "MachineType",
    "MachineTypeName",
    "Metadata",
    "Network",
    "NodePool",
    "NodePoolKind",
    "PolicyKey",
    "PolicyLevel",
    "PolicyName",
    "Probe",
    "Quantity",
    "ReferenceProblem",
    "ResourceList",
    "Resources",
    "SecretEnv",
    "SecretRef",
    "Service",
    "ServicePort",
    "Taint",
    "UnkaiModel",
    "UpdatePolicy",
    "VmImage",
    "Workload",
    "Zone",
    "default_libvirt_uri",
    "dns_label",
    "expand_group",
    "machine_type",
    "parse_quantity",
]
