"""Compute: disks, instances, instance templates and instance groups."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Literal

from pydantic import Field, JsonValue, ValidationInfo, field_validator, model_validator

from unkai.model._base import (
    MAX_MEMBERS,
    DnsLabel,
    Labels,
    Metadata,
    UnkaiModel,
    size_bound,
    sorted_mapping,
)
from unkai.model._machine_types import MachineType, MachineTypeName, machine_type
from unkai.model._secrets import SecretEnv

__all__ = [
    "BOOT_DISK_NAME",
    "Disk",
    "GroupAutoscaling",
    "HealthCheck",
    "Instance",
    "InstanceGroup",
    "InstanceTemplate",
    "UpdatePolicy",
    "expand_group",
]

BOOT_DISK_NAME = "boot"
"""Name of the boot disk derived from the image when an instance declares none."""

_SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
_SSH_KEY = re.compile(r"^(\S+) ([A-Za-z0-9+/]+={0,3})(?: [^\n]*)?$")


def _check_ssh_key(key: str) -> str:
    """Check that ``key`` is one line of an OpenSSH ``authorized_keys`` public key."""
    if "PRIVATE KEY" in key:
        # Never echo the value: it is a private key pasted by mistake.
        raise ValueError("an SSH private key was given where a public key belongs")
    allowed = f"'<type> <base64> [comment]' with type one of {', '.join(_SSH_KEY_TYPES)}"
    match = _SSH_KEY.fullmatch(key.strip())
    if match is None or match[1] not in _SSH_KEY_TYPES:
        raise ValueError(f"{key[:40]!r}... is not an OpenSSH public key; allowed: {allowed}")
    try:
        blob = base64.b64decode(match[2], validate=True)
    except binascii.Error:
        raise ValueError(f"the key data of {key[:40]!r}... is not valid base64") from None
    # The blob starts with the key type as an SSH string: 4-byte length, then the name.
    kind = match[1].encode()
    if blob[:4] != len(kind).to_bytes(4, "big") or blob[4 : 4 + len(kind)] != kind:
        raise ValueError(f"the key data of {key[:40]!r}... does not match its type {match[1]!r}")
    return key.strip()


class Disk(UnkaiModel):
    """A virtual disk attached to an instance.

    ``size_gb`` may be left unset on a disk with a ``backing_image``: it then has the
    image's ``disk_gb``, resolved by :meth:`unkai.model.Environment.all_instances`.
    """

    name: DnsLabel = Field(description="Disk name, unique within the instance.")
    size_gb: int | None = Field(
        default=None, ge=1, description="Size in GiB; unset means the backing image's size."
    )
    bus: Literal["virtio", "sata", "scsi"] = Field(default="virtio", description="Disk bus.")
    backing_image: DnsLabel | None = Field(
        default=None, description="Name of the VmImage the disk is a copy-on-write layer of."
    )
    boot: bool = Field(default=False, description="Whether the instance boots from this disk.")

    @model_validator(mode="after")
    def _check_size(self) -> Disk:
        if self.size_gb is None and self.backing_image is None:
            raise ValueError("size_gb is required for a disk without backing_image")
        return self


class _InstanceProperties(UnkaiModel):
    """The fields an instance and an instance template share."""

    name: DnsLabel = Field(description="Name of the instance or template.")
    machine_type: MachineTypeName = Field(description="Machine type name, e.g. ``e2-medium``.")
    image: DnsLabel = Field(description="Name of the VmImage (family) to boot.")
    disks: tuple[Disk, ...] = Field(
        default=(),
        validate_default=True,
        description=(
            "Disks in attachment order. Exactly one boot disk, always first; when none is"
            f" given, ``{BOOT_DISK_NAME}`` backed by ``image`` is prepended."
        ),
    )
    networks: tuple[DnsLabel, ...] = Field(
        default=(), description="Names of the networks, one NIC each, in NIC order."
    )
    user_data: Mapping[str, JsonValue] | None = Field(
        default=None,
        description="cloud-init cloud-config as a mapping (no ``#cloud-config`` header).",
    )
    ssh_keys: tuple[str, ...] = Field(
        default=(), description="OpenSSH public keys authorised for the default user."
    )
    labels: Labels = Field(default_factory=dict, description="Labels (placement filters).")
    metadata: Metadata = Field(default_factory=dict, description="Free key/value metadata.")
    secrets: SecretEnv = Field(
        default_factory=dict, description="Environment variable → secret reference."
    )
    zone: DnsLabel | None = Field(default=None, description="Zone to place the instance in.")

    @property
    def machine(self) -> MachineType:
        """The :class:`MachineType` named by ``machine_type``."""
        return machine_type(self.machine_type)

    @field_validator("disks")
    @classmethod
    def _derive_boot_disk(cls, disks: tuple[Disk, ...], info: ValidationInfo) -> tuple[Disk, ...]:
        boot = [disk for disk in disks if disk.boot]
        if len(boot) > 1:
            raise ValueError(f"only one boot disk is allowed, got {[d.name for d in boot]}")
        if not boot:
            image = info.data.get("image")
            if image is None:
                return disks  # the image field reports its own error
            disks = (Disk(name=BOOT_DISK_NAME, backing_image=image, boot=True), *disks)
        elif not disks[0].boot:
            raise ValueError(f"the boot disk {boot[0].name!r} must come first")
        names = [disk.name for disk in disks]
        if len(set(names)) != len(names):
            raise ValueError(f"disk names must be unique, got {names}")
        return disks

    @field_validator("networks")
    @classmethod
    def _unique_networks(cls, networks: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(networks)) != len(networks):
            raise ValueError(f"a network may be attached once, got {list(networks)}")
        return networks

    @field_validator("ssh_keys")
    @classmethod
    def _check_ssh_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_ssh_key(key) for key in keys)

    @field_validator("user_data")
    @classmethod
    def _sort_user_data(
        cls, value: Mapping[str, JsonValue] | None
    ) -> Mapping[str, JsonValue] | None:
        return None if value is None else sorted_mapping(value)


class InstanceTemplate(_InstanceProperties):
    """The shape of the members of an instance group: an instance without identity.

    It has the same fields as :class:`Instance` except ``hostname``, ``host`` and
    ``group``; its ``name`` names the template itself.
    """


class Instance(_InstanceProperties):
    """One VM: its machine type, image, disks, networks and cloud-init data.

    Secrets are references only (:class:`SecretRef`). ``hostname`` defaults to ``name``.
    """

    hostname: DnsLabel = Field(
        default="", validate_default=True, description="Guest hostname (default: name)."
    )
    host: DnsLabel | None = Field(default=None, description="Pin to this host, if set.")
    group: DnsLabel | None = Field(
        default=None,
        description="The instance group the instance is a member of; set by expand_group.",
    )

    @field_validator("hostname", mode="before")
    @classmethod
    def _default_hostname(cls, value: object, info: ValidationInfo) -> object:
        if value in ("", None):
            return info.data.get("name", value)
        return value


class UpdatePolicy(UnkaiModel):
    """How a rolling update replaces the members of an instance group."""

    max_surge: int = Field(
        default=1, ge=0, le=MAX_MEMBERS, description="Extra members created during update."
    )
    max_unavailable: int = Field(
        default=0,
        ge=0,
        le=MAX_MEMBERS,
        description="Members that may be down at once during update.",
    )

    @model_validator(mode="after")
    def _check_progress(self) -> UpdatePolicy:
        if self.max_surge == 0 and self.max_unavailable == 0:
            raise ValueError("max_surge and max_unavailable cannot both be 0: no update could run")
        return self


class HealthCheck(UnkaiModel):
    """How a group's members are told healthy, for autohealing.

    ``cloud-init`` (the default) holds while the member's domain runs and its first boot
    reached "cloud-init finished"; ``tcp`` also needs ``port`` to accept a connection,
    ``http`` also needs ``GET path`` on ``port`` to answer 2xx or 3xx. Checks start
    ``initial_delay_s`` after a member was created (its boot and start-up);
    ``unhealthy_threshold`` failed checks in a row, ``interval_s`` apart, mark it unhealthy
    and it is recreated.
    """

    type: Literal["cloud-init", "tcp", "http"] = Field(
        default="cloud-init", description="What is checked."
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="The guest port (tcp and http)."
    )
    path: str = Field(default="/", description="The HTTP path (http only).")
    initial_delay_s: float = Field(
        default=300.0, ge=0, description="Seconds after creation before checks count."
    )
    interval_s: float = Field(default=10.0, gt=0, description="Seconds between checks.")
    unhealthy_threshold: int = Field(
        default=3, ge=1, description="Failed checks in a row that make a member unhealthy."
    )

    @model_validator(mode="after")
    def _check_port(self) -> HealthCheck:
        if self.type in ("tcp", "http") and self.port is None:
            raise ValueError(f"a health check of type {self.type} needs a port")
        if self.type == "cloud-init" and self.port is not None:
            raise ValueError("a cloud-init health check takes no port (use type tcp or http)")
        if not self.path.startswith("/"):
            raise ValueError(f"path must start with '/', got {self.path!r}")
        return self


class GroupAutoscaling(UnkaiModel):
    """How a group with ``min_size < max_size`` sizes itself from its members' CPU use.

    The semantics of GCE's autoscaler: the size recommended is the members' total CPU
    use (averaged over ``window_s``, read from libvirt's domain statistics) divided by
    ``target_cpu_utilization``, rounded up and kept within ``[min_size, max_size]``. A
    larger size is taken at once; a smaller one only when every recommendation of the
    last ``scale_in_stabilization_s`` was as small. A member is not measured while it
    boots nor for ``initialization_s`` after it is up (its boot and the work that follows
    are not load; a boot's length varies with the host's load, under TCG from 30 s to
    over a minute); until measured it counts as needed.
    """

    target_cpu_utilization: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="Average CPU use per member aimed for, above 0 and at most 1.",
    )
    window_s: float = Field(default=60.0, gt=0, description="Seconds CPU use is averaged over.")
    scale_in_stabilization_s: float = Field(
        default=600.0, ge=0, description="Seconds of lower recommendations before a scale-in."
    )
    initialization_s: float = Field(
        default=120.0,
        ge=0,
        description="Seconds after a new member is up (cloud-init done) its CPU use is ignored.",
    )


class InstanceGroup(UnkaiModel):
    """A managed group of identical instances made from one template.

    Members are named ``{name}-0`` .. ``{name}-{size-1}`` (:meth:`member_names`).
    ``min_size``/``max_size`` default to ``size`` (no autoscaling);
    ``min_size ≤ size ≤ max_size`` always holds.
    """

    name: DnsLabel = Field(description="Group name; members are named after it.")
    template: DnsLabel = Field(description="Name of the InstanceTemplate of the members.")
    size: int = Field(ge=0, le=MAX_MEMBERS, description="Current number of members.")
    min_size: int = Field(
        default=-1, validate_default=True, description="Autoscaling lower bound (default: size)."
    )
    max_size: int = Field(
        default=-1, validate_default=True, description="Autoscaling upper bound (default: size)."
    )
    spread: Literal["spread", "pack"] = Field(
        default="spread", description="Spread members over hosts, or pack them densely."
    )
    anti_affinity: bool = Field(
        default=True, description="Never place two members on the same host."
    )
    update_policy: UpdatePolicy = Field(
        default_factory=UpdatePolicy, description="Rolling update limits."
    )
    auto_healing: bool = Field(default=True, description="Recreate members that stop running.")
    health_check: HealthCheck = Field(
        default_factory=HealthCheck, description="What autohealing checks."
    )
    autoscaling: GroupAutoscaling = Field(
        default_factory=GroupAutoscaling,
        description="How the size follows CPU use (when min_size < max_size).",
    )

    @field_validator("min_size", "max_size")
    @classmethod
    def _default_bound(cls, value: int, info: ValidationInfo) -> int:
        return size_bound(value, info)

    @model_validator(mode="after")
    def _check_bounds(self) -> InstanceGroup:
        if not self.min_size <= self.size <= self.max_size:
            raise ValueError(
                f"need min_size ≤ size ≤ max_size, got {self.min_size} ≤ {self.size}"
                f" ≤ {self.max_size}"
            )
        longest = f"{self.name}-{max(self.slots - 1, 0)}"
        if len(longest) > 63:
            raise ValueError(f"member name {longest!r} would be longer than 63 characters")
        return self

    @property
    def autoscaled(self) -> bool:
        """Whether the group may change size (``min_size < max_size``)."""
        return self.min_size < self.max_size

    def member_names(self) -> Iterator[str]:
        """Yield the names of the current members, ``{name}-0`` upwards, in order."""
        return (f"{self.name}-{index}" for index in range(self.size))

    @property
    def slots(self) -> int:
        """How many members the group may ever have at once: ``max_size + max_surge``.

        A group the operator manages has a slot for each: a member name, placed and
        rendered ahead (:meth:`slot_names`), for the autoscaler and a rolling update to
        fill without another ``unkai up``.
        """
        return self.max_size + self.update_policy.max_surge

    def slot_names(self) -> Iterator[str]:
        """Yield the names of the slots, ``{name}-0`` upwards, in order."""
        return (f"{self.name}-{index}" for index in range(self.slots))


def expand_group(
    group: InstanceGroup, template: InstanceTemplate, *, slots: bool = False
) -> tuple[Instance, ...]:
    """Turn a group and its template into the concrete member instances.

    Each member copies every template field, is named by :meth:`InstanceGroup.member_names`
    (its hostname too) and has ``group`` set to the group's name. Disk sizes are left as
    in the template; :meth:`Environment.all_instances` resolves them against the images.

    Args:
        group: The instance group.
        template: The template named by ``group.template``.
        slots: One instance per slot (:meth:`InstanceGroup.slot_names`) rather than per
            current member: what a group the operator manages is placed and rendered as.

    Returns:
        The members, ordered by index.

    Raises:
        ValueError: ``template`` is not the group's template.
    """
    if template.name != group.template:
        raise ValueError(
            f"group {group.name!r} uses template {group.template!r}, not {template.name!r}"
        )
    names = group.slot_names() if slots else group.member_names()
    return instances_of(template, names, group=group.name)


def instances_of(
    template: InstanceTemplate, names: Iterable[str], *, group: str | None = None
) -> tuple[Instance, ...]:
    """One instance of ``template`` per name (its hostname too), in order, in ``group``.

    Every value is already validated (the template's fields; names are DNS labels because
    their group or pool checked their length), so re-validation is skipped: groups of
    thousands of members are expanded on every placement run.
    """
    shared = {
        field: getattr(template, field)
        for field in InstanceTemplate.model_fields
        if field != "name"
    }
    return tuple(
        Instance.model_construct(**shared, name=name, hostname=name, host=None, group=group)
        for name in names
    )
