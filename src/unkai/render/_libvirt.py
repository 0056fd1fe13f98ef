"""libvirt domain and network XML."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from unkai.errors import RenderError
from unkai.model import Environment, Instance, Network, VmImage
from unkai.render._index import definition_hash, position
from unkai.render._jinja import Templates, default_templates
from unkai.render.filters import mac_address

__all__ = [
    "BOOT_FILES_DIR",
    "BOOT_POOL_PREFIX",
    "DEFAULT_CONSOLE_LOG",
    "DEFAULT_DISK_PATH",
    "DEFAULT_SEED_PATH",
    "LIBVIRT_NETWORK_PREFIX",
    "STORAGE_POOL",
    "STORAGE_POOL_PATH",
    "TCG_CPU_MODEL",
    "UNKAI_XML_NAMESPACE",
    "Accelerator",
    "boot_pool_name",
    "domain_name",
    "instance_mac",
    "libvirt_network_name",
    "owned_by",
    "owner",
    "render_domain_xml",
    "render_network_xml",
    "seed_volume_name",
    "ssh_port",
    "volume_name",
]

Accelerator = Literal["kvm", "tcg"]
"""How QEMU runs guest code: hardware virtualisation (``kvm``) or emulation (``tcg``)."""

STORAGE_POOL = "unkai"
"""Name of the libvirt storage pool that holds unkai's volumes on every host."""
STORAGE_POOL_PATH = "/var/lib/libvirt/images/unkai"
"""Default directory of the :data:`STORAGE_POOL` pool."""
DEFAULT_DISK_PATH = f"{STORAGE_POOL_PATH}/{{domain}}-{{disk}}.qcow2"
"""Default ``disk_path`` pattern; ``{domain}`` (see :func:`domain_name`) and ``{disk}``
are filled in."""
DEFAULT_SEED_PATH = f"{STORAGE_POOL_PATH}/{{domain}}-seed.iso"
"""Default ``seed_path`` pattern of the NoCloud seed ISO; ``{domain}`` is filled in."""
DEFAULT_CONSOLE_LOG = "/var/log/libvirt/qemu/unkai-{domain}-console.log"
"""Default ``console_log`` pattern of the serial console log; ``{domain}`` is filled in."""
BOOT_FILES_DIR = "/var/lib/libvirt/boot/unkai"
"""Where a host keeps the kernel and initrd of direct-boot images, one folder per
environment and ``<image>-<version>``."""
TCG_CPU_MODEL = "qemu64"
# PCIe slots of user-mode NICs on q35's root bus, far above the ones libvirt assigns.
USER_NIC_FIRST_SLOT = 0x10
"""The named CPU model of TCG guests: emulated everywhere, enough for Debian 12."""
UNKAI_XML_NAMESPACE = "https://unkai.dev/xmlns/libvirt/1.0"
"""Namespace of unkai's elements inside a domain's ``<metadata>``."""

LIBVIRT_NETWORK_PREFIX = "unkai-"
"""Prefix of the libvirt name of every network unkai defines (see
:func:`libvirt_network_name`)."""

_DOMAIN_TEMPLATE = "libvirt/domain.xml.j2"
_NETWORK_TEMPLATE = "libvirt/network.xml.j2"
_SSH_PORT_BASE = "ssh_port_base"


def owner(env: Environment) -> str:
    """Whose a libvirt object is, as the first part of its name: ``<project>-<environment>``.

    Just ``<environment>`` for an environment of no project (one built in a test). The
    domain, volume and network names of :func:`domain_name`, :func:`volume_name`,
    :func:`libvirt_network_name` and :func:`boot_pool_name` take it as their
    ``environment``.

    Args:
        env: The environment.

    Returns:
        The prefix.
    """
    return f"{env.project}-{env.name}" if env.project else env.name


def domain_name(environment: str, instance: str) -> str:
    """The libvirt name of an instance's domain: ``<environment>-<instance>``.

    Domain, volume and network names are global on a host; the environment in each of
    them lets two environments (``local`` and ``fleet``, or ``dev`` and ``staging`` on
    shared hypervisors) run instances of the same name side by side, and tells whose an
    object is at a glance.

    Args:
        environment: The environment's name.
        instance: The instance's name.

    Returns:
        The domain's name.
    """
    return f"{environment}-{instance}"


BOOT_POOL_PREFIX = "unkai-boot-"
"""Prefix of the storage pools of direct-boot files (see :func:`boot_pool_name`)."""


def boot_pool_name(environment: str, image: str, version: str) -> str:
    """The storage pool holding the kernel and initrd of one image version on a host.

    Args:
        environment: The environment's name.
        image: The image's name.
        version: Its version.

    Returns:
        ``unkai-boot-<environment>-<image>-<version>``.
    """
    return f"{BOOT_POOL_PREFIX}{environment}-{image}-{version}"


