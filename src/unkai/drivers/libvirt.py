"""libvirt: storage pools and volumes, networks, and domains, through libvirt-python.

Every function opens its own connection to ``uri`` (``qemu:///system`` locally,
``qemu+ssh://user@host/system`` for a fleet), does one thing, and turns
``libvirt.libvirtError`` into :class:`~unkai.errors.DriverError` naming the object.
Volumes are uploaded through libvirt streams, so the same code serves local and remote
hosts. Domains and networks are defined from rendered XML and never edited in place:
a change is a new definition.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import libvirt

from unkai.errors import DriverError

# libvirt prints its errors to stderr unless a handler takes them; ours keeps them in the
# exceptions, where they are turned into DriverError.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

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


@contextlib.contextmanager
def connect(uri: str) -> Iterator[libvirt.virConnect]:
    """An open connection to ``uri``, closed on exit.

    Raises:
        DriverError: libvirtd does not answer at ``uri``.
    """
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as err:
        raise DriverError(f"cannot connect to libvirt at {uri}: {err}") from err
    try:
        yield conn
    finally:
        conn.close()


def _missing(err: libvirt.libvirtError) -> bool:
    return err.get_error_code() in (
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_NETWORK,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
    )


# --- storage -------------------------------------------------------------------------


def pool_xml(name: str, path: str) -> str:
    """The XML of a directory storage pool (pure)."""
    return (
        f"<pool type='dir'><name>{escape(name)}</name>"
        f"<target><path>{escape(path)}</path></target></pool>"
    )


def ensure_pool(uri: str, name: str, path: str) -> str:
    """Define, build and start the directory pool ``name`` at ``path`` unless it runs.

    Returns:
        ``"present"`` or ``"created"``.
    """
    with connect(uri) as conn:
        try:
            pool = conn.storagePoolLookupByName(name)
            created = "present"
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise DriverError(f"storage pool {name}: {err}") from err
            pool = conn.storagePoolDefineXML(pool_xml(name, path), 0)
            pool.build(0)
            created = "created"
        try:
            if not pool.isActive():
                pool.create(0)
            pool.setAutostart(1)
            pool.refresh(0)
        except libvirt.libvirtError as err:
            raise DriverError(f"storage pool {name}: {err}") from err
        return created


@dataclass(frozen=True)
class Volume:
    """A volume of a storage pool: its name, path on the host and size in bytes."""

    name: str
    path: str
    capacity: int


def volume(uri: str, pool: str, name: str) -> Volume | None:
    """The volume ``name`` of ``pool``, or None when it does not exist."""
    with connect(uri) as conn:
        try:
            vol = conn.storagePoolLookupByName(pool).storageVolLookupByName(name)
            _, capacity, _ = vol.info()
            return Volume(name, vol.path(), capacity)
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise DriverError(f"volume {pool}/{name}: {err}") from err


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


def upload_volume(uri: str, pool: str, name: str, source: Path, *, fmt: str) -> Volume:
    """Create ``name`` in ``pool`` with the bytes of ``source``; an existing one is kept.

    Callers put a content digest in ``name``, so an existing volume has these bytes.
    """
    found = volume(uri, pool, name)
    if found is not None:
        return found
    size = source.stat().st_size
    with connect(uri) as conn:
        try:
            storage = conn.storagePoolLookupByName(pool)
            vol = storage.createXML(volume_xml(name, capacity=size, fmt=fmt), 0)
            stream = conn.newStream(0)
            vol.upload(stream, 0, size, 0)
            with source.open("rb") as data:
                stream.sendAll(lambda _s, n, f: f.read(n), data)
            stream.finish()
            return Volume(name, vol.path(), size)
        except libvirt.libvirtError as err:
            with contextlib.suppress(libvirt.libvirtError):
                conn.storagePoolLookupByName(pool).storageVolLookupByName(name).delete(0)
            raise DriverError(f"cannot upload {source} to volume {pool}/{name}: {err}") from err


def create_overlay(
    uri: str, pool: str, name: str, *, backing: str | None, size_gb: int
) -> Volume:
    """Create a qcow2 volume, backed by ``backing`` (copy on write) or empty.

    An existing volume of that name is kept.
    """
    found = volume(uri, pool, name)
    if found is not None:
        return found
    with connect(uri) as conn:
        try:
            xml = volume_xml(name, capacity=size_gb * 1024**3, fmt="qcow2", backing=backing)
            vol = conn.storagePoolLookupByName(pool).createXML(xml, 0)
            return Volume(name, vol.path(), size_gb * 1024**3)
        except libvirt.libvirtError as err:
            raise DriverError(f"cannot create volume {pool}/{name}: {err}") from err


def delete_volume(uri: str, pool: str, name: str) -> None:
    """Delete a volume; one already gone is not an error."""
    with connect(uri) as conn:
        try:
            conn.storagePoolLookupByName(pool).storageVolLookupByName(name).delete(0)
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise DriverError(f"cannot delete volume {pool}/{name}: {err}") from err


def delete_pool(uri: str, name: str) -> None:
    """Stop and undefine pool ``name`` if it holds no volume; gone is not an error."""
    with connect(uri) as conn:
        try:
            pool = conn.storagePoolLookupByName(name)
            if pool.isActive():
                pool.refresh(0)
                if pool.numOfVolumes() > 0:
                    return
                pool.destroy()
            pool.undefine()
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise DriverError(f"cannot delete storage pool {name}: {err}") from err


# --- networks ------------------------------------------------------------------------


def network_active(uri: str, name: str) -> bool | None:
    """Whether network ``name`` is active; None when it is not defined."""
    with connect(uri) as conn:
        try:
            return bool(conn.networkLookupByName(name).isActive())
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise DriverError(f"network {name}: {err}") from err


def network_xml(uri: str, name: str) -> str | None:
    """The defined XML of network ``name``; None when it is not defined."""
    with connect(uri) as conn:
        try:
            return str(conn.networkLookupByName(name).XMLDesc(0))
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise DriverError(f"network {name}: {err}") from err


def apply_network(uri: str, name: str, xml: str) -> None:
    """Define network ``name`` from ``xml``, start it and mark it autostart."""
    with connect(uri) as conn:
        try:
            net = conn.networkDefineXML(xml)
            if not net.isActive():
                net.create()
            net.setAutostart(1)
        except libvirt.libvirtError as err:
            raise DriverError(f"cannot start network {name}: {err}") from err


def delete_network(uri: str, name: str) -> None:
    """Stop and undefine network ``name``; one already gone is not an error."""
    with connect(uri) as conn:
        try:
            net = conn.networkLookupByName(name)
            if net.isActive():
                net.destroy()
            net.undefine()
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise DriverError(f"cannot delete network {name}: {err}") from err


# --- domains -------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainInfo:
    """What libvirt knows of a domain.

    Attributes:
        name: The domain's name.
        uuid: Its UUID.
        state: ``running``, ``shutoff``, ...
        memory_mb: Memory of its definition.
        vcpus: vCPUs of its definition.
        domain_type: ``kvm`` or ``qemu`` (TCG).
        definition_hash: unkai's definition hash from the domain's metadata, if any.
    """

    name: str
    uuid: str
    state: str
    memory_mb: int
    vcpus: int
    domain_type: str
    definition_hash: str | None


_HASH = re.compile(r"<unkai:definition-hash>([0-9a-f]+)</unkai:definition-hash>")
_TYPE = re.compile(r"<domain type='(\w+)'")


def domain(uri: str, name: str) -> DomainInfo | None:
    """The domain ``name``, or None when it is not defined."""
    with connect(uri) as conn:
        try:
            dom = conn.lookupByName(name)
            state, _, _, _, _ = dom.info()
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        except libvirt.libvirtError as err:
            if _missing(err):
                return None
            raise DriverError(f"domain {name}: {err}") from err
    mem = re.search(r"<memory unit='KiB'>(\d+)</memory>", xml)
    vcpu = re.search(r"<vcpu[^>]*>(\d+)</vcpu>", xml)
    hashed = _HASH.search(xml)
    typed = _TYPE.search(xml)
    return DomainInfo(
        name=name,
        uuid=dom.UUIDString(),
        state=_STATES.get(state, str(state)),
        memory_mb=int(mem.group(1)) // 1024 if mem else 0,
        vcpus=int(vcpu.group(1)) if vcpu else 0,
        domain_type=typed.group(1) if typed else "",
        definition_hash=hashed.group(1) if hashed else None,
    )


def define_domain(uri: str, name: str, xml: str) -> None:
    """Define (or redefine) domain ``name`` from ``xml``.

    A running domain keeps its old definition until it restarts.
    """
    with connect(uri) as conn:
        try:
            existing = conn.lookupByName(name)
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise DriverError(f"domain {name}: {err}") from err
            existing = None
        if existing is not None and "<uuid>" not in xml:
            # libvirt redefines a domain only under its UUID; rendered XML has none.
            xml = with_uuid(xml, existing.UUIDString())
        try:
            conn.defineXML(xml)
        except libvirt.libvirtError as err:
            raise DriverError(f"cannot define domain {name}: {err}") from err


def with_uuid(xml: str, uuid: str) -> str:
    """``xml`` with ``<uuid>`` after its ``<name>`` (pure)."""
    return re.sub(r"(</name>)", rf"\1\n  <uuid>{uuid}</uuid>", xml, count=1)


def start_domain(uri: str, name: str) -> None:
    """Start domain ``name`` unless it runs, and mark it autostart."""
    with connect(uri) as conn:
        try:
            dom = conn.lookupByName(name)
            if not dom.isActive():
                dom.create()
            dom.setAutostart(1)
        except libvirt.libvirtError as err:
            raise DriverError(f"cannot start domain {name}: {err}") from err


def stop_domain(uri: str, name: str, *, timeout: float = 60.0) -> None:
    """Shut domain ``name`` down (ACPI), forcing it off after ``timeout`` seconds."""
    with connect(uri) as conn:
        try:
            dom = conn.lookupByName(name)
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
                raise DriverError(f"cannot stop domain {name}: {err}") from err


def delete_domain(uri: str, name: str) -> None:
    """Force domain ``name`` off and undefine it; one already gone is not an error."""
    with connect(uri) as conn:
        try:
            dom = conn.lookupByName(name)
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        except libvirt.libvirtError as err:
            if not _missing(err):
                raise DriverError(f"cannot delete domain {name}: {err}") from err


# --- guests --------------------------------------------------------------------------


def seed_iso_argv(folder: Path, out: Path) -> list[str]:
    """The command that packs a NoCloud seed into an ISO labelled ``cidata`` (pure).

    The seed is ``user-data``, ``meta-data`` and ``network-config`` in ``folder``.
    """
    files = [str(folder / f) for f in ("user-data", "meta-data", "network-config")]
    present = [f for f in files if os.path.exists(f)]
    return [
        "xorriso", "-as", "genisoimage", "-quiet", "-output", str(out),
        "-volid", "cidata", "-joliet", "-rock", *present,
    ]  # fmt: skip


@dataclass(frozen=True)
class GuestReady:
    """What the serial console said when cloud-init finished.

    Attributes:
        seconds: Time from the start of the wait until the marker.
        addresses: IPv4 addresses the guest reported (cloud-init's ci-info table).
    """

    seconds: float
    addresses: tuple[str, ...]


_CI_ADDR = re.compile(r"ci-info: \|\s*(\w+)\s*\|\s*True\s*\|\s*(\d+\.\d+\.\d+\.\d+)\s*\|")


def guest_addresses(console: str) -> tuple[str, ...]:
    """IPv4 addresses of up interfaces (not loopback) in cloud-init's console output."""
    found = {ip for dev, ip in _CI_ADDR.findall(console) if dev != "lo"}
    return tuple(sorted(found))


def wait_for_console(
    log: Path,
    marker: str,
    *,
    timeout: float,
    alive: Callable[[], bool],
    say: Callable[[str], None] = lambda _: None,
) -> GuestReady:
    """Wait until ``marker`` appears in the serial console ``log`` (not a fixed sleep).

    Args:
        log: The console log libvirt writes (``<serial><log file=...>``).
        marker: The line that means done (cloud-init's ``final_message``).
        timeout: Seconds to wait at most.
        alive: Returns False when the domain stopped, so the wait fails at once.
        say: Receives progress lines.

    Raises:
        DriverError: the domain stopped, or the marker did not come in time; the error
            holds the end of the console.
    """
    start = time.monotonic()
    last_note = start
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        if marker in text:
            return GuestReady(round(time.monotonic() - start, 1), guest_addresses(text))
        now = time.monotonic()
        tail = "\n".join(text.strip().splitlines()[-15:])
        if not alive():
            raise DriverError(f"the guest stopped before cloud-init finished; console:\n{tail}")
        if now - start > timeout:
            raise DriverError(
                f"cloud-init did not finish within {timeout:.0f} s; end of {log}:\n{tail}"
            )
        if now - last_note > 15:
            say(f"waiting for cloud-init ({now - start:.0f} s)")
            last_note = now
        time.sleep(1)
