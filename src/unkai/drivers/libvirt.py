"""libvirt: storage pools and volumes, networks, and domains, through libvirt-python.

A :class:`Session` wraps one open connection to a host (``qemu:///system`` locally,
``qemu+ssh://user@host/system`` for a fleet) and offers every operation of this driver
as a method; :func:`session` opens one and closes it. A handler call opens one session
and does all its work through it, polling included: over ``qemu+ssh://`` every new
connection is an SSH handshake. ``libvirt.libvirtError`` becomes
:class:`~unkai.errors.DriverError` naming the object and the host. Volumes are uploaded
through libvirt streams, so the same code serves local and remote hosts. Domains and
networks are defined from rendered XML and never edited in place: a change is a new
definition.

Reading is pure where it can be, so tests need no daemon: :func:`domain_info` turns a
domain's XML into a :class:`DomainInfo`, :func:`domain_fingerprint` says whether two
domain definitions are the same where unkai cares (the XML unkai renders and the XML
libvirt returns for it have the same fingerprint), and :func:`network_matches` whether
a live network still has everything its rendered XML asked for. XML is read with
:mod:`xml.etree.ElementTree`.

The few module-level functions that take a ``uri`` (``domain(uri, name)``, ...) open a
session for that one look, for scripts and tests; unkai's own code works on sessions.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import libvirt

from unkai.drivers._ssh import libvirt_uri as ssh_uri
from unkai.drivers._ssh import unreachable
from unkai.errors import DriverError

__all__ = [
    "UNKAI_XML_NAMESPACE",
    "ConsoleWatch",
    "DiskInfo",
    "DomainInfo",
    "GuestFootprint",
    "GuestReady",
    "Migrated",
    "NetworkInfo",
    "NicInfo",
    "PoolInfo",
    "Session",
    "Volume",
    "boot_slots",
    "cpu_share",
    "domain",
    "domain_fingerprint",
    "domain_info",
    "guest_addresses",
    "guest_host_keys",
    "network_active",
    "network_matches",
    "network_xml",
    "pool_xml",
    "seed_iso_argv",
    "session",
    "unreachable",
    "volume",
    "volume_xml",
    "with_uuid",
]

# libvirt prints its errors to stderr unless a handler takes them; ours keeps them in the
# exceptions, where they are turned into DriverError.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

UNKAI_XML_NAMESPACE = "https://unkai.dev/xmlns/libvirt/1.0"
"""Namespace of unkai's elements in a domain's ``<metadata>``.

