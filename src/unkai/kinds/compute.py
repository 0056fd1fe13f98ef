"""The ``compute`` module: KVM hosts, VM images, libvirt networks and instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from unkai.kinds._base import Inputs, Replace, Secret, State, known
from unkai.kinds._types import AbsolutePath, NonEmpty, Sha256Hex
from unkai.model import DEBIAN_MIRROR, ImageProfile, default_libvirt_uri
from unkai.render import STORAGE_POOL, STORAGE_POOL_PATH

__all__ = [
    "DiskSpec",
    "InstanceGroupManagerInputs",
    "InstanceGroupManagerState",
    "InstanceInputs",
    "InstanceState",
    "KvmHostInputs",
    "KvmHostState",
    "LibvirtNetwork",
    "NetworkInputs",
    "NetworkState",
    "VmImageInputs",
    "VmImageState",
    "VolumeInputs",
    "VolumeState",
]

_CONTENT = "the image's content changes: a new image is built (and uploaded beside the old one)"
_FIRST_BOOT = "cloud-init applies it only on an instance's first boot: the VM is recreated"


class LibvirtNetwork(Inputs):
    """A libvirt network the host playbook defines and starts."""

    name: NonEmpty
    """The libvirt network's name."""
    xml: NonEmpty
    """Its network XML."""


class KvmHostInputs(Inputs):
    """A KVM hypervisor host configured by ``playbooks/kvm-host.yml``.

    ``address`` and ``connection`` replace it: they name another machine. Everything
    else runs the playbook again in place (a pool that moves is removed first when
    empty).
    """

    token: ClassVar[str] = "unkai:compute:KvmHost"

    name: NonEmpty
    """Inventory name of the host."""
    connection: Annotated[
        Literal["local", "ssh"],
        Replace("local and ssh reach different machines (this one, or one over SSH): "
                "the host is configured anew"),
    ] = "local"  # fmt: skip
    """``local`` (this machine) or ``ssh``."""
    address: Annotated[
        str | None,
        Replace("a different address is a different machine: it is configured anew "
                "and the old host's storage pool is released"),
    ] = None  # fmt: skip
    """IP address or DNS name Ansible and libvirt reach (``127.0.0.1`` when local)."""
    ssh_user: NonEmpty | None = None
    """The SSH user of an ``ssh`` host."""
    libvirt_uri: NonEmpty | None = None
    """Its libvirt URI (derived from connection, address and user when omitted)."""
    pool_name: NonEmpty = STORAGE_POOL
    """The storage pool holding unkai's volumes."""
    pool_path: AbsolutePath = STORAGE_POOL_PATH
    """That pool's folder."""
    accelerator: Literal["auto", "kvm", "tcg"] = "auto"
    """What the host's VMs should use; unkai passes what its KVM probe found."""
    networks: tuple[LibvirtNetwork, ...] = ()
    """libvirt networks the playbook defines (usually none: the Network kind does)."""
    host_vars: NonEmpty
    """The host's ``ansible/host_vars/<name>.yml`` as ``unkai render`` writes it: the
    playbook's variables, applied byte for byte. It must say what the fields above say."""
    converged: Literal[True] = True
    """Always true: what is wanted. Reads as false when a check-mode run of the playbook
    would change something (``drift`` names the tasks); ``up`` then runs it again."""

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, data: Any) -> Any:
        """Fill in the address of a local host and the libvirt URI from the others."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        connection = data.get("connection") or "local"
        if not known(
            connection, data.get("address"), data.get("ssh_user"), data.get("libvirt_uri")
        ):
            return data
        if not data.get("address"):
            if connection == "ssh":
                raise ValueError("address: an ssh host needs an address")
            data["address"] = "127.0.0.1"
        if not data.get("libvirt_uri") and connection in ("local", "ssh"):
            data["libvirt_uri"] = default_libvirt_uri(
                connection=connection, address=data["address"], ssh_user=data.get("ssh_user")
            )
        return data


class KvmHostState(KvmHostInputs, State):
    """The host's facts after the playbook ran.

    ``accelerator`` in the state is the one in use (``kvm`` or ``tcg``);
    ``accelerator_requested`` is the input it came from.
    """

    accelerator: Literal["auto", "kvm", "tcg"] = "auto"
    """The accelerator in use (``kvm`` or ``tcg``) once configured."""
    accelerator_requested: Literal["auto", "kvm", "tcg"] | None = None
    """The accelerator asked for (the input)."""
    accelerator_reason: str | None = None
    """Why that accelerator: the KVM probe's verdict."""
    cpus: int | None = None
    """The host's CPUs."""
    memory_mb: int | None = None
    """The host's memory in MiB."""
    libvirt_version: str | None = None
    """libvirt's version on the host."""
    qemu_version: str | None = None
    """QEMU's version on the host."""
    changed: int | None = None
    """Tasks the last playbook run changed."""
    converged: bool = True  # type: ignore[assignment]
    """Whether a check-mode run of the playbook would change nothing."""
    drift: tuple[str, ...] = ()
    """The tasks a check-mode run would change (empty when converged)."""


