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

from unkai.drivers import libvirt, vms
from unkai.errors import ConfigError, DriverError
from unkai.kinds import InstanceInputs, InstanceState
from unkai.provider._log import say, warn
from unkai.provider._resource import Diff, Resource
from unkai.provider._values import Props


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
        """Disk, seed, domain, boot, and wait for cloud-init (:func:`unkai.drivers.vms.create`).

        Raises:
            DriverError: a domain of that name already exists on the host (unkai never
                takes over or deletes what it did not create), or the VM did not come
                up; in that case everything this call created is removed again.
        """
        return inputs.name, vms.create(inputs, say=say)

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
            state = vms.boot(conn, news, say=say)
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
            vms.own_disks(destination, news)
            for volume in news.volumes:  # there already when its Volume moved first
                destination.create_overlay(
                    news.pool, volume.volume, backing=None, size_gb=volume.size_gb
                )
            vms.seed(destination, news, with_secrets=False)
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

        A host that is unreachable is said, not waited for: what is on it stays there. A
        domain of the name that another has made since (:func:`vms.taken_over`) stays too.
        """
        if libvirt.unreachable(state.libvirt_uri):
            warn(f"{state.name}: host {state.host} is unreachable; its domain and volumes stay")
            return
        with libvirt.session(state.libvirt_uri) as conn:
            if vms.taken_over(conn.domain(state.name), state):
                say(
                    f"{state.name}: the domain of that name on {state.host} was made since by"
                    " another (a group's operator, say); it stays"
                )
                return
            vms.remove(conn, state)
