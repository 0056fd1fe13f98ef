"""A VM from its rendered inputs: disks, NoCloud seed, domain, boot, and removal.

What both the ``Instance`` kind (``unkai up``) and the operator (an instance group's
members) do to make and remove a VM, so a member is made exactly as a plain instance:
a copy-on-write disk over the image's volume, the seed ISO (user-data, meta-data,
network-config, exactly as ``unkai render`` writes them), the domain defined and
started, then a wait until cloud-init has finished, read on the serial console through
libvirt's console stream (the same on a remote host), not a fixed sleep. Progress goes
to the ``say`` the caller passes.
"""

from __future__ import annotations

import hashlib
import shlex
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from unkai._files import atomic_write, one_of_locks
from unkai.drivers import libvirt
from unkai.drivers._run import run
from unkai.errors import DriverError
from unkai.kinds import InstanceInputs, InstanceState
from unkai.render import SEED_SECRETS_FILE
from unkai.toolchain import cache_root

__all__ = [
    "READY_MARKER",
    "boot",
    "boot_locks",
    "create",
    "own_disks",
    "owns",
    "remove",
    "secrets_file",
    "seed",
]

READY_MARKER = "unkai: cloud-init finished"
"""The line cloud-init's ``final_message`` writes to the serial console."""

Say = Callable[[str], None]


def secrets_file(values: Mapping[str, str]) -> str:
    """The ``VAR=value`` lines of the guest's secrets file, values shell-quoted (pure)."""
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in sorted(values.items()))


def seed(conn: libvirt.Session, inputs: InstanceInputs, *, with_secrets: bool) -> None:
    """Build the NoCloud seed ISO and put it in the pool (replacing the one there).

    With ``with_secrets`` the seed also carries :data:`unkai.render.SEED_SECRETS_FILE`
    for the first boot; it is built in a private temporary folder (0700) on the machine
    running unkai and exists on the host only until cloud-init has finished.
    """
    with tempfile.TemporaryDirectory(prefix="unkai-seed-") as tmp:
        folder = Path(tmp)
        files = {
            "user-data": inputs.user_data,
            "meta-data": inputs.meta_data,
            "network-config": inputs.network_config,
        }
        for name, text in files.items():
            if text:
                (folder / name).write_text(text, encoding="utf-8")
        extra: list[Path] = []
        if with_secrets and inputs.secret_env:
            secret = folder / SEED_SECRETS_FILE
            atomic_write(secret, secrets_file(inputs.secret_env), mode=0o600)
            extra.append(secret)
        iso = folder / "seed.iso"
        run(libvirt.seed_iso_argv(folder, iso, extra=extra))
        conn.delete_volume(inputs.pool, inputs.seed_volume)
        conn.upload_volume(inputs.pool, inputs.seed_volume, iso, fmt="raw")


def boot_locks(libvirt_uri: str, slots: int) -> list[Path]:
    """The lock files of a host's boot slots, in the cache every run of unkai shares (pure)."""
    key = hashlib.sha256(libvirt_uri.encode()).hexdigest()[:16]
    return [cache_root() / "locks" / f"boot-{key}-{i}.lock" for i in range(slots)]


def boot(conn: libvirt.Session, inputs: InstanceInputs, *, say: Say) -> InstanceState:
    """Start the VM when the host has a boot slot free, and wait for cloud-init.

    A host boots as many guests at once as :meth:`~unkai.drivers.libvirt.Session.boot_slots`
    says (its cores, its free memory), counted across every process of unkai on this
    machine; the others wait their turn, and their boot timeout starts with their own boot.
    """
    slots = conn.boot_slots(inputs.memory_mb)

    def waiting(seconds: float) -> None:
        say(f"{inputs.name}: waiting for a boot slot on {inputs.host}"
            f" ({seconds:.0f} s; it boots {slots} at once)")  # fmt: skip

    with one_of_locks(boot_locks(inputs.libvirt_uri, slots), waiting=waiting) as waited:
        after = f" after {waited:.0f} s for a boot slot" if waited >= 1 else ""
        say(f"{inputs.name}: starting on {inputs.host}{after}; waiting for cloud-init")
        ready = conn.start_and_watch(
            inputs.name, READY_MARKER, timeout=inputs.boot_timeout, say=say
        )
    info = conn.domain(inputs.name)
    if info is None:
        raise DriverError(f"domain {inputs.name} vanished while it booted")
    say(f"{inputs.name}: cloud-init finished in {ready.seconds:.0f} s")
    return InstanceState(
        **dict(inputs),
        state=info.state,
        uuid=info.uuid,
        accelerator="kvm" if info.domain_type == "kvm" else "tcg",
        ip_addresses=ready.addresses,
        # A forwarded port listens on the host's loopback; otherwise the guest's own
        # address, reached through its host (ProxyJump).
        ssh_host="127.0.0.1" if inputs.ssh_port else next(iter(ready.addresses), None),
        boot_seconds=ready.seconds,
        ssh_host_keys=ready.host_keys,
    )