The same value as ``unkai.render.UNKAI_XML_NAMESPACE``, which writes them (drivers do
not import the render layer; a unit test holds the two equal)."""

_QEMU_XML_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0"

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended",
}


def _missing(err: libvirt.libvirtError) -> bool:
    return err.get_error_code() in (
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_NETWORK,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
    )


def _parse(xml: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(xml)
    except ET.ParseError as err:
        raise DriverError(f"{what}: the XML does not parse: {err}") from err


def _text(element: ET.Element | None) -> str | None:
    """The stripped text of ``element``; None when there is no element or no text."""
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


# --- pure: XML of pools and volumes -------------------------------------------------


def pool_xml(name: str, path: str) -> str:
    """The XML of a directory storage pool (pure)."""
    return (
        f"<pool type='dir'><name>{escape(name)}</name>"
        f"<target><path>{escape(path)}</path></target></pool>"
    )


def volume_xml(name: str, *, capacity: int, fmt: str, backing: str | None = None) -> str:
    """The XML of a volume, optionally a qcow2 overlay on ``backing`` (pure)."""
    backing_xml = (
        f"<backingStore><path>{escape(backing)}</path><format type='qcow2'/></backingStore>"
        if backing
        else ""
    )
    return (
        f"<volume><name>{escape(name)}</name><capacity unit='bytes'>{capacity}</capacity>"
        f"<target><format type='{fmt}'/><permissions><mode>0600</mode></permissions></target>"
        f"{backing_xml}</volume>"
    )


def with_uuid(xml: str, uuid: str) -> str:
    """``xml`` (a domain's or a network's) with ``<uuid>`` after its ``<name>`` (pure).

    A text insertion rather than an ElementTree round trip, which would rename the
    namespace prefixes and drop the comment of the rendered XML.
    """
    return re.sub(r"(</name>)", rf"\1\n  <uuid>{uuid}</uuid>", xml, count=1)


# --- pure: reading domain XML -------------------------------------------------------


@dataclass(frozen=True)
class DiskInfo:
    """A disk of a domain definition.

    Attributes:
        target: The guest device name (``vda``).
        bus: ``virtio``, ``sata``, ``scsi``, ... (None when the XML names none).
        device: ``disk``, ``cdrom``, ``floppy`` or ``lun``.
        source: The file, block device or directory on the host; ``pool/volume`` for a
            volume disk, the image name of a network disk; None for an empty drive.
        format: The driver's format (``qcow2``, ``raw``), None when not given.
        readonly: Whether the guest sees it read-only.
    """

    target: str
    bus: str | None
    device: str
    source: str | None
    format: str | None
    readonly: bool


@dataclass(frozen=True)
class NicInfo:
    """A network interface of a domain definition.

    Attributes:
        type: ``network``, ``bridge``, ``user``, ... For unkai's QEMU user-networking NICs
            (``<qemu:commandline>``, not libvirt interfaces) it is ``user``.
        source: The libvirt network or host bridge it is plugged into; None for ``user``.
        model: The NIC model: libvirt's ``<model type>`` (``virtio``), or the QEMU device
            of a user NIC (``virtio-net-pci``); None when not given.
        mac: Its MAC address, None when the XML gives none.
    """

    type: str
    source: str | None
    model: str | None
    mac: str | None


@dataclass(frozen=True)
class DomainInfo:
    """What libvirt knows of a domain, from its persistent (inactive) definition.

    Attributes:
        name: The domain's name.
        uuid: Its UUID ("" when the XML has none, as rendered XML).
        state: ``running``, ``shutoff``, ...
        memory_mb: Memory the guest boots with (``<currentMemory>``), MiB rounded down.
        vcpus: vCPUs the guest boots with (``<vcpu current=...>``, else ``<vcpu>``).
        domain_type: ``kvm`` or ``qemu`` (TCG).
        definition_hash: unkai's definition hash from the domain's metadata, if any.
        disks: Its disks, in the order of the definition.
        nics: Its libvirt interfaces in order, then its QEMU user-networking NICs.
        fingerprint: :func:`domain_fingerprint` of the definition.
        max_memory_mb: The memory ceiling (``<memory>``), MiB rounded down.
        max_vcpus: The vCPU ceiling (``<vcpu>``).
        environment: The unkai environment whose domain it is (its metadata); None for a
            domain unkai did not make.
        project: The unkai project whose domain it is (its metadata), when it names one.
    """

    name: str
    uuid: str
    state: str
    memory_mb: int
    vcpus: int
    domain_type: str
    definition_hash: str | None
    disks: tuple[DiskInfo, ...]
    nics: tuple[NicInfo, ...]
    fingerprint: str
    max_memory_mb: int
    max_vcpus: int
    environment: str | None = None
    project: str | None = None


def _scale(unit: str) -> int:
    """Bytes per ``unit``, as libvirt reads a memory unit (``virScaleInteger``)."""
    if unit.lower() in ("b", "byte", "bytes"):
        return 1
    prefix, rest = unit[:1].lower(), unit[1:]
    if rest.lower() in ("", "ib"):
        base = 1024
    elif rest.lower() == "b":
        base = 1000
    else:
        raise DriverError(f"memory unit {unit!r} is not one libvirt knows")
    powers = "kmgtpe"
    if not prefix or prefix not in powers:
        raise DriverError(f"memory unit {unit!r} is not one libvirt knows")
    return int(base ** (powers.index(prefix) + 1))


def _kib(element: ET.Element | None) -> int | None:
    """A memory element's size in KiB whatever its unit (libvirt rounds up)."""
    value = _text(element)
    if element is None or value is None:
        return None
    size = int(value) * _scale(element.get("unit", "KiB"))
    return -(-size // 1024)


def _vcpus(root: ET.Element) -> tuple[int, int]:
    """``(at boot, maximum)`` vCPUs; libvirt's default is one."""
    vcpu = root.find("vcpu")
    maximum = int(_text(vcpu) or 1)
    current = vcpu.get("current") if vcpu is not None else None
    return (int(current) if current else maximum), maximum


def _memory_kib(root: ET.Element) -> tuple[int, int]:
    """``(at boot, maximum)`` memory in KiB; ``<currentMemory>`` defaults to ``<memory>``."""
    maximum = _kib(root.find("memory")) or 0
    current = _kib(root.find("currentMemory"))
    return (maximum if current is None else current), maximum


def _disk_source(source: ET.Element | None) -> str | None:
    if source is None:
        return None
    if source.get("volume") is not None:
        return f"{source.get('pool')}/{source.get('volume')}"
    for attribute in ("file", "dev", "dir", "name"):
        if source.get(attribute) is not None:
            return source.get(attribute)
    return None


def _disks(root: ET.Element) -> tuple[DiskInfo, ...]:
    disks = []
    for disk in root.findall("devices/disk"):
        target = disk.find("target")
        driver = disk.find("driver")
        disks.append(
            DiskInfo(
                target="" if target is None else target.get("dev", ""),
                bus=None if target is None else target.get("bus"),
                device=disk.get("device", "disk"),
                source=_disk_source(disk.find("source")),
                format=None if driver is None else driver.get("type"),
                readonly=disk.find("readonly") is not None,
            )
        )
    return tuple(disks)


def _qemu_args(root: ET.Element) -> list[str]:
    q = f"{{{_QEMU_XML_NAMESPACE}}}"
    return [arg.get("value", "") for arg in root.findall(f"{q}commandline/{q}arg")]


def _options(value: str) -> tuple[str, dict[str, str]]:
    """``"virtio-net-pci,netdev=n0,mac=..."`` → ``("virtio-net-pci", {"netdev": "n0", ...})``."""
    head, *rest = value.split(",")
    options = {}
    for item in rest:
        key, _, val = item.partition("=")
        options[key] = val
    return head, options


def _user_nics(args: list[str]) -> list[NicInfo]:
    """The NICs of ``-netdev user,...`` / ``-device ...,netdev=...`` pairs of QEMU args."""
    pairs = list(itertools.pairwise(args))
    users = set()
    for flag, value in pairs:
        kind, options = _options(value)
        if flag == "-netdev" and kind == "user":
            users.add(options.get("id"))
    nics = []
    for flag, value in pairs:
        model, options = _options(value)
        if flag == "-device" and options.get("netdev") in users:
            nics.append(NicInfo(type="user", source=None, model=model, mac=options.get("mac")))
    return nics


def _nics(root: ET.Element) -> tuple[NicInfo, ...]:
    nics = []
    for interface in root.findall("devices/interface"):
        source = interface.find("source")
        model = interface.find("model")
        mac = interface.find("mac")
        nics.append(
            NicInfo(
                type=interface.get("type", ""),
                source=_nic_source(source),
                model=None if model is None else model.get("type"),
                mac=None if mac is None else mac.get("address"),
            )
        )
    return tuple(nics) + tuple(_user_nics(_qemu_args(root)))


def _nic_source(source: ET.Element | None) -> str | None:
    if source is None:
        return None
    for attribute in ("network", "bridge", "dev"):
        if source.get(attribute) is not None:
            return source.get(attribute)
    return None


def _canonical(element: ET.Element) -> list[Any]:
    """An element as nested lists: tag, sorted attributes, stripped text, children."""
    return [
        element.tag,
        sorted(element.attrib.items()),
        _text(element) or "",
        [_canonical(child) for child in element],
    ]


def _unkai_metadata(root: ET.Element) -> ET.Element | None:
    return root.find(f"metadata/{{{UNKAI_XML_NAMESPACE}}}instance")


def _projection(root: ET.Element) -> dict[str, Any]:
    """What :func:`domain_fingerprint` hashes: the settings unkai declares, normalised.

    Left out, because libvirt fills them in or rewrites them: the UUID, the machine
    type's version (``q35`` becomes ``pc-q35-7.2``), controllers, PCI addresses, default
    devices and attributes, and the boot order libvirt adds when a kernel is given.
    """
    current_kib, max_kib = _memory_kib(root)
    current_vcpus, max_vcpus = _vcpus(root)
    os_type = root.find("os/type")
    cpu = root.find("cpu")
    metadata = _unkai_metadata(root)
    logs = {
        log.get("file", "")
        for kind in ("serial", "console")
        for log in root.findall(f"devices/{kind}/log")
    }
    return {
        "type": root.get("type"),
        "memory_kib": max_kib,
        "current_memory_kib": current_kib,
        "vcpus": max_vcpus,
        "current_vcpus": current_vcpus,
        "os": {
            "type": _text(os_type),
            "arch": None if os_type is None else os_type.get("arch"),
            "kernel": _text(root.find("os/kernel")),
            "initrd": _text(root.find("os/initrd")),
            "cmdline": _text(root.find("os/cmdline")),
        },
        "cpu": None if cpu is None else [cpu.get("mode"), _text(cpu.find("model"))],
        "disks": sorted(
            [d.target, d.source, d.bus, d.device, d.readonly, d.format] for d in _disks(root)
        ),
        "nics": [[n.type, n.source, n.model, n.mac] for n in _nics(root)],
        "console_logs": sorted(logs),
        "qemu_args": _qemu_args(root),
        "metadata": None if metadata is None else _canonical(metadata),
    }


def _fingerprint(root: ET.Element) -> str:
    text = json.dumps(_projection(root), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def domain_fingerprint(xml: str) -> str:
    """A digest of what a domain definition declares, the same before and after libvirt.

    A sha256 over a normalised projection: the domain type; memory and current memory
    in KiB whatever the unit; maximum and current vCPUs; ``os`` type, arch, kernel,
    initrd and command line; the CPU mode and model; disks by target device with source,
    bus, device kind, read-only and format; interfaces in order with type, source, model
    and MAC (and the QEMU user NICs and arguments of ``<qemu:commandline>``); the
    serial/console log files; unkai's metadata. The XML unkai renders and the XML
    libvirt returns for it (``XMLDesc(VIR_DOMAIN_XML_INACTIVE)``, which adds the UUID,
    MACs, PCI addresses, controllers and defaults) have the same fingerprint; a changed
    memory or vCPU count, an added or removed disk, another kernel command line or NIC
    model do not. Pure.

    Args:
        xml: A domain definition.

    Returns:
        64 hex digits.

    Raises:
        DriverError: ``xml`` does not parse, or a memory unit is unknown.
    """
    return _fingerprint(_parse(xml, "domain"))


def domain_info(xml: str, *, state: str) -> DomainInfo:
    """Read a domain definition (pure).

    Args:
        xml: The domain's XML, normally its persistent definition.
        state: Its run state (``running``, ``shutoff``, ...), which the XML lacks.

    Returns:
        The domain as unkai sees it.

    Raises:
        DriverError: ``xml`` does not parse, or a memory unit is unknown.
    """
    root = _parse(xml, "domain")
    current_kib, max_kib = _memory_kib(root)
    current_vcpus, max_vcpus = _vcpus(root)
    metadata = _unkai_metadata(root)
    return DomainInfo(
        name=_text(root.find("name")) or "",
        uuid=_text(root.find("uuid")) or "",
        state=state,
        memory_mb=current_kib // 1024,
        vcpus=current_vcpus,
        domain_type=root.get("type", ""),
        definition_hash=(
            None
            if metadata is None
            else _text(metadata.find(f"{{{UNKAI_XML_NAMESPACE}}}definition-hash"))
        ),
        disks=_disks(root),
        nics=_nics(root),
        fingerprint=_fingerprint(root),
        max_memory_mb=max_kib // 1024,
        max_vcpus=max_vcpus,
        environment=(
            None
            if metadata is None
            else _text(metadata.find(f"{{{UNKAI_XML_NAMESPACE}}}environment"))
        ),
        project=(
            None if metadata is None else _text(metadata.find(f"{{{UNKAI_XML_NAMESPACE}}}project"))
        ),
    )


# --- pure: comparing network XML ----------------------------------------------------

# Top-level elements whose absence from the rendered XML is itself a setting: a network
# without <forward> is isolated, and one forwarding since a hand edit is not.
_ABSENCE_MATTERS = ("forward",)


def _contains(want: ET.Element, have: ET.Element) -> bool:
    if want.tag != have.tag:
        return False
    if any(have.get(key) != value for key, value in want.attrib.items()):
        return False
    text = _text(want)
    if text is not None and text != _text(have):
        return False
    return _covered(list(want), list(have))


def _covered(wanted: list[ET.Element], available: list[ET.Element]) -> bool:
    """Whether each wanted element is contained in a distinct available one.

    Backtracking, exponential at worst in the number of same-tag siblings; network XML
    has a handful.
    """
    if not wanted:
        return True
    first, rest = wanted[0], wanted[1:]
    return any(
        _contains(first, candidate) and _covered(rest, available[:i] + available[i + 1 :])
        for i, candidate in enumerate(available)
    )


def network_matches(rendered: str, live: str) -> bool:
    """Whether the live network still has everything its rendered XML sets (pure).

    True when every element of ``rendered``, with each of its attributes and its text,
    is in ``live`` with the same values (each rendered element matched by a distinct
    live one); what libvirt adds (UUID, MAC, bridge name and attributes, NAT port range,
    ...) does not count. A ``<forward>`` that ``rendered`` lacks must be absent from
    ``live`` too: an isolated network must not forward. Comparisons are textual: an
    address written differently (``10.0.0.1`` vs an IPv6 short form) differs.

    Args:
        rendered: The network XML unkai rendered.
        live: The XML libvirt returns for the network (``XMLDesc(0)``).

    Returns:
        Whether ``live`` matches.

    Raises:
        DriverError: Either XML does not parse.
    """
    want = _parse(rendered, "rendered network")
    have = _parse(live, "live network")
    for tag in _ABSENCE_MATTERS:
        if want.find(tag) is None and have.find(tag) is not None:
            return False
    return _contains(want, have)


# --- pure: guests ---------------------------------------------------------------------


def seed_iso_argv(folder: Path, out: Path, *, extra: Sequence[Path] = ()) -> list[str]:
    """The command that packs a NoCloud seed into an ISO labelled ``cidata`` (pure).

    The seed is ``user-data``, ``meta-data`` and ``network-config`` in ``folder``, then
    the ``extra`` files (Rock Ridge keeps their owner and mode).
    """
    files = [str(folder / f) for f in ("user-data", "meta-data", "network-config")]
    present = [f for f in files if os.path.exists(f)]
    return [
        "xorriso", "-as", "genisoimage", "-quiet", "-output", str(out),
        "-volid", "cidata", "-joliet", "-rock", *present, *map(str, extra),
    ]  # fmt: skip


@dataclass(frozen=True)
class GuestReady:
    """What the serial console said when cloud-init finished.

    Attributes:
        seconds: Time from the start of the wait until the marker.
        addresses: IPv4 addresses the guest reported (cloud-init's ci-info table).
        host_keys: The guest's SSH host public keys (``type base64``), as cloud-init
            printed them on the console: what a client pins instead of trusting the key
            on first use.
    """

    seconds: float
    addresses: tuple[str, ...]
    host_keys: tuple[str, ...] = ()


_HOST_KEYS = re.compile(
    r"-----BEGIN SSH HOST KEY KEYS-----(.*?)-----END SSH HOST KEY KEYS-----", re.DOTALL
)


def guest_host_keys(console: str) -> tuple[str, ...]:
    """The SSH host keys cloud-init printed on the console (``type base64``), sorted; pure."""
    keys: set[str] = set()
    for block in _HOST_KEYS.findall(console):
        for line in block.splitlines():
            parts = line.strip().split()
            if len(parts) >= 2 and parts[0].startswith(("ssh-", "ecdsa-")):
                keys.add(f"{parts[0]} {parts[1]}")
    return tuple(sorted(keys))


_CI_ADDR = re.compile(r"ci-info: \|\s*(\w+)\s*\|\s*True\s*\|\s*(\d+\.\d+\.\d+\.\d+)\s*\|")


def guest_addresses(console: str) -> tuple[str, ...]:
    """IPv4 addresses of up interfaces (not loopback) in cloud-init's console output."""
    found = {ip for dev, ip in _CI_ADDR.findall(console) if dev != "lo"}
    return tuple(sorted(found))


# --- the session ----------------------------------------------------------------------


@dataclass(frozen=True)
class Volume:
    """A volume of a storage pool: its name, path on the host and size in bytes."""

    name: str
    path: str
    capacity: int


@dataclass(frozen=True)
class GuestFootprint:
    """What a running VM costs its host, as measured there.

    Attributes:
        memory_mb: QEMU's resident memory (libvirt's ``rss`` memory statistic), MiB
            rounded up: the guest OS and the emulator, whatever the guest was given.
        os_disk_mb: What its boot disk occupies on the host (the overlay and the image
            it is backed by, allocated bytes), MiB rounded up.
    """

    memory_mb: int
    os_disk_mb: int


@dataclass(frozen=True)
class PoolInfo:
    """A storage pool as libvirt has it.

    Attributes:
        name: The pool's name.
        path: Its target folder ("" when its XML names none).
        active: Whether it is started.
        autostart: Whether it starts with libvirtd.
    """

    name: str
    path: str
    active: bool
    autostart: bool


@dataclass(frozen=True)
class NetworkInfo:
    """A libvirt network.

    Attributes:
        name: The network's name.
        active: Whether it is started.
        autostart: Whether it starts with libvirtd.
        xml: Its XML as libvirt returns it (``XMLDesc(0)``: the live definition of an
            active network); compare with :func:`network_matches`.
    """

    name: str
    active: bool
    autostart: bool
    xml: str


def _mib(size: int) -> int:
    """``size`` bytes in MiB, rounded up."""
    return -(-size // 2**20)


def boot_slots(*, cpus: int, free_mb: int, memory_mb: int) -> int:
    """How many guests of ``memory_mb`` a host of ``cpus`` and ``free_mb`` boots at once; pure.

    One a core, and one more: a booting guest keeps a core busy most of the time, not
    all of it (measured under TCG on a 2-core host: three lean guests at once were all
    up in 47 s, one alone in 28 s, so three kept both cores busy); more boots than that
    only make each slower, long enough to miss its timeout. No more than the host's free
    memory holds, so a boot never pushes the host into swap. At least one, so that a boot
    always proceeds.
    """
    return max(1, min(cpus + 1, free_mb // max(memory_mb, 1)))


def cpu_share(first: tuple[float, int], last: tuple[float, int], *, vcpus: int) -> float | None:
    """A guest's CPU use between two ``(seconds, cpu_time_ns)`` readings; pure.

    As a share of its vCPUs (0 to 1); None when the readings are not in order.
    """
    seconds = last[0] - first[0]
    if seconds <= 0 or last[1] < first[1] or vcpus < 1:
        return None
    return min(1.0, (last[1] - first[1]) / 1e9 / seconds / vcpus)


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


class Session:
    """One open libvirt connection, and every operation of this driver on it.

    Get one from :func:`session`, which closes it. Objects that are gone count as done
    for deletes and as None for reads; every other libvirt error is a
    :class:`~unkai.errors.DriverError` naming the object and :attr:`uri`. Not shared
    between threads: each handler call opens its own.

    Attributes:
        uri: The libvirt URI the connection goes to.
    """

    def __init__(self, conn: libvirt.virConnect, uri: str) -> None:
        self._conn = conn
        self.uri = uri

    @property
    def conn(self) -> libvirt.virConnect:
        """The underlying ``virConnect``, for what this class does not cover."""
        return self._conn

    def _error(self, what: str, err: libvirt.libvirtError) -> DriverError:
        try:
            alive = bool(self._conn.isAlive())
        except libvirt.libvirtError:
            alive = False
        if not alive:
            return DriverError(
                f"{what}: the connection to libvirtd at {self.uri} was lost (libvirtd"
                f" restarted or stopped, or the host went away): {err}. Run again once it"
                " answers: the next run takes up what this one made"
            )
        return DriverError(f"{what} at {self.uri}: {err}")

    # --- host ---------------------------------------------------------------------

    def versions(self) -> tuple[str, str]:
        """Libvirt's and the hypervisor's versions, ``("9.0.0", "7.2.22")``."""
        try:
            return _version(self._conn.getLibVersion()), _version(self._conn.getVersion())
        except libvirt.libvirtError as err:
            raise self._error("cannot read the versions of libvirt", err) from err

    # --- storage ------------------------------------------------------------------

    def pool(self, name: str) -> PoolInfo | None:
        """The storage pool ``name``, or None when it is not defined."""
        try:
            pool = self._conn.storagePoolLookupByName(name)
            path = _text(_parse(pool.XMLDesc(0), f"storage pool {name}").find("target/path"))
            return PoolInfo(name, path or "", bool(pool.isActive()), bool(pool.autostart()))
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise self._error(f"storage pool {name}", err) from err

    def ensure_pool(self, name: str, path: str) -> str:
        """Define, build and start the directory pool ``name`` at ``path`` unless it runs.

        Side effects: the folder is created; the pool autostarts and is refreshed.

        Returns:
            ``"present"`` or ``"created"``.
        """
        try:
            try:
                pool = self._conn.storagePoolLookupByName(name)
                created = "present"
            except libvirt.libvirtError as err:
                if not _missing(err):
                    raise
                pool = self._conn.storagePoolDefineXML(pool_xml(name, path), 0)
                pool.build(0)
                created = "created"
            if not pool.isActive():
                pool.create(0)
            pool.setAutostart(1)
            pool.refresh(0)
        except libvirt.libvirtError as err:
            raise self._error(f"storage pool {name}", err) from err
        return created

    def remove_pool(self, name: str, *, only_if_empty: bool = True) -> bool:
        """Stop, delete and undefine storage pool ``name``.

        An inactive pool is started first so that its volumes can be counted. Side
        effects: the pool's definition goes, and its folder when empty (libvirt's
        ``pool-delete`` of a ``dir`` pool removes only an empty folder; one that still
        holds files stays, the pool goes anyway). Volumes are never deleted here.

        Args:
            name: The pool.
            only_if_empty: Leave a pool that holds volumes alone; False removes its
                definition anyway (its files stay on the host).

        Returns:
            True when the pool is gone (removed now or already absent), False when it
            holds volumes and ``only_if_empty`` left it alone.

        Raises:
            DriverError: libvirt refused to start, stop or undefine the pool.
        """
        try:
            try:
                pool = self._conn.storagePoolLookupByName(name)
            except libvirt.libvirtError as err:
                if _missing(err):
                    return True
                raise
            if only_if_empty:
                if not pool.isActive():
                    pool.create(0)  # only an active pool can count its volumes
                pool.refresh(0)
                if pool.numOfVolumes() > 0:
                    return False
            if pool.isActive():
                pool.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                pool.delete(0)
            pool.undefine()
            return True
        except libvirt.libvirtError as err:
            raise self._error(f"cannot remove storage pool {name}", err) from err

    def volume(self, pool: str, name: str) -> Volume | None:
        """The volume ``name`` of ``pool``, or None when it does not exist."""
        try:
            vol = self._conn.storagePoolLookupByName(pool).storageVolLookupByName(name)
            _, capacity, _ = vol.info()
            return Volume(name, vol.path(), capacity)
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise self._error(f"volume {pool}/{name}", err) from err

    def upload_volume(self, pool: str, name: str, source: Path, *, fmt: str) -> Volume:
        """Create ``name`` in ``pool`` with the bytes of ``source``; an existing one is kept.

        Callers put a content digest in ``name``, so an existing volume of the source's
        size has these bytes. A failed upload deletes the half-written volume; one a killed
        process left (shorter than the source: the stream writes in order) is uploaded
        again.
        """
        size = source.stat().st_size
        found = self.volume(pool, name)
        if found is not None:
            if self._bytes_of(pool, name) == size:
                return found
            self.delete_volume(pool, name)  # cut short by a killed upload
        try:
            storage = self._conn.storagePoolLookupByName(pool)
            # Best effort: a refresh is refused while another volume of the pool is being
            # written (uploads run side by side); libvirt's own count is then recent enough.
            with contextlib.suppress(libvirt.libvirtError):
                storage.refresh(0)
            free = storage.info()[3]
        except libvirt.libvirtError as err:
            raise self._error(f"storage pool {pool}", err) from err
        if size > free:
            raise DriverError(
                f"storage pool {pool} at {self.uri} is full: volume {name} needs"
                f" {_mib(size)} MiB and {_mib(free)} MiB are free; free space in the pool"
                " (or give it a larger disk) and run again"
            )
        try:
            vol = storage.createXML(volume_xml(name, capacity=size, fmt=fmt), 0)
            stream = self._conn.newStream(0)
            vol.upload(stream, 0, size, 0)
            with source.open("rb") as data:
                stream.sendAll(lambda _s, n, f: f.read(n), data)
            stream.finish()
            return Volume(name, vol.path(), size)
        except libvirt.libvirtError as err:
            with contextlib.suppress(libvirt.libvirtError):
                self._conn.storagePoolLookupByName(pool).storageVolLookupByName(name).delete(0)
            raise self._error(f"cannot upload {source} to volume {pool}/{name}", err) from err

    def _bytes_of(self, pool: str, name: str) -> int:
        """How many bytes volume ``name`` of ``pool`` holds on disk (its file's size)."""
        try:
            vol = self._conn.storagePoolLookupByName(pool).storageVolLookupByName(name)
            return int(vol.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2])
        except libvirt.libvirtError as err:
            raise self._error(f"cannot read volume {pool}/{name}", err) from err

    def create_overlay(self, pool: str, name: str, *, backing: str | None, size_gb: int) -> Volume:
        """Create a qcow2 volume, backed by ``backing`` (copy on write) or empty.

        An existing volume of that name is kept.
        """
        found = self.volume(pool, name)
        if found is not None:
            return found
        capacity = size_gb * 1024**3
        try:
            xml = volume_xml(name, capacity=capacity, fmt="qcow2", backing=backing)
            vol = self._conn.storagePoolLookupByName(pool).createXML(xml, 0)
            return Volume(name, vol.path(), capacity)
        except libvirt.libvirtError as err:
            raise self._error(f"cannot create volume {pool}/{name}", err) from err

    def grow_volume(self, pool: str, name: str, *, size_gb: int) -> Volume:
        """Grow volume ``name`` of ``pool`` to ``size_gb`` GiB (never shrinks it).

        Raises:
            DriverError: the volume is missing, or larger than that already.
        """
        capacity = size_gb * 1024**3
        try:
            vol = self._conn.storagePoolLookupByName(pool).storageVolLookupByName(name)
            _, current, _ = vol.info()
            if capacity < current:
                raise DriverError(
                    f"volume {pool}/{name} is {current // 1024**3} GiB: a volume cannot shrink"
                    f" to {size_gb} GiB"
                )
            if capacity > current:
                vol.resize(capacity, 0)
            return Volume(name, vol.path(), capacity)
        except libvirt.libvirtError as err:
            raise self._error(f"cannot grow volume {pool}/{name}", err) from err

    def delete_volume(self, pool: str, name: str) -> None:
        """Delete a volume; one already gone is not an error."""
        try:
            self._conn.storagePoolLookupByName(pool).storageVolLookupByName(name).delete(0)
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise self._error(f"cannot delete volume {pool}/{name}", err) from err

    # --- networks -----------------------------------------------------------------

    def network(self, name: str) -> NetworkInfo | None:
        """The network ``name``, or None when it is not defined."""
        try:
            net = self._conn.networkLookupByName(name)
            return NetworkInfo(
                name=name,
                active=bool(net.isActive()),
                autostart=bool(net.autostart()),
                xml=str(net.XMLDesc(0)),
            )
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise self._error(f"network {name}", err) from err

    def apply_network(self, name: str, xml: str) -> None:
        """Define (or redefine) network ``name`` from ``xml``, start it, mark it autostart.

        A redefinition keeps the network's UUID (libvirt refuses a network of the same
        name under another UUID; rendered XML has none). A running network keeps its old
        live definition until it restarts.
        """
        try:
            existing = self._conn.networkLookupByName(name)
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise self._error(f"network {name}", err) from err
            existing = None
        if existing is not None and _parse(xml, f"network {name}").find("uuid") is None:
            xml = with_uuid(xml, existing.UUIDString())
        try:
            net = self._conn.networkDefineXML(xml)
            if not net.isActive():
                net.create()
            net.setAutostart(1)
        except libvirt.libvirtError as err:
            raise self._error(f"cannot start network {name}", err) from err

    def delete_network(self, name: str) -> None:
        """Stop and undefine network ``name``; one already gone is not an error."""
        try:
            net = self._conn.networkLookupByName(name)
            if net.isActive():
                net.destroy()
            net.undefine()
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise self._error(f"cannot delete network {name}", err) from err

    # --- domains ------------------------------------------------------------------

    def _state(self, name: str) -> str | None:
        """The run state of domain ``name``; None when it is not defined."""
        try:
            state, _reason = self._conn.lookupByName(name).state(0)
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise self._error(f"domain {name}", err) from err
        return _STATES.get(state, str(state))

    def domain(self, name: str) -> DomainInfo | None:
        """The domain ``name`` from its persistent definition, or None when undefined."""
        try:
            dom = self._conn.lookupByName(name)
            state, _reason = dom.state(0)
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise self._error(f"domain {name}", err) from err
        return domain_info(xml, state=_STATES.get(state, str(state)))

    def domains(self, environment: str, *, project: str | None) -> list[DomainInfo]:
        """Every domain of ``environment`` on this host, by name (reads only).

        A domain is the environment's when its unkai metadata names that project and
        environment (instances and group members alike); others are not listed, nor is
        one that cannot be read (undefined while it was listed) or parsed.
        """
        try:
            found = self._conn.listAllDomains(0)
        except libvirt.libvirtError as err:
            raise self._error("cannot list domains", err) from err
        listed = []
        for dom in found:
            try:
                state, _reason = dom.state(0)
                info = domain_info(
                    dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE),
                    state=_STATES.get(state, str(state)),
                )
            except (libvirt.libvirtError, DriverError):
                continue
            if (info.project, info.environment) == (project, environment):
                listed.append(info)
        return sorted(listed, key=lambda info: info.name)

    def footprint(self, name: str) -> GuestFootprint | None:
        """What running domain ``name`` costs the host; None when it is not running.

        The boot disk is the domain's first disk (unkai's domains list it first); data
        disks and the seed are left out: they are the application's and cloud-init's.
        """
        try:
            dom = self._conn.lookupByName(name)
            if not dom.isActive():
                return None
            rss_kib = int(dom.memoryStats().get("rss", 0))
            disks = domain_info(dom.XMLDesc(0), state="running").disks
            allocated = 0
            path = disks[0].source if disks else None
            while path:  # the overlay, then each image it is backed by
                vol = self._conn.storageVolLookupByPath(path)
                allocated += vol.info()[2]
                backing = _parse(vol.XMLDesc(0), "volume").find("backingStore/path")
                path = _text(backing)
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise self._error(f"domain {name}", err) from err
        return GuestFootprint(memory_mb=_mib(rss_kib * 1024), os_disk_mb=_mib(allocated))

    def cpu_time(self, name: str) -> int | None:
        """The CPU time running domain ``name`` has used, in nanoseconds; None when not running.

        Two readings ``t`` seconds apart give its CPU use over that time (:func:`cpu_share`).
        """
        try:
            dom = self._conn.lookupByName(name)
            if not dom.isActive():
                return None
            return int(dom.info()[4])
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise self._error(f"domain {name}", err) from err

    def boot_slots(self, memory_mb: int) -> int:
        """How many guests of ``memory_mb`` this host should boot at once (:func:`boot_slots`)."""
        try:
            cpus = int(self._conn.getInfo()[2])
            free_mb = int(self._conn.getFreeMemory()) // 2**20
        except libvirt.libvirtError as err:
            raise self._error("the host's cores and memory", err) from err
        return boot_slots(cpus=cpus, free_mb=free_mb, memory_mb=memory_mb)

    def domain_xml(self, name: str) -> str | None:
        """The persistent (inactive) definition of domain ``name``; None when undefined."""
        try:
            return str(self._conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise self._error(f"domain {name}", err) from err

    def define_domain(self, name: str, xml: str) -> None:
        """Define (or redefine) domain ``name`` from ``xml``.

        A redefinition keeps the domain's UUID (libvirt redefines a domain only under its
        UUID; rendered XML has none). A running domain keeps its old definition until it
        restarts.
        """
        try:
            existing = self._conn.lookupByName(name)
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise self._error(f"domain {name}", err) from err
            existing = None
        if existing is not None and _parse(xml, f"domain {name}").find("uuid") is None:
            xml = with_uuid(xml, existing.UUIDString())
        try:
            self._conn.defineXML(xml)
        except libvirt.libvirtError as err:
            raise self._error(f"cannot define domain {name}", err) from err

    def start_domain(self, name: str) -> None:
        """Start domain ``name`` unless it runs, and mark it autostart."""
        try:
            dom = self._conn.lookupByName(name)
            if not dom.isActive():
                dom.create()
            dom.setAutostart(1)
        except libvirt.libvirtError as err:
            raise self._error(f"cannot start domain {name}", err) from err

    def stop_domain(self, name: str, *, timeout: float = 60.0) -> None:
        """Shut domain ``name`` down (ACPI), forcing it off after ``timeout`` seconds.

        One that is not running or not defined is left as it is.
        """
        try:
            dom = self._conn.lookupByName(name)
            if not dom.isActive():
                return
            with contextlib.suppress(libvirt.libvirtError):
                dom.shutdown()
            deadline = time.monotonic() + timeout
            while dom.isActive() and time.monotonic() < deadline:
                time.sleep(0.5)
            if dom.isActive():
                dom.destroy()
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise self._error(f"cannot stop domain {name}", err) from err

    def delete_domain(self, name: str) -> None:
        """Force domain ``name`` off and undefine it; one already gone is not an error."""
        try:
            dom = self._conn.lookupByName(name)
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise self._error(f"cannot delete domain {name}", err) from err

    def migrate(
        self,
        name: str,
        destination: Session,
        *,
        address: str,
        disks: Sequence[str],
    ) -> Migrated:
        """Live-migrate domain ``name`` to the host of ``destination``: how long it took.

        The guest keeps running: its memory is copied while it runs (pre-copy), the
        ``disks`` (guest targets such as ``vda``) are copied over NBD on top of the
        backing images the destination already has (incremental: the caller creates the
        overlays there first, over the same image), and the definition moves with it
        (persistent on the destination, undefined on the source). Migration data goes
        straight from host to host, to ``address`` (the destination as the source host
        reaches it).

        Raises:
            DriverError: the migration failed; the domain still runs on the source.
        """
        flags = (
            libvirt.VIR_MIGRATE_LIVE
            | libvirt.VIR_MIGRATE_PERSIST_DEST
            | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
            | libvirt.VIR_MIGRATE_NON_SHARED_INC
        )
        params = {
            libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{address}",
            libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: list(disks),
        }
        start = time.monotonic()
        try:
            dom = self._conn.lookupByName(name)
            moved = dom.migrate3(destination.conn, params, flags)
        except libvirt.libvirtError as err:
            raise self._error(f"cannot migrate {name} to {destination.uri}", err) from err
        seconds = round(time.monotonic() - start, 1)
        downtime: float | None = None
        with contextlib.suppress(libvirt.libvirtError, AttributeError):
            stats = moved.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
            if "downtime" in stats:
                downtime = float(stats["downtime"])
        return Migrated(seconds=seconds, downtime_ms=downtime)

    def sweep(
        self,
        environment: str,
        *,
        project: str | None,
        pool: str,
        owns: Callable[[str], bool],
    ) -> tuple[list[str], list[str]]:
        """Remove every domain of ``environment`` left on this host, with its volumes.

        What ``destroy`` checks after the engine is done: a domain whose metadata names
        the project and the environment is unkai's own (an interrupted create, a host that
        came back after its VMs were evacuated). It is stopped and undefined, and the
        volumes of ``pool`` its disks use are deleted. Domains of other projects or
        environments and anything without unkai's metadata are never touched.

        Args:
            environment: The environment whose leftovers go.
            project: Its project (None: an environment of no project).
            pool: unkai's storage pool.
            owns: Whether a volume, pool or network name is the environment's (the names
                carry it: ``unkai.render.owned_by``).

        Returns:
            What was removed (``domain x``, ``volume pool/y``), and what of the
            environment's is still left in ``pool`` afterwards.
        """
        removed: list[str] = []
        for info in self.domains(environment, project=project):
            self.delete_domain(info.name)
            removed.append(f"domain {info.name}")
            for disk in info.disks:
                found = self._volume_by_path(pool, disk.source)
                if found is not None:
                    self.delete_volume(pool, found)
                    removed.append(f"volume {pool}/{found}")
        if not self._conn.listAllDomains(0):
            # No VM is left here: what remains of the environment's storage and networks
            # serves nobody (an image a dead host kept, a boot-file pool, a network).
            removed += self._sweep_unused(pool, owns)
        left: list[str] = []
        with contextlib.suppress(libvirt.libvirtError):
            storage = self._conn.storagePoolLookupByName(pool)
            storage.refresh(0)
            left = [f"volume {pool}/{name}" for name in sorted(storage.listVolumes()) if owns(name)]
        return removed, left

    def _sweep_unused(self, pool: str, owns: Callable[[str], bool]) -> list[str]:
        """Remove the environment's volumes, boot-file pools and networks on this host.

        Only called when no domain at all is left on the host. ``pool`` itself goes
        when nothing else is left in it.
        """
        removed: list[str] = []
        for storage in self._conn.listAllStoragePools(0):
            name = str(storage.name())
            if name != pool and not owns(name):
                continue
            with contextlib.suppress(libvirt.libvirtError):
                if not storage.isActive():
                    storage.create(0)
                storage.refresh(0)
                for volume in sorted(storage.listVolumes()):
                    if name != pool or owns(volume):
                        self.delete_volume(name, volume)
                        removed.append(f"volume {name}/{volume}")
            if self.remove_pool(name):
                removed.append(f"pool {name}")
        for network in self._conn.listAllNetworks(0):
            name = str(network.name())
            if owns(name):
                self.delete_network(name)
                removed.append(f"network {name}")
        return removed

    def _volume_by_path(self, pool: str, path: str | None) -> str | None:
        if not path:
            return None
        try:
            vol = self._conn.storageVolLookupByPath(path)
            if vol.storagePoolLookupByVolume().name() == pool:
                return str(vol.name())
        except libvirt.libvirtError:
            return None
        return None

    def start_and_watch(
        self,
        name: str,
        marker: str,
        *,
        timeout: float,
        say: Callable[[str], None] = lambda _: None,
    ) -> GuestReady:
        """Start domain ``name`` and read its serial console until ``marker`` appears.

        The console is libvirt's console stream (``virDomainOpenConsole``), opened at
        once after the start, so it works the same on this machine and on a host
        reached over ``qemu+ssh``: no file on the host is read. The stream is
        non-blocking and polled; the domain's run state is asked through this session
        every second, so the wait fails at once when the guest stops.

        Args:
            name: The domain (defined, not running).
            marker: The line that means done (cloud-init's ``final_message``).
            timeout: Seconds to wait at most.
            say: Receives progress lines.

        Raises:
            DriverError: the domain did not start, stopped, or the marker did not come in
                time; the error holds the end of the console.
        """
        try:
            dom = self._conn.lookupByName(name)
            if not dom.isActive():
                dom.create()
            dom.setAutostart(1)
            stream = self._conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
            dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        except libvirt.libvirtError as err:
            raise self._error(f"cannot start domain {name}", err) from err
        watch = ConsoleWatch(marker)
        start = last_note = last_check = time.monotonic()
        try:
            while True:
                try:
                    got = stream.recv(65536)
                except libvirt.libvirtError as err:
                    raise self._error(f"console of {name}", err) from err
                if isinstance(got, bytes) and got:
                    if watch.feed(got):
                        return GuestReady(
                            round(time.monotonic() - start, 1),
                            watch.addresses(),
                            watch.host_keys(),
                        )
                    continue
                now = time.monotonic()
                if got == b"" or now - last_check >= 1:
                    last_check = now
                    if self._state(name) != "running":
                        raise DriverError(
                            f"{name}: the guest stopped before cloud-init finished; "
                            f"console:\n{watch.tail()}"
                        )
                if now - start > timeout:
                    raise DriverError(
                        f"{name}: cloud-init did not finish within {timeout:.0f} s; "
                        f"end of its console:\n{watch.tail()}"
                    )
                if now - last_note > 15:
                    say(f"{name}: waiting for cloud-init ({now - start:.0f} s)")
                    last_note = now
                time.sleep(0.2)
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()


@dataclass(frozen=True)
class Migrated:
    """How a live migration went.

    Attributes:
        seconds: From the start of the migration to the guest running on the destination.
        downtime_ms: How long the guest was paused for the switch-over (libvirt's job
            statistics), None when libvirt did not say.
    """

    seconds: float
    downtime_ms: float | None


class ConsoleWatch:
    """What a guest's serial console said so far; pure, fed bytes as they arrive.

    Args:
        marker: The line that means done.
    """

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self._text = ""

    def feed(self, data: bytes) -> bool:
        """Add console bytes; True once the marker has appeared."""
        self._text += data.decode("utf-8", errors="replace")
        return self.marker in self._text

    def addresses(self) -> tuple[str, ...]:
        """IPv4 addresses the guest reported (:func:`guest_addresses`)."""
        return guest_addresses(self._text)

    def host_keys(self) -> tuple[str, ...]:
        """The guest's SSH host keys (:func:`guest_host_keys`)."""
        return guest_host_keys(self._text)

    def tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines, for errors."""
        return "\n".join(self._text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def session(uri: str, *, ssh: str | None = None) -> Iterator[Session]:
    """A :class:`Session` on one connection to ``uri``, closed on exit.

    Args:
        uri: The libvirt URI.
        ssh: The SSH client a ``qemu+ssh`` URI runs (default: ``$UNKAI_SSH``, which
            ``unkai`` sets for the engine and the provider).

    Raises:
        DriverError: libvirtd does not answer at ``uri``.
    """
    try:
        conn = libvirt.open(ssh_uri(uri, ssh=ssh))
    except libvirt.libvirtError as err:
        raise DriverError(f"cannot connect to libvirt at {uri}: {err}") from err
    try:
        yield Session(conn, uri)
    finally:
        # A connection that died (SSH dropped) must not hide the error that ends the block.
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


# --- one call, one session: for a single look from a script or a test ----------------


def volume(uri: str, pool: str, name: str) -> Volume | None:
    """:meth:`Session.volume` on a session of its own."""
    with session(uri) as lv:
        return lv.volume(pool, name)


def network_active(uri: str, name: str) -> bool | None:
    """Whether network ``name`` is active; None when it is not defined."""
    with session(uri) as lv:
        found = lv.network(name)
    return None if found is None else found.active


def network_xml(uri: str, name: str) -> str | None:
    """The XML of network ``name`` (``XMLDesc(0)``); None when it is not defined."""
    with session(uri) as lv:
        found = lv.network(name)
    return None if found is None else found.xml


def domain(uri: str, name: str) -> DomainInfo | None:
    """:meth:`Session.domain` on a session of its own."""
    with session(uri) as lv:
        return lv.domain(name)
