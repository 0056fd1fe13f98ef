"""``unkai:compute:Instance``: a VM from the rendered domain XML and a NoCloud seed.

Create: a copy-on-write disk over the image's volume, the seed ISO (user-data,
meta-data, network-config, exactly as ``unkai render`` writes them), the domain
defined and started, then a wait until cloud-init has finished — read on the serial
console through libvirt's console stream (the same on a remote host), not a fixed
sleep. Memory and vCPU changes are applied in place with a restart; a change of image
or cloud-init data replaces the VM, because cloud-init runs its first-boot work only
once per instance.
"""

from __future__ import annotations

import hashlib
import shlex
import tempfile
from collections.abc import Mapping
from pathlib import Path

from unkai._files import atomic_write, one_of_locks
from unkai.drivers import libvirt
from unkai.drivers._run import run
from unkai.errors import ConfigError, DriverError
from unkai.kinds import InstanceInputs, InstanceState
from unkai.provider._log import say, warn
from unkai.provider._resource import Diff, Resource
from unkai.provider._values import Props
from unkai.render import SEED_SECRETS_FILE
from unkai.toolchain import cache_root

READY_MARKER = "unkai: cloud-init finished"
"""The line cloud-init's ``final_message`` writes to the serial console."""


def secrets_file(values: Mapping[str, str]) -> str:
    """The ``VAR=value`` lines of the guest's secrets file, values shell-quoted (pure)."""
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in sorted(values.items()))


def _seed(conn: libvirt.Session, inputs: InstanceInputs, *, with_secrets: bool) -> None:
    """Build the NoCloud seed ISO and put it in the pool (replacing the one there).

    With ``with_secrets`` the seed also carries :data:`unkai.render.SEED_SECRETS_FILE`
    for the first boot; it is built in a private temporary folder (0700) on the machine
    running the engine and exists on the host only until cloud-init has finished.
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


def _boot(conn: libvirt.Session, inputs: InstanceInputs) -> InstanceState:
    """Start the VM when the host has a boot slot free, and wait for cloud-init.

    A host boots as many guests at once as :meth:`~unkai.drivers.libvirt.Session.boot_slots`
    says (its cores, its free memory), counted across every run of unkai on this machine;
    the others wait their turn, and their boot timeout starts with their own boot.
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