class ImageBuildInputs(Inputs):
    """A Debian image built from packages into the cache of the machine running unkai.

    The build of an image, once, before and apart from its upload to each host
    (:class:`VmImageInputs`): it needs no host, so it runs while the hosts are still
    being configured. A custom image bakes a playbook in: ``playbook`` is its absolute
    path on the machine running the engine, ``playbook_digest`` the digest of its
    content. The digest, not the path, is what the image is: editing the playbook
    replaces the image; moving the checkout changes nothing.
    """

    token: ClassVar[str] = "unkai:compute:ImageBuild"

    name: Annotated[NonEmpty, Replace(_CONTENT)]
    """The image family."""
    version: Annotated[NonEmpty, Replace(_CONTENT)]
    """The image version."""
    suite: Annotated[NonEmpty, Replace(_CONTENT)] = "bookworm"
    """The Debian suite."""
    packages: Annotated[tuple[NonEmpty, ...], Replace(_CONTENT)] = ()
    """Debian packages installed beside the base set (sorted, without duplicates)."""
    disk_gb: Annotated[int, Field(ge=2, le=2048), Replace(_CONTENT)] = 4
    """Size of the disk in GiB."""
    mirror: Annotated[NonEmpty, Replace(_CONTENT)] = DEBIAN_MIRROR
    """The Debian mirror."""
    profile: Annotated[ImageProfile, Replace(_CONTENT)] = "default"
    """How it boots: cloud-init as Debian ships it, or lean (see ``unkai.model.VmImage``)."""
    playbook: AbsolutePath | None = None
    """Absolute path of a playbook baked into the image."""
    playbook_digest: Annotated[
        Sha256Hex | None, Replace("the playbook baked in changed: " + _CONTENT)
    ] = None
    """Digest of the playbook's content (its roles, files and templates included)."""
    kubernetes: Annotated[
        NonEmpty | None, Replace("the node's Kubernetes version changed: " + _CONTENT)
    ] = None
    """A node image: the Kubernetes version of the kubelet, kubeadm and kube-proxy baked in
    (the playbook is then unkai's node playbook)."""
    containerd: Annotated[
        NonEmpty | None, Replace("the node's containerd version changed: " + _CONTENT)
    ] = None
    """A node image: the version of the containerd baked in."""

    @field_validator("packages", mode="after")
    @classmethod
    def _sorted(cls, packages: tuple[str, ...]) -> tuple[str, ...]:
        if not known(packages):  # a preview: the value is not known yet
            return packages
        return tuple(sorted(set(packages)))

    @model_validator(mode="after")
    def _baked(self) -> Any:
        if known(self.playbook, self.playbook_digest) and (
            (self.playbook is None) != (self.playbook_digest is None)
        ):
            raise ValueError(
                "playbook_digest: a baked image needs both the playbook and its digest"
            )
        if known(self.kubernetes, self.containerd, self.playbook) and (
            (self.kubernetes is None) != (self.containerd is None)
            or (self.kubernetes is not None and self.playbook is None)
        ):
            raise ValueError(
                "kubernetes: a node image needs its Kubernetes and containerd versions and"
                " unkai's node playbook"
            )
        return self


class ImageBuildState(ImageBuildInputs, State):
    """The image in the cache."""

    digest: str | None = None
    """Content digest of the built image (its folder in the cache)."""
    disk_bytes: int | None = None
    """Size of its qcow2 disk in the cache."""
    build_seconds: float | None = None
    """How long the build took (0 when it was in the cache already)."""


class VmImageInputs(ImageBuildInputs):
    """A Debian image (its :class:`ImageBuildInputs`) uploaded into a host's pool."""

    token: ClassVar[str] = "unkai:compute:VmImage"

    environment: Annotated[
        NonEmpty, Replace("an image's volumes are its environment's, named after it")
    ]
    """The environment it belongs to: its volume and boot files carry the name, so two
    environments on one host never share (or delete) each other's image."""
    libvirt_uri: Annotated[NonEmpty, Replace("the image moves to another host")]
    """The host's libvirt URI."""
    pool: Annotated[NonEmpty, Replace("the image moves to another storage pool")] = STORAGE_POOL
    """The storage pool of the disk volume."""
    boot_dir: Annotated[AbsolutePath, Replace("the kernel and initrd move to another folder")]
    """Folder on the host the kernel and initrd go to (what the domain XML boots from)."""