def owned_by(environment: str, name: str) -> bool:
    """Whether a libvirt object's name is one of ``environment``'s.

    Domains and volumes start ``<environment>-`` (see :func:`domain_name`), networks
    ``unkai-<environment>-`` (:func:`libvirt_network_name`), boot-file pools
    ``unkai-boot-<environment>-`` (:func:`boot_pool_name`). A prefix alone cannot tell
    ``dev`` from ``dev-b``: callers that can also compare the environment in a domain's
    metadata.

    Args:
        environment: The environment's name.
        name: A domain, volume, storage pool or network name.
    """
    return any(
        name.startswith(prefix + environment + "-")
        for prefix in ("", LIBVIRT_NETWORK_PREFIX, BOOT_POOL_PREFIX)
    )


def volume_name(environment: str, instance: str, disk: str) -> str:
    """The name of an instance's disk volume in the :data:`STORAGE_POOL` pool.

    Args:
        environment: The environment's name.
        instance: The instance's name.
        disk: The disk's name.

    Returns:
        ``<environment>-<instance>-<disk>.qcow2``; the default ``disk_path`` points at it.
    """
    return f"{domain_name(environment, instance)}-{disk}.qcow2"


def seed_volume_name(environment: str, instance: str) -> str:
    """The name of an instance's NoCloud seed ISO volume (the default ``seed_path``'s).

    Args:
        environment: The environment's name.
        instance: The instance's name.

    Returns:
        ``<environment>-<instance>-seed.iso``.
    """
    return f"{domain_name(environment, instance)}-seed.iso"


def libvirt_network_name(environment: str, network: str) -> str:
    """The name of a model network in libvirt: ``unkai-<environment>-<name>``.

    libvirt network names are global on a host, and Debian's libvirt ships a network
    called ``default``; the prefix keeps unkai's ``default`` from replacing it and makes
    unkai's networks easy to tell apart (and to clean up), the environment keeps two
    environments' ``default`` networks apart.

    Args:
        environment: The environment's name.
        network: The network's name in the model.

    Returns:
        The libvirt network name.
    """
    return f"{LIBVIRT_NETWORK_PREFIX}{environment}-{network}"


def instance_mac(environment: str, instance: str, network: str) -> str:
    """The MAC address of an instance's NIC on ``network``: derived from the three names.

    Args:
        environment: The environment's name (two environments bridged onto one LAN must
            not share MACs).
        instance: The instance's name.
        network: The network's name.

    Returns:
        A locally administered MAC (``52:54:xx:xx:xx:xx``), stable across renders.
    """
    return mac_address(environment, instance, network)


def ssh_port(env: Environment, instance: Instance) -> int:
    """The host port forwarded to the instance's SSH port on a ``user`` network.

    QEMU user networking forwards ``127.0.0.1:<port>`` on the host to port 22 of the
    guest. The port is ``env.settings["ssh_port_base"]`` plus the index of the instance
    in ``env.all_instances()`` (sorted by name), so it is stable for a given set of
    instance names.

    Args:
        env: The environment.
        instance: One of its instances.

    Returns:
        The port.

    Raises:
        RenderError: ``settings.ssh_port_base`` is missing or not an integer, the port
            would exceed 65535, or the instance is not part of ``env``.
    """
    base = env.settings.get(_SSH_PORT_BASE)
    if not isinstance(base, int) or isinstance(base, bool) or not 1 <= base <= 65535:
        raise RenderError(
            f"environment {env.name!r}: settings.{_SSH_PORT_BASE} must be a port number"
            f" (1..65535) for instances on user networks, got {base!r}"
        )
    port = base + position(env, instance)
    if port > 65535:
        raise RenderError(
            f"instance {instance.name!r}: SSH port {port} (settings.{_SSH_PORT_BASE} {base}"
            f" + index) exceeds 65535; lower settings.{_SSH_PORT_BASE}"
        )
    return port


@dataclass(frozen=True)
class _DiskView:
    name: str
    path: str
    bus: str
    target: str
    boot: bool


@dataclass(frozen=True)
class _NicView:
    network: str
    libvirt_network: str
    mode: str
    mac: str
    bridge: str | None
    netdev: str | None
    device: str | None