class Instance(Resource[InstanceInputs, InstanceState]):
    """A VM on one host."""

    inputs_model = InstanceInputs
    state_model = InstanceState

    def validate(self, inputs: InstanceInputs, *, secrets: frozenset[str]) -> None:
        """Secret values must arrive as Pulumi secrets (so the state keeps them secret)."""
        if inputs.secret_env and "secret_env" not in secrets:
            raise ConfigError(
                "must be a Pulumi secret (pulumi.Output.secret or Config.require_secret)",
                key_path="secret_env",
            )

    def create(self, inputs: InstanceInputs) -> tuple[str, InstanceState]:
        """Disk, seed, domain, boot, and wait for cloud-init.

        Raises:
            DriverError: a domain of that name already exists on the host (unkai never
                takes over or deletes what it did not create), or the VM did not come
                up; in that case everything this call created is removed again.
        """
        with libvirt.session(inputs.libvirt_uri) as conn:
            found = conn.domain(inputs.name)
            if found is not None:
                if not _own(found, inputs):
                    raise DriverError(
                        f"a domain named {inputs.name!r} already exists on"
                        f" {inputs.libvirt_uri} and this stack did not create it; remove it"
                        " (virsh undefine) or rename the instance"
                    )
                # Ours, from a create that was interrupted: made again from scratch.
                say(f"{inputs.name}: adopting what an interrupted run left: it is made anew")
                _remove(conn, inputs)
            missing = [
                v.volume for v in inputs.volumes if conn.volume(inputs.pool, v.volume) is None
            ]
            if missing:
                raise DriverError(
                    f"{inputs.name}: its volumes {', '.join(missing)} are not on {inputs.host}"
                    " (the Volume resources make them first)"
                )
            try:
                _own_disks(conn, inputs)
                _seed(conn, inputs, with_secrets=True)
                conn.define_domain(inputs.name, inputs.domain_xml)
                state = _boot(conn, inputs)
                if inputs.secret_env:
                    # Installed in the guest: the host keeps no copy of the values.
                    _seed(conn, inputs, with_secrets=False)
                    say(f"{inputs.name}: secrets installed; the seed on the host holds none")
                return inputs.name, state
            except Exception:
                # Nothing half-created: a VM that did not come up goes with its disks.
                _remove(conn, inputs)
                raise

    def read(self, resource_id: str, state: InstanceState) -> InstanceState | None:
        """The domain as libvirt has it; None when it or its boot disk is gone.

        Memory, vCPUs and the run state read live. ``domain_xml`` reads as the rendered
        text while the live definition has the same fingerprint (memory, vCPUs, disks,
        NICs, kernel and command line, console; :func:`~unkai.drivers.libvirt.domain_fingerprint`),
        and as the live XML after a hand change (``virsh edit``, ``setmem --config``):
        the next preview shows it drifted and ``up`` redefines the domain.
        """
        try:
            with libvirt.session(state.libvirt_uri) as conn:
                info = conn.domain(resource_id)
                if info is None or conn.volume(state.pool, state.disks[0].volume) is None:
                    return None
                live_xml = conn.domain_xml(resource_id)
        except DriverError:
            if not libvirt.unreachable(state.libvirt_uri):
                raise
            warn(f"{state.name}: host {state.host} is unreachable; its state is unknown")
            return state.model_copy(update={"state": "unreachable"})
        same = info.fingerprint == libvirt.domain_fingerprint(state.domain_xml)
        return state.model_copy(
            update={
                "domain_xml": state.domain_xml if same else (live_xml or ""),
                "state": info.state,
                "running": info.state == "running",
                "memory_mb": info.memory_mb,
                "vcpus": info.vcpus,
                "uuid": info.uuid,
            }
        )

    def diff(self, olds: Props, news: Props) -> Diff:
        """The generic diff; a new host is said as the migration it is."""
        result = super().diff(olds, news)
        if "host" in result.changed and not result.replaces:
            say(f"migrate {olds.get('host')} → {news.get('host')} (live, the guest keeps running)")
        return result

    def update(self, resource_id: str, olds: InstanceState, news: InstanceInputs) -> InstanceState:
        """Move the VM live to its new host; redefine and restart it for a new definition."""
        if olds.libvirt_uri != news.libvirt_uri:
            olds = self._migrate(olds, news)
            if olds.domain_xml == news.domain_xml:
                return olds
        with libvirt.session(news.libvirt_uri) as conn:
            conn.define_domain(resource_id, news.domain_xml)
            conn.stop_domain(resource_id, timeout=60)
            state = _boot(conn, news)
        # cloud-init prints the host keys at first boot only; a restart keeps them.
        return (
            state
            if state.ssh_host_keys
            else state.model_copy(update={"ssh_host_keys": olds.ssh_host_keys})
        )

    def _migrate(self, olds: InstanceState, news: InstanceInputs) -> InstanceState:
        """Live migration: the destination gets the same volumes; then the guest moves.

        The source's volumes go afterwards. The guest's boot, processes and memory are
        untouched.
        """
        if not news.host_address:
            raise DriverError(f"{news.name}: host {news.host} has no address to migrate to")
        if libvirt.unreachable(olds.libvirt_uri):
            # Evacuation: the old host is gone with the guest's disks; boot it anew.
            warn(
                f"{news.name}: host {olds.host} is unreachable: the VM is recreated on"
                f" {news.host} (what was on its disks there is lost with that host)"
            )
            _, state = self.create(news)
            return state
        with (
            libvirt.session(olds.libvirt_uri) as source,
            libvirt.session(news.libvirt_uri) as destination,
        ):
            info = source.domain(olds.name)
            if info is None or info.state != "running":
                raise DriverError(
                    f"{olds.name} is not running on {olds.host}: nothing to migrate live"
                    " (refresh, then up recreates it on its new host)"
                )
            say(f"{olds.name}: preparing {news.host} (its disks over the host's own image)")
            _own_disks(destination, news)
            for volume in news.volumes:  # there already when its Volume moved first
                destination.create_overlay(
                    news.pool, volume.volume, backing=None, size_gb=volume.size_gb
                )
            _seed(destination, news, with_secrets=False)
            copied = [d.target for d in info.disks if d.device == "disk" and not d.readonly]
            say(f"{olds.name}: migrating {olds.host} → {news.host} (disks {', '.join(copied)})")
            migrated = source.migrate(
                olds.name, destination, address=news.host_address, disks=copied
            )
            # The source's copies: its own disks, and its volumes' (they moved with it).
            for disk in (*olds.disks, *olds.volumes):
                source.delete_volume(olds.pool, disk.volume)
            source.delete_volume(olds.pool, olds.seed_volume)
            moved = destination.domain(news.name)
        paused = (
            f", paused {migrated.downtime_ms:.0f} ms" if migrated.downtime_ms is not None else ""
        )
        say(f"{news.name}: migrated to {news.host} in {migrated.seconds:.1f} s{paused}")
        return olds.model_copy(
            update={
                "host": news.host,
                "libvirt_uri": news.libvirt_uri,
                "host_address": news.host_address,
                "image_volume_path": news.image_volume_path,
                "state": moved.state if moved else None,
                "running": bool(moved and moved.state == "running"),
            }
        )

    def delete(self, resource_id: str, state: InstanceState) -> None:
        """Domain, disks and seed ISO.

        A host that is unreachable is said, not waited for: what is on it stays there.
        """
        if libvirt.unreachable(state.libvirt_uri):
            warn(f"{state.name}: host {state.host} is unreachable; its domain and volumes stay")
            return
        with libvirt.session(state.libvirt_uri) as conn:
            _remove(conn, state)


def _own(found: libvirt.DomainInfo, inputs: InstanceInputs) -> bool:
    """Whether a domain on the host is this instance's own, left by an interrupted create.

    unkai's domains carry their environment and definition hash in their metadata: a
    domain with the very definition this create is making is the one it made before.
    """
    wanted = libvirt.domain_info(inputs.domain_xml, state="").definition_hash
    return wanted is not None and found.definition_hash == wanted


def _own_disks(conn: libvirt.Session, inputs: InstanceInputs) -> None:
    """The disks the VM owns: the first boots, a copy-on-write layer over the image."""
    for index, disk in enumerate(inputs.disks):
        conn.create_overlay(
            inputs.pool,
            disk.volume,
            backing=inputs.image_volume_path if index == 0 else None,
            size_gb=disk.size_gb,
        )


def _remove(conn: libvirt.Session, inputs: InstanceInputs) -> None:
    """The domain, its own disks and its seed; never its volumes (they outlive it)."""
    conn.delete_domain(inputs.name)
    for disk in inputs.disks:
        conn.delete_volume(inputs.pool, disk.volume)
    conn.delete_volume(inputs.pool, inputs.seed_volume)