class VmImageState(VmImageInputs, State):
    """The image as uploaded."""

    digest: str | None = None
    """Content digest of the built image."""
    volume: str | None = None
    """Name of the disk volume in the pool (``<environment>-<name>-<digest12>.qcow2``)."""
    volume_path: str | None = None
    """Path of the disk volume on the host."""
    size_bytes: int | None = None
    """Size of the disk volume."""
    build_seconds: float | None = None
    """How long the build took (0 from the cache)."""


class NetworkInputs(Inputs):
    """A libvirt network (NAT, isolated or bridged) on one host, from the rendered XML."""

    token: ClassVar[str] = "unkai:compute:Network"

    name: Annotated[NonEmpty, Replace("a libvirt network cannot be renamed")]
    """The libvirt network's name."""
    libvirt_uri: Annotated[NonEmpty, Replace("the network moves to another host")]
    """The host's libvirt URI."""
    xml: Annotated[
        NonEmpty, Replace("libvirt applies a changed network definition only by recreating it")
    ]
    """The rendered network XML."""
    active: Literal[True] = True
    """Always true: what is wanted. A stopped network reads as false and is started again."""

    @model_validator(mode="after")
    def _names_itself(self) -> NetworkInputs:
        if known(self.xml, self.name):
            if "<network" not in self.xml:
                raise ValueError("xml: must be libvirt network XML")
            if f"<name>{self.name}</name>" not in self.xml:
                raise ValueError(f"xml: must name the network {self.name!r}")
        return self


class NetworkState(NetworkInputs, State):
    """The network as libvirt has it."""

    active: bool = True  # type: ignore[assignment]
    """Whether the network is running."""
    autostart: bool | None = None
    """Whether it starts with libvirtd."""


class DiskSpec(Inputs):
    """One disk volume of an instance: the boot disk first."""

    volume: NonEmpty
    """The volume's name in the pool."""
    size_gb: Annotated[int, Field(ge=1)]
    """Its size in GiB."""


class VolumeInputs(Inputs):
    """A data volume in a host's pool, attached to an instance but not owned by it.

    Replacing the instance (a new image, new cloud-init data) attaches the same volume to
    the new VM: what was written to it is still there. It goes only when it leaves the
    program (or the stack is destroyed). When its instance moves to another host the
    volume moves with it: live migration copies its blocks; ``host`` here follows.
    """

    token: ClassVar[str] = "unkai:compute:Volume"

    name: Annotated[NonEmpty, Replace("a volume cannot be renamed")]
    """The volume's name in the pool (``<environment>-<instance>-<disk>.qcow2``)."""
    pool: Annotated[NonEmpty, Replace("a volume cannot move to another pool")] = STORAGE_POOL
    """The storage pool."""
    size_gb: Annotated[int, Field(ge=1)]
    """Its size in GiB; growing it is an update, shrinking it is refused."""
    host: NonEmpty
    """The host it is on (its instance's)."""
    libvirt_uri: NonEmpty
    """The host's libvirt URI."""


class VolumeState(VolumeInputs, State):
    """The volume as the pool has it."""

    path: str | None = None
    """Its path on the host."""
    capacity_bytes: int | None = None
    """Its capacity."""


class InstanceInputs(Inputs):
    """A VM from the rendered domain XML and a NoCloud seed.

    Memory and vCPU changes (and any other change of the domain XML) apply in place with
    a restart; a change of image or cloud-init data replaces the VM.
    """

    token: ClassVar[str] = "unkai:compute:Instance"

    name: Annotated[NonEmpty, Replace("a domain cannot be renamed")]
    """The domain's name."""
    host: NonEmpty
    """The host it runs on. A new host is a live migration (an update), not a replace."""
    libvirt_uri: NonEmpty
    """The host's libvirt URI."""
    host_address: NonEmpty | None = None
    """The address other hosts reach this host at (live migration's destination)."""
    pool: Annotated[NonEmpty, Replace("the VM's disks move to another pool")] = STORAGE_POOL
    """The storage pool of its volumes."""
    domain_xml: NonEmpty
    """The rendered domain XML."""
    user_data: Annotated[str, Replace(_FIRST_BOOT)]
    """The rendered cloud-init user-data."""
    meta_data: Annotated[str, Replace(_FIRST_BOOT)]
    """The rendered cloud-init meta-data."""
    network_config: Annotated[str, Replace(_FIRST_BOOT)]
    """The rendered cloud-init network-config."""
    image_volume_path: Annotated[
        NonEmpty, Replace("the boot disk is a copy-on-write layer over the old image")
    ]
    """Path of the image's volume the boot disk is layered over."""
    disks: Annotated[
        tuple[DiskSpec, ...],
        Field(min_length=1),
        Replace("disks are created with the VM (size, bus and backing are fixed then)"),
    ]
    """The disks the VM owns: its boot disk (a copy-on-write layer over the image)."""
    volumes: Annotated[
        tuple[DiskSpec, ...],
        Replace("volumes are attached when the VM is defined"),
    ] = ()
    """Data volumes attached to it (the Volume kind's; they outlive a replace)."""
    seed_volume: Annotated[NonEmpty, Replace("the seed ISO is another volume")]
    """Name of the NoCloud seed ISO volume."""
    console_log: AbsolutePath
    """The serial console log file on the host."""
    ssh_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Port on the host forwarded to the guest's SSH (user-mode networking)."""
    memory_mb: Annotated[int, Field(gt=0)]
    """Memory in MiB."""
    vcpus: Annotated[int, Field(gt=0)]
    """Virtual CPUs."""
    running: bool = True
    """Whether it should run."""
    boot_timeout: Annotated[float, Field(gt=0)] = 900
    """Seconds to wait for "cloud-init finished"."""
    secret_env: Annotated[Mapping[str, str] | None, Secret(), Replace(_FIRST_BOOT)] = None
    """Variable → value installed root-only in the guest on its first boot (must arrive as
    a Pulumi secret); the seed that carried them is replaced once cloud-init finished."""

    @model_validator(mode="after")
    def _names_itself(self) -> InstanceInputs:
        if known(self.domain_xml, self.name) and f"<name>{self.name}</name>" not in self.domain_xml:
            raise ValueError(f"domain_xml: must define the domain {self.name!r}")
        return self