def _target(prefix: str, index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return prefix + letters


def _disks(instance: Instance, domain: str, disk_path: str) -> tuple[list[_DiskView], str]:
    """The disks with their device names, and the device name left for the seed.

    The seed is a read-only virtio disk after the virtio disks: Debian's cloud kernel
    has virtio but no SATA/AHCI driver, so a SATA cdrom would go unseen and cloud-init
    would fall back to no datasource.
    """
    virtio = scsi = 0
    views = []
    for disk in instance.disks:
        if disk.bus == "virtio":
            target = _target("vd", virtio)
            virtio += 1
        else:  # sata and scsi disks share the sd* names
            target = _target("sd", scsi)
            scsi += 1
        path = disk_path.replace("{domain}", domain).replace("{disk}", disk.name)
        views.append(_DiskView(disk.name, path, disk.bus, target, disk.boot))
    return views, _target("vd", virtio)


def _nics(env: Environment, instance: Instance) -> list[_NicView]:
    nics = []
    forwarded = False
    for index, name in enumerate(instance.networks):
        network = env.networks[name]
        mac = instance_mac(owner(env), instance.name, name)
        netdev = device = None
        if network.mode == "user":
            netdev_id = f"unkai-net{index}"
            options = [f"user,id={netdev_id}"]
            if network.cidr is not None:
                options.append(f"net={network.cidr}")
            if network.dns_domain is not None:
                options.append(f"domainname={network.dns_domain}")
            if not forwarded:
                # One host port per instance: only the first user NIC forwards SSH.
                options.append(f"hostfwd=tcp:127.0.0.1:{ssh_port(env, instance)}-:22")
                forwarded = True
            netdev = ",".join(options)
            # An explicit slot: QEMU would otherwise give this device the first free
            # one before creating libvirt's root ports, which then find it taken.
            device = (
                f"virtio-net-pci,netdev={netdev_id},mac={mac},"
                f"bus=pcie.0,addr={USER_NIC_FIRST_SLOT + index:#x}"
            )
        nics.append(
            _NicView(
                name,
                libvirt_network_name(owner(env), name),
                network.mode,
                mac,
                network.bridge,
                netdev,
                device,
            )
        )
    return nics


def _check_references(instance: Instance, env: Environment) -> None:
    missing = [f"image {instance.image!r}"] if instance.image not in env.vm_images else []
    missing += [f"network {n!r}" for n in instance.networks if n not in env.networks]
    if missing:
        raise RenderError(
            f"instance {instance.name!r} refers to {', '.join(missing)}, which environment"
            f" {env.name!r} does not define"
        )


# unkai builds its images without a bootloader: the image's own kernel and initramfs,
# copied next to the disk volumes, boot the ext4 root filesystem labelled "rootfs"
# (the label unkai.drivers.images gives it).
BUILT_KERNEL = "vmlinuz"
BUILT_INITRD = "initrd.img"
DEFAULT_KERNEL_CMDLINE = (
    "root=LABEL=rootfs ro console=ttyS0,115200n8 net.ifnames=0 no_timer_check panic=10"
)
"""Every built image's. ``no_timer_check``: under TCG on a busy host, the kernel's early
check of the IO-APIC timer can miss its ticks and panic ("IO-APIC + timer doesn't
work!", seen with five guests booting on two cores); a kernel under KVM skips that check
by itself. ``panic=10``: a guest that panics anyway reboots after 10 s (the domain
restarts on reboot) instead of hanging until its boot timeout."""
LEAN_KERNEL_CMDLINE = f"{DEFAULT_KERNEL_CMDLINE} quiet systemd.show_status=false fsck.mode=skip"
"""A lean image's: no kernel or unit status lines on the serial console (each character is
slow under TCG; cloud-init's own lines still reach it) and no root fsck at each boot."""


def boot_files_dir(environment: str, image: VmImage) -> str:
    """The host folder that holds an image's kernel and initrd for direct boot.

    Args:
        environment: The environment's name.
        image: The VM image.

    Returns:
        ``<BOOT_FILES_DIR>/<environment>/<name>-<version>``, a path on the hypervisor host.
    """
    return f"{BOOT_FILES_DIR}/{environment}/{image.name}-{image.version}"


def _direct_boot(environment: str, image: VmImage) -> dict[str, str | None]:
    """Kernel, initrd and command line of an image, as paths on the host.

    A user-supplied ``kernel`` wins; otherwise the kernel and initrd that unkai
    extracted from the image it built.
    """
    folder = boot_files_dir(environment, image)
    if image.kernel is None:
        return {
            "kernel": f"{folder}/{BUILT_KERNEL}",
            "initrd": f"{folder}/{BUILT_INITRD}",
            "cmdline": image.kernel_cmdline
            or (LEAN_KERNEL_CMDLINE if image.profile == "lean" else DEFAULT_KERNEL_CMDLINE),
        }
    return {
        "kernel": f"{folder}/{PurePosixPath(image.kernel).name}",
        "initrd": None if image.initrd is None else f"{folder}/{PurePosixPath(image.initrd).name}",
        "cmdline": image.kernel_cmdline,
    }


def render_domain_xml(
    instance: Instance,
    *,
    env: Environment,
    accelerator: Accelerator,
    disk_path: str = DEFAULT_DISK_PATH,
    seed_path: str = DEFAULT_SEED_PATH,
    console_log: str = DEFAULT_CONSOLE_LOG,
    templates: Templates | None = None,
) -> str:
    """Render the libvirt domain XML of one instance.

    The XML is the same for both accelerators except ``<domain type=...>`` (``kvm`` or
    ``qemu``) and ``<cpu>`` (``host-passthrough`` for KVM, the named model
    :data:`TCG_CPU_MODEL` for TCG). Memory and vCPUs come from the machine type; disks
    are virtio (or the disk's bus) qcow2 files, the NoCloud seed ISO a read-only virtio disk,
    the serial console is a pty that is also logged to ``console_log``. NICs on
    ``nat``/``isolated`` networks are ``<interface type='network'>``, on ``bridged``
    networks ``<interface type='bridge'>``, each with :func:`instance_mac`; NICs on
    ``user`` networks are QEMU user networking through ``<qemu:commandline>``, the
    first one forwarding ``127.0.0.1:<ssh_port(env, instance)>`` to the guest's port 22.
    ``<metadata>`` holds unkai's labels, the environment and the definition hash of the
    instance, and its secret references (never values).

    Args:
        instance: The instance, as returned by ``env.all_instances()``.
        env: The environment it belongs to.
        accelerator: ``kvm`` or ``tcg``.
        disk_path: Path pattern of disk volumes; ``{domain}`` (the domain's name, see
            :func:`domain_name`) and ``{disk}`` are replaced.
        seed_path: Path pattern of the seed ISO; ``{domain}`` is replaced.
        console_log: Path pattern of the serial console log; ``{domain}`` is replaced.
        templates: Where templates come from (default: the built-ins).

    Returns:
        The domain XML text.

    Raises:
        RenderError: The instance refers to an image or network ``env`` lacks, the
            template failed, or a ``user`` network needs an SSH port that cannot be
            computed (see :func:`ssh_port`).
    """
    if accelerator not in ("kvm", "tcg"):
        raise RenderError(f"accelerator {accelerator!r} is invalid; allowed: kvm, tcg")
    _check_references(instance, env)
    image = env.vm_images[instance.image]
    domain = domain_name(owner(env), instance.name)
    disks, seed_target = _disks(instance, domain, disk_path)
    context = {
        "instance": instance,
        "domain_name": domain,
        "machine": instance.machine,
        "image": image,
        "environment": env.name,
        "project": env.project,
        "domain_type": "kvm" if accelerator == "kvm" else "qemu",
        "accelerator": accelerator,
        "cpu_model": TCG_CPU_MODEL,
        # Where it runs is placement, not what it is: moving a VM (a changed pin) is a
        # live migration, and its definition must stay the same bytes.
        "definition_hash": definition_hash(instance.model_copy(update={"host": None})),
        "disks": disks,
        "has_scsi": any(disk.bus == "scsi" for disk in disks),
        "seed_path": seed_path.replace("{domain}", domain),
        "seed_target": seed_target,
        "console_log": console_log.replace("{domain}", domain),
        "nics": _nics(env, instance),
        "namespace": UNKAI_XML_NAMESPACE,
        "direct_boot": _direct_boot(owner(env), image),
    }
    return (templates or default_templates()).render(_DOMAIN_TEMPLATE, context)


def render_network_xml(
    network: Network, *, environment: str, templates: Templates | None = None
) -> str:
    """Render the libvirt network XML of a ``nat``, ``isolated`` or ``bridged`` network.

    The libvirt network is named :func:`libvirt_network_name`
    (``unkai-<environment>-<name>``), as are the ``<source network=...>`` of the domains
    attached to it.

    ``nat`` forwards with NAT, ``isolated`` has no forward element, ``bridged`` uses the
    existing host bridge. With a CIDR, the gateway address and DHCP range of the model
    are used; with a ``dns_domain``, libvirt's DNS answers for it locally.

    Args:
        network: The network.
        environment: The name of the environment it belongs to.
        templates: Where templates come from (default: the built-ins).

    Returns:
        The network XML text.

    Raises:
        RenderError: The network is a ``user`` network (QEMU user networking has no
            libvirt network), or the template failed.
    """
    if network.mode == "user":
        raise RenderError(
            f"network {network.name!r} is a user network: QEMU user networking has no"
            " libvirt network XML (its NICs are in the domain XML)"
        )
    net = network.network
    context = {
        "network": network,
        "libvirt_name": libvirt_network_name(environment, network.name),
        "netmask": None if net is None else str(net.netmask),
    }
    return (templates or default_templates()).render(_NETWORK_TEMPLATE, context)
