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

import shlex
import tempfile
from collections.abc import Mapping
from pathlib import Path

from unkai._files import atomic_write
from unkai.drivers import libvirt
from unkai.drivers._run import run
from unkai.errors import ConfigError, DriverError
from unkai.kinds import InstanceInputs, InstanceState
from unkai.provider._log import say
from unkai.provider._resource import Resource
from unkai.render import SEED_SECRETS_FILE

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


def _boot(conn: libvirt.Session, inputs: InstanceInputs) -> InstanceState:
    say(f"{inputs.name}: starting on {inputs.host}; waiting for cloud-init")
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
            if conn.domain(inputs.name) is not None:
                raise DriverError(
                    f"a domain named {inputs.name!r} already exists on {inputs.libvirt_uri}"
                    " and this stack did not create it; remove it (virsh undefine) or rename"
                    " the instance"
                )
            try:
                for index, disk in enumerate(inputs.disks):
                    # The first disk boots: a copy-on-write layer over the image; others empty.
                    conn.create_overlay(
                        inputs.pool,
                        disk.volume,
                        backing=inputs.image_volume_path if index == 0 else None,
                        size_gb=disk.size_gb,
                    )
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
        with libvirt.session(state.libvirt_uri) as conn:
            info = conn.domain(resource_id)
            if info is None or conn.volume(state.pool, state.disks[0].volume) is None:
                return None
            live_xml = conn.domain_xml(resource_id)
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

    def update(self, resource_id: str, olds: InstanceState, news: InstanceInputs) -> InstanceState:
        """Redefine the domain and restart it so the new definition applies."""
        with libvirt.session(news.libvirt_uri) as conn:
            conn.define_domain(resource_id, news.domain_xml)
            conn.stop_domain(resource_id, timeout=60)
            return _boot(conn, news)

    def delete(self, resource_id: str, state: InstanceState) -> None:
        """Domain, disks and seed ISO."""
        with libvirt.session(state.libvirt_uri) as conn:
            _remove(conn, state)


def _remove(conn: libvirt.Session, inputs: InstanceInputs) -> None:
    conn.delete_domain(inputs.name)
    for disk in inputs.disks:
        conn.delete_volume(inputs.pool, disk.volume)
    conn.delete_volume(inputs.pool, inputs.seed_volume)