class InstanceState(InstanceInputs, State):
    """The VM as libvirt has it."""

    state: str | None = None
    """libvirt's state: running, shutoff, ..."""
    uuid: str | None = None
    """The domain's UUID."""
    accelerator: str | None = None
    """``kvm`` or ``tcg``."""
    ip_addresses: tuple[str, ...] | None = None
    """IPv4 addresses the guest reported."""
    ssh_host: str | None = None
    """Where to reach its SSH port."""
    boot_seconds: float | None = None
    """Seconds from start to "cloud-init finished"."""
    ssh_host_keys: tuple[str, ...] | None = None
    """The guest's SSH host public keys, read from its console at first boot."""


_OTHER_MANAGER = "the group moves to another management cluster: its object is made there anew"


class InstanceGroupManagerInputs(Inputs):
    """A managed instance group: its ``InstanceGroup`` object on the management cluster.

    The resource id is ``<cluster>/<object name>``. ``up`` applies :attr:`manifest` with
    each host's image volume (``image_volumes``) and (unless ``unkai up --no-wait``) waits until
    the operator reports every member healthy and made from the current template (a
    rollout's progress is said as it goes). The operator makes, heals, rolls and (between
    ``min_size`` and ``max_size``) scales the members from then on, without ``up``: what
    it did is its status, never a diff.
    """

    token: ClassVar[str] = "unkai:compute:InstanceGroupManager"

    cluster: Annotated[NonEmpty, Replace(_OTHER_MANAGER)]
    """The management cluster's name."""
    kubeconfig: Annotated[NonEmpty, Replace(_OTHER_MANAGER)]
    """Its admin kubeconfig (its ``kubeconfig`` output)."""
    cluster_ca: Annotated[
        NonEmpty, Replace("the management cluster was made anew: the group's object goes there")
    ]
    """Its ``ca_fingerprint`` output."""
    name: Annotated[NonEmpty, Replace("an InstanceGroup object cannot be renamed")]
    """The object's name (``<owner>-<group>``)."""
    size: Annotated[int, Field(ge=0)]
    """How many members ``up`` asks for."""
    min_size: Annotated[int, Field(ge=0)]
    """The autoscaler's floor."""
    max_size: Annotated[int, Field(ge=0)]
    """The autoscaler's ceiling."""
    manifest: NonEmpty
    """The ``InstanceGroup`` object as YAML: its policy and its slots' rendered inputs."""
    image_volumes: Mapping[str, NonEmpty]
    """Host → the image volume its members' boot disks are layered over."""
    secret_env: Annotated[Mapping[str, str] | None, Secret()] = None
    """The members' secret env (variable → value), kept in the Secret the object's
    ``secretName`` names; installed root-only in each member made from then on."""
    timeout: Annotated[float, Field(gt=0)] = 1800
    """Seconds the group gets to settle."""


class InstanceGroupManagerState(InstanceGroupManagerInputs, State):
    """The group as the management cluster has it: the object's spec, its status."""

    target: int | None = None
    """The size the operator aims for (the autoscaler may have moved it from ``size``)."""
    healthy: int | None = None
    """Members passing their health check."""
    updated: int | None = None
    """Healthy members made from the current template."""
    members: tuple[str, ...] | None = None
    """The members' names."""