def create(inputs: InstanceInputs, *, say: Say) -> InstanceState:
    """Disk, seed, domain, boot, and wait for cloud-init.

    Raises:
        DriverError: a domain of that name already exists on the host and is not this
            one's (unkai never takes over or deletes what it did not create), its volumes
            are not there, or the VM did not come up; in that case everything this call
            created is removed again.
    """
    with libvirt.session(inputs.libvirt_uri) as conn:
        found = conn.domain(inputs.name)
        if found is not None:
            if not owns(found, inputs):
                raise DriverError(
                    f"a domain named {inputs.name!r} already exists on"
                    f" {inputs.libvirt_uri} and this stack did not create it; remove it"
                    " (virsh undefine) or rename the instance"
                )
            # Ours, from a create that was interrupted: made again from scratch.
            say(f"{inputs.name}: adopting what an interrupted run left: it is made anew")
            remove(conn, inputs)
        missing = [v.volume for v in inputs.volumes if conn.volume(inputs.pool, v.volume) is None]
        if missing:
            raise DriverError(
                f"{inputs.name}: its volumes {', '.join(missing)} are not on {inputs.host}"
                " (the Volume resources make them first)"
            )
        try:
            own_disks(conn, inputs)
            seed(conn, inputs, with_secrets=True)
            conn.define_domain(inputs.name, inputs.domain_xml)
            state = boot(conn, inputs, say=say)
            if inputs.secret_env:
                # Installed in the guest: the host keeps no copy of the values.
                seed(conn, inputs, with_secrets=False)
                say(f"{inputs.name}: secrets installed; the seed on the host holds none")
            return state
        except Exception:
            # Nothing half-created: a VM that did not come up goes with its disks.
            remove(conn, inputs)
            raise


def owns(found: libvirt.DomainInfo, inputs: InstanceInputs) -> bool:
    """Whether a domain on the host is this instance's own, left by an interrupted create.

    unkai's domains carry their environment and definition hash in their metadata: a
    domain with the very definition this create is making is the one it made before.
    """
    wanted = libvirt.domain_info(inputs.domain_xml, state="").definition_hash
    return wanted is not None and found.definition_hash == wanted


def taken_over(found: libvirt.DomainInfo | None, state: InstanceState) -> bool:
    """Whether the domain of an instance's name is another's now, not the one it made (pure).

    An instance records its domain's UUID. A domain of that name with another UUID was
    made since by someone else, such as the operator of a group that took the instance's
    place (an environment given a management cluster): deleting the instance leaves it,
    and its disks, to its maker.
    """
    return found is not None and bool(state.uuid) and bool(found.uuid) and found.uuid != state.uuid


def own_disks(conn: libvirt.Session, inputs: InstanceInputs) -> None:
    """The disks the VM owns: the first boots, a copy-on-write layer over the image."""
    for index, disk in enumerate(inputs.disks):
        conn.create_overlay(
            inputs.pool,
            disk.volume,
            backing=inputs.image_volume_path if index == 0 else None,
            size_gb=disk.size_gb,
        )


def remove(conn: libvirt.Session, inputs: InstanceInputs) -> None:
    """The domain, its own disks and its seed; never its volumes (they outlive it)."""
    conn.delete_domain(inputs.name)
    for disk in inputs.disks:
        conn.delete_volume(inputs.pool, disk.volume)
    conn.delete_volume(inputs.pool, inputs.seed_volume)
