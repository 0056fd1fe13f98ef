"""Simulated KVM hosts: an environment's hosts as containers that are real hosts.

This is the one module of unkai that knows a host is simulated. Each host of an
environment (``fleet``) becomes a container with its own hostname, address, network
namespace, SSH host key, libvirt ``host_uuid`` and storage, running sshd, virtlogd,
libvirtd and QEMU from Debian packages. Everything else — Ansible, libvirt over
``qemu+ssh://``, SSH — reaches it as it would reach hardware, at the host's ``address``.

What ``up`` does, each step with a pure plan beside it (STYLE #2):

* **the host image** (:func:`plan_host_image`): a Debian tree of :data:`HOST_PACKAGES`
  with the init script :data:`ENTRYPOINT` baked in, built by mmdebstrap into the cache
  (:func:`unkai.drivers.images.build_rootfs`, content-addressed, skipped when present)
  and ``docker import``-ed as ``unkai/kvm-host:bookworm-<digest12>``
  (:func:`unkai.drivers.docker.ensure_base_image`). Its entrypoint is
  ``tini -s -- unkai-kvm-host``: the script makes (or keeps) the SSH host key, writes
  the host's ``host_uuid`` and authorized key, starts sshd, virtlogd and libvirtd, and
  stays; tini reaps what QEMU leaves behind.
* **the network** (:func:`plan_network`): a Docker bridge ``unkai-<env>`` whose subnet is
  the smallest one (at most a /24) holding every host's address; the machine is its
  gateway (``.1``). Nothing is published on the machine's interfaces.
* **the hosts** (:func:`plan_fleet`): one container ``unkai-<env>-<host>`` per host, with
  the capabilities a hypervisor needs (:data:`CAP_ADD`, :data:`CAP_DROP`,
  :data:`SECURITY_OPT`, :data:`SYSTEM_PATHS`, ``/dev/net/tun``, ``/dev/kvm`` when the
  machine has it), a volume ``unkai-<env>-<host>-libvirt`` at ``/var/lib/libvirt`` (the
  storage pool survives a restart and a re-creation), and the labels
  :data:`PROJECT_LABEL`, :data:`ENVIRONMENT_LABEL`, :data:`HOST_LABEL` that say who owns
  it.
* **the reconciliation** (:func:`diff_fleet`): what exists (:func:`observe`) against the
  plan, as a tuple of :class:`Step` values, empty when everything runs as planned. A
  container whose configuration changed is re-created (its volume stays); a stopped
  one is started; an object of the same name owned by another project or environment
  is an error, never touched.
* **trust** (:func:`merge_known_hosts`): each host's SSH host key, read through the
  engine (the console, not the network), replaces the lines of its address in the
  project's ``known_hosts``, so unkai's SSH clients check host keys and never trust
  on first use.
* **readiness** (:func:`probe_argv`): ``ssh … virsh -c qemu:///system version`` with the
  operator key and that ``known_hosts`` (``StrictHostKeyChecking=yes``), retried until
  it answers.

:func:`up`, :func:`down` and :func:`status` run it all; :func:`down` removes only
containers, volumes and networks labelled with this project and environment.

Example:
    >>> spec = host_image_spec()
    >>> "libvirt-daemon-system" in spec.packages, spec.files[0].path
    (True, 'usr/local/sbin/unkai-kvm-host')
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import docker.errors
import docker.types

from unkai._files import atomic_write, file_lock
from unkai.drivers import docker as engine
from unkai.drivers.images import (
    RootfsFile,
    RootfsSpec,
    build_rootfs,
    rootfs_layout,
)
from unkai.errors import ConfigError, DriverError
from unkai.model import DEBIAN_MIRROR, Environment, Host

__all__ = [
    "CAP_ADD",
    "CAP_DROP",
    "ENTRYPOINT",
    "ENVIRONMENT_LABEL",
    "HOST_IMAGE_REF",
    "HOST_LABEL",
    "HOST_PACKAGES",
    "PROJECT_LABEL",
    "SECURITY_OPT",
    "SYSTEM_PATHS",
    "FleetPlan",
    "HostImagePlan",
    "HostPlan",
    "HostStatus",
    "NetworkPlan",
    "Observed",
    "ObservedContainer",
    "ObservedNetwork",
    "Step",
    "UpReport",
    "diff_fleet",
    "down",
    "drop_known_hosts",
    "ensure_host_image",
    "host_image_spec",
    "host_uuid",
    "merge_known_hosts",
    "observe",
    "plan_fleet",
    "plan_host_image",
    "plan_network",
    "probe_argv",
    "status",
    "up",
]

Progress = Callable[[str], None]


def _ignore(_: str) -> None:
    pass


PROJECT_LABEL = "dev.unkai.project"
"""Label of every object :func:`up` makes: the project root's absolute path."""
ENVIRONMENT_LABEL = "dev.unkai.environment"
"""Label of every object :func:`up` makes: the environment's name."""
HOST_LABEL = "dev.unkai.host"
"""Label of a host's container and volume: the host's name."""
ADDRESS_LABEL = "dev.unkai.address"
"""Label of a host's container: its address (to forget its host key after ``down``)."""
SPEC_LABEL = "dev.unkai.host-spec"
"""Label of a host's container: the digest of its planned configuration."""

HOST_IMAGE_REF = "unkai/kvm-host:bookworm"
"""The host image's reference; its digest tag is ``bookworm-<digest12>``."""

HOST_PACKAGES = (
    "dnsmasq-base",
    "iproute2",
    "iptables",
    "libvirt-clients",
    "libvirt-daemon-system",
    "netcat-openbsd",
    "openssh-server",
    "procps",
    "python3",
    "python3-apt",
    "qemu-system-x86",
    "qemu-utils",
    "tini",
    "xorriso",
)
"""What a host runs: libvirt and QEMU, sshd, tini as init, dnsmasq and iptables for libvirt
NAT networks, python3 (and python3-apt) for Ansible, nc for libvirt's ssh transport,
xorriso for seed ISOs."""

ENTRYPOINT = "/usr/local/sbin/unkai-kvm-host"
"""The host's init script, run by ``tini -s`` as the container's entrypoint."""

HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
"""The host's one SSH host key (made on first start, kept across restarts)."""

LIBVIRT_DIR = "/var/lib/libvirt"
"""Where the host's volume is mounted: storage pools, images, dnsmasq leases."""

CAP_ADD = ("ALL",)
"""Capabilities of a host: all of them (``--privileged`` fails on this kind of machine) …"""
CAP_DROP = ("SYS_RESOURCE",)
"""… but CAP_SYS_RESOURCE, which the machine's bounding set may lack."""
SECURITY_OPT = (
    "apparmor=unconfined",
    "seccomp=unconfined",
)
"""No seccomp or AppArmor filter on QEMU and libvirt."""
SYSTEM_PATHS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"MaskedPaths": (), "ReadonlyPaths": ()}
)
"""What ``--security-opt systempaths=unconfined`` means to the engine (the CLI translates
it; the API takes these): nothing of ``/proc`` masked, ``/proc/sys`` writable for the
bridge a libvirt NAT network makes."""

_ENTRYPOINT_SCRIPT = r"""#!/bin/sh
# The init of a simulated unkai KVM host, run by `tini -s` (which reaps what QEMU leaves).
# The host's identity comes from its container: UNKAI_HOST_UUID and UNKAI_AUTHORIZED_KEYS.
set -eu
: "${UNKAI_HOST_UUID:?}" "${UNKAI_AUTHORIZED_KEYS:?}"

# One SSH host key per host, made on first start and kept across restarts.
[ -s /etc/ssh/ssh_host_ed25519_key ] ||
    ssh-keygen -q -t ed25519 -N '' -C '' -f /etc/ssh/ssh_host_ed25519_key
install -d -m 0700 /root/.ssh
printf '%s\n' "$UNKAI_AUTHORIZED_KEYS" > /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys

# libvirt refuses to migrate between hosts that share a host UUID.
sed -i '/^host_uuid[[:space:]]*=/d' /etc/libvirt/libvirtd.conf
printf 'host_uuid = "%s"\n' "$UNKAI_HOST_UUID" >> /etc/libvirt/libvirtd.conf
printf '%s\n' "$UNKAI_HOST_UUID" | tr -d '-' > /etc/machine-id

install -d -m 0755 /run/sshd /run/libvirt
# What systemd-tmpfiles makes on a booted Debian: /var/lock points here (libvirt locks
# a guest's console pty in it).
install -d -m 1777 /run/lock
/usr/sbin/sshd
/usr/sbin/virtlogd --daemon
/usr/sbin/libvirtd --daemon
echo "unkai-kvm-host: sshd, virtlogd and libvirtd started (host_uuid $UNKAI_HOST_UUID)"

stop() {
    for pidfile in /run/libvirtd.pid /run/virtlogd.pid /run/sshd.pid; do
        [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    exit 0
}
trap stop TERM INT
while :; do
    sleep 3600 &
    wait $! || true
done
"""

_SSHD_CONFIG = """# unkai KVM host: the operator key only, one host key, many multiplexed sessions.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxSessions 64
MaxStartups 64:30:128
"""

_HOOKS = (
    # libvirt cannot manage cgroups from inside a container; QEMU runs without them.
    "printf '\\n# unkai: no cgroups inside a container\\ncgroup_controllers = [ ]\\n'"
    ' >> "$1/etc/libvirt/qemu.conf"',
    # Networks come from unkai's Network resource, not from the package's "default".
    'rm -f "$1/etc/libvirt/qemu/networks/default.xml"'
    ' "$1/etc/libvirt/qemu/networks/autostart/default.xml"',
)

_IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    f'ENTRYPOINT ["/usr/bin/tini", "-s", "--", "{ENTRYPOINT}"]',
    "CMD []",
)
# The import changes are not part of the tree's digest: change ENTRYPOINT (the script,
# which is) when they change, so that a new image is imported.


# --- plans -----------------------------------------------------------------------------


def host_image_spec(*, mirror: str = DEBIAN_MIRROR) -> RootfsSpec:
    """The Debian tree of a simulated host: packages, init script, sshd and libvirt tweaks.

    Pure. The digest covers every package, file and hook, so a change to any of them
    builds and imports a new image.
    """
    return RootfsSpec(
        name="kvm-host",
        packages=HOST_PACKAGES,
        files=(
            RootfsFile(ENTRYPOINT.lstrip("/"), _ENTRYPOINT_SCRIPT, 0o755),
            RootfsFile("etc/ssh/sshd_config.d/unkai.conf", _SSHD_CONFIG),
        ),
        hooks=_HOOKS,
        mirror=mirror,
    )


@dataclass(frozen=True)
class HostImagePlan:
    """The host image: the tree to build and its import.

    Attributes:
        spec: The tree (:func:`host_image_spec`).
        import_plan: Its ``docker import`` (reference, labels, entrypoint).
        ref: The reference also pointed at it (:data:`HOST_IMAGE_REF`).
    """

    spec: RootfsSpec
    import_plan: engine.BaseImportPlan
    ref: str = HOST_IMAGE_REF

    @property
    def reference(self) -> str:
        """The digest-tagged reference hosts run (``unkai/kvm-host:bookworm-<digest12>``)."""
        return self.import_plan.reference


def plan_host_image(
    *, cache_root: Path, mirror: str = DEBIAN_MIRROR, ref: str = HOST_IMAGE_REF
) -> HostImagePlan:
    """The host image's build and import; nothing runs, nothing is read.

    Args:
        cache_root: unkai's cache (``unkai.toolchain.cache_root()``).
        mirror: The Debian archive.
        ref: The image's reference; its digest tag is ``<tag>-<digest12>``.
    """
    spec = host_image_spec(mirror=mirror)
    layout = rootfs_layout(spec, cache_root)
    return HostImagePlan(
        spec=spec,
        import_plan=engine.plan_base_import(layout, ref=ref, changes=_IMPORT_CHANGES),
        ref=ref,
    )


@dataclass(frozen=True)
class NetworkPlan:
    """The Docker bridge network the hosts of an environment sit on.

    Attributes:
        name: ``unkai-<env>``.
        subnet: Its subnet (``10.231.0.0/24``).
        gateway: The machine's address on it (the subnet's first address).
        labels: Project and environment.
    """

    name: str
    subnet: str
    gateway: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class HostPlan:
    """One host's container.

    Attributes:
        host: The host's name.
        zone: Its zone (shown by ``hosts list``).
        container: The container's name (``unkai-<env>-<host>``).
        hostname: Its hostname (the host's name).
        address: Its fixed address on the network.
        ssh_user: The user unkai logs in as (``root``).
        image: The host image reference.
        network: The network's name.
        volume: The volume at :data:`LIBVIRT_DIR`.
        host_uuid: libvirt's ``host_uuid`` of the host.
        environment: The container's environment variables.
        devices: Device mappings (``/dev/net/tun:/dev/net/tun:rwm``).
        labels: Ownership labels and :data:`SPEC_LABEL`.
    """

    host: str
    zone: str
    container: str
    hostname: str
    address: str
    ssh_user: str
    image: str
    network: str
    volume: str
    host_uuid: str
    environment: Mapping[str, str]
    devices: tuple[str, ...]
    labels: Mapping[str, str]

    @property
    def spec_digest(self) -> str:
        """The digest of the configuration, kept in :data:`SPEC_LABEL`."""
        return self.labels[SPEC_LABEL]

    def host_config_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``APIClient.create_host_config``.

        The mount and :data:`SYSTEM_PATHS` (which ``create_host_config`` has no argument
        for) are added apart.
        """
        return {
            "cap_add": list(CAP_ADD),
            "cap_drop": list(CAP_DROP),
            "security_opt": list(SECURITY_OPT),
            "devices": list(self.devices),
            # A fresh /run on each start, as on a real boot: no stale sockets or pid files.
            "tmpfs": {"/run": "rw,nosuid,nodev,mode=0755"},
            "network_mode": self.network,
        }

    def volume_labels(self) -> dict[str, str]:
        """The volume's labels: ownership and the host."""
        return {k: v for k, v in self.labels.items() if k != SPEC_LABEL and k != ADDRESS_LABEL}


@dataclass(frozen=True)
class FleetPlan:
    """Everything :func:`up` makes for one environment.

    Attributes:
        project: The project root (the value of :data:`PROJECT_LABEL`).
        environment: The environment's name.
        image: The host image.
        network: The network.
        hosts: The hosts' containers, by host name.
    """

    project: str
    environment: str
    image: HostImagePlan
    network: NetworkPlan
    hosts: tuple[HostPlan, ...]

    def host(self, name: str) -> HostPlan:
        """The plan of host ``name``."""
        return next(h for h in self.hosts if h.host == name)


def _labels(project: str, environment: str) -> dict[str, str]:
    return {PROJECT_LABEL: project, ENVIRONMENT_LABEL: environment}


def host_uuid(*, project: str, environment: str, host: str) -> str:
    """The libvirt ``host_uuid`` of a host: stable for the host, distinct between hosts.

    >>> host_uuid(project="/p", environment="fleet", host="kvm-a1") == host_uuid(
    ...     project="/p", environment="fleet", host="kvm-a1")
    True
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"unkai:{project}:{environment}:{host}"))


def _ipv4(host: Host, file: str | None) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.ip_address(host.address)
    except ValueError:
        address = None
    if not isinstance(address, ipaddress.IPv4Address):
        raise ConfigError(
            "a simulated host needs an IPv4 address, the one its container gets",
            file=file,
            key_path=f"hosts.{host.name}.address",
            value=host.address,
            allowed="an IPv4 address on a private subnet, such as 10.231.0.11",
        )
    return address


def _simulated_hosts(env: Environment, file: str | None) -> list[Host]:
    hosts = sorted(env.hosts.values(), key=lambda h: h.name)
    if not hosts:
        raise ConfigError(
            f"environment {env.name!r} has no hosts to simulate", file=file, key_path="hosts"
        )
    for host in hosts:
        if host.connection != "ssh":
            raise ConfigError(
                "a simulated host is reached over SSH like a real one",
                file=file,
                key_path=f"hosts.{host.name}.connection",
                value=host.connection,
                allowed="ssh",
            )
        if host.ssh_user != "root":
            raise ConfigError(
                "a simulated host authorizes the operator key for root only",
                file=file,
                key_path=f"hosts.{host.name}.ssh_user",
                value=host.ssh_user,
                allowed="root",
            )
    return hosts


def plan_network(env: Environment, *, project: str, file: str | None = None) -> NetworkPlan:
    """The bridge network of ``env``'s hosts: the smallest subnet (a /24 at most) holding them.

    Pure. The subnet's first address is the gateway (this machine); no host may take
    it, nor the subnet's own or broadcast address.

    Args:
        env: The environment.
        project: The project root (ownership label).
        file: The environment's file, for errors.

    Raises:
        ConfigError: An address is not IPv4, the addresses span more than a /24's worth
            of a private range, or one is the subnet's network, gateway or broadcast
            address.
    """
    hosts = _simulated_hosts(env, file)
    addresses = [_ipv4(h, file) for h in hosts]
    prefix = 24
    network = ipaddress.ip_network(f"{addresses[0]}/{prefix}", strict=False)
    while not all(a in network for a in addresses):
        prefix -= 1
        network = network.supernet(new_prefix=prefix)
    if prefix < 16 or not network.is_private:
        raise ConfigError(
            f"the hosts of {env.name!r} must share one private subnet of at most a /16"
            f" (their addresses span {network})",
            file=file,
            key_path="hosts",
            value=", ".join(str(a) for a in addresses),
            allowed="addresses in one private /24, such as 10.231.0.11-14",
        )
    gateway = network.network_address + 1
    for host, address in zip(hosts, addresses, strict=True):
        if address in (network.network_address, gateway, network.broadcast_address):
            raise ConfigError(
                f"{address} is the network, gateway or broadcast address of {network}",
                file=file,
                key_path=f"hosts.{host.name}.address",
                value=host.address,
                allowed=f"an address in {network} other than {network.network_address},"
                f" {gateway} (this machine) and {network.broadcast_address}",
            )
    seen: dict[ipaddress.IPv4Address, str] = {}
    for host, address in zip(hosts, addresses, strict=True):
        if address in seen:
            raise ConfigError(
                f"hosts {seen[address]!r} and {host.name!r} have the same address",
                file=file,
                key_path=f"hosts.{host.name}.address",
                value=host.address,
            )
        seen[address] = host.name
    return NetworkPlan(
        name=f"unkai-{env.name}",
        subnet=str(network),
        gateway=str(gateway),
        labels=_labels(project, env.name),
    )


def plan_fleet(
    env: Environment,
    *,
    project: str,
    image: HostImagePlan,
    authorized_keys: Sequence[str],
    kvm: bool,
    file: str | None = None,
) -> FleetPlan:
    """The containers, volumes and network of ``env``'s hosts; nothing runs.

    Args:
        env: The environment (every host ``connection: ssh``, ``ssh_user: root``, an
            IPv4 address).
        project: The project root (ownership label, part of each host UUID).
        image: The host image (:func:`plan_host_image`).
        authorized_keys: Public keys root accepts (the operator's).
        kvm: Whether to pass ``/dev/kvm`` (the machine has it); VMs still use TCG unless
            unkai's KVM probe passed.
        file: The environment's file, for errors.

    Raises:
        ConfigError: A host cannot be simulated (see :func:`plan_network`).
    """
    network = plan_network(env, project=project, file=file)
    devices = ("/dev/net/tun:/dev/net/tun:rwm", *(("/dev/kvm:/dev/kvm:rwm",) if kvm else ()))
    keys = "\n".join(k.strip() for k in authorized_keys if k.strip())
    if not keys:
        raise ConfigError("no public key to authorize on the hosts", key_path="authorized_keys")
    hosts = []
    for host in _simulated_hosts(env, file):
        uid = host_uuid(project=project, environment=env.name, host=host.name)
        variables = {"UNKAI_AUTHORIZED_KEYS": keys, "UNKAI_HOST_UUID": uid}
        container = f"unkai-{env.name}-{host.name}"
        volume = f"{container}-libvirt"
        config = {
            "image": image.reference,
            "hostname": host.name,
            "address": host.address,
            "network": network.name,
            "subnet": network.subnet,
            "volume": volume,
            "environment": variables,
            "devices": devices,
            "caps": [CAP_ADD, CAP_DROP, SECURITY_OPT, dict(SYSTEM_PATHS)],
        }
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
        labels = {
            **_labels(project, env.name),
            HOST_LABEL: host.name,
            ADDRESS_LABEL: host.address,
            SPEC_LABEL: digest,
        }
        hosts.append(
            HostPlan(
                host=host.name,
                zone=host.zone,
                container=container,
                hostname=host.name,
                address=host.address,
                ssh_user="root",
                image=image.reference,
                network=network.name,
                volume=volume,
                host_uuid=uid,
                environment=variables,
                devices=devices,
                labels=labels,
            )
        )
    return FleetPlan(
        project=project,
        environment=env.name,
        image=image,
        network=network,
        hosts=tuple(hosts),
    )


# --- what exists, and the steps from there to the plan -----------------------------------


@dataclass(frozen=True)
class ObservedContainer:
    """A container as the engine has it.

    Attributes:
        name: Its name.
        state: ``running``, ``exited``, ``created``, …
        labels: Its labels.
    """

    name: str
    state: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ObservedNetwork:
    """A network as the engine has it.

    Attributes:
        name: Its name.
        subnet: Its first IPAM subnet, if any.
        labels: Its labels.
    """

    name: str
    subnet: str | None
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Observed:
    """What exists of a fleet: objects of its names, and objects carrying its labels.

    Attributes:
        containers: By name.
        volumes: Labels by volume name.
        network: The network named like the plan's, if any.
    """

    containers: Mapping[str, ObservedContainer] = field(default_factory=dict)
    volumes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    network: ObservedNetwork | None = None


Action = Literal[
    "remove-container",
    "remove-volume",
    "remove-network",
    "create-network",
    "create-volume",
    "create-container",
    "start-container",
]


@dataclass(frozen=True)
class Step:
    """One change to the engine's objects.

    Attributes:
        action: What is done.
        target: The object's name.
        reason: Why, in a phrase.
    """

    action: Action
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.action.replace('-', ' ')} {self.target}: {self.reason}"


def _owned(labels: Mapping[str, str], project: str, environment: str) -> bool:
    return labels.get(PROJECT_LABEL) == project and labels.get(ENVIRONMENT_LABEL) == environment


def _foreign(kind: str, name: str, labels: Mapping[str, str], plan: FleetPlan) -> DriverError:
    owner = labels.get(PROJECT_LABEL)
    env = labels.get(ENVIRONMENT_LABEL)
    if owner is None:
        whose = "was not made by unkai"
    else:
        whose = f"belongs to environment {env!r} of the project at {owner}"
    return DriverError(
        f"the {kind} {name} {whose}; unkai does not touch it. Remove it (or run"
        f" `unkai hosts down` in its project) before starting the hosts of"
        f" {plan.environment!r} here"
    )


def diff_fleet(plan: FleetPlan, observed: Observed) -> tuple[Step, ...]:
    """The steps that turn ``observed`` into ``plan``; empty when nothing needs to change.

    Pure. Order: stale containers go first (a host no longer in the environment, with
    its volume; a container whose configuration changed; every container when the
    network must be re-made), then the network, volumes and containers are created and
    stopped containers started. A volume is never removed for a re-creation: the
    host's storage pool survives it.

    Raises:
        DriverError: A container, volume or network of a planned name exists and is not
            labelled with this project and environment.
    """
    project, env = plan.project, plan.environment
    planned = {h.container: h for h in plan.hosts}
    net = observed.network
    if net is not None and not _owned(net.labels, project, env):
        raise _foreign("network", net.name, net.labels, plan)
    for name, c in observed.containers.items():
        if name in planned and not _owned(c.labels, project, env):
            raise _foreign("container", name, c.labels, plan)
    volumes = {h.volume for h in plan.hosts}
    for name, labels in observed.volumes.items():
        if name in volumes and not _owned(labels, project, env):
            raise _foreign("volume", name, labels, plan)

    remake_network = net is not None and net.subnet != plan.network.subnet
    removals: list[Step] = []
    creations: list[Step] = []
    starts: list[Step] = []
    for name, c in sorted(observed.containers.items()):
        if not _owned(c.labels, project, env) or name in planned:
            continue
        gone = f"host {c.labels.get(HOST_LABEL, name)} is no longer in {env}"
        removals.append(Step("remove-container", name, gone))
        volume = f"{name}-libvirt"
        if volume in observed.volumes and _owned(observed.volumes[volume], project, env):
            removals.append(Step("remove-volume", volume, gone))
    if remake_network:
        assert net is not None
        removals += [
            Step("remove-container", name, f"its network moves to {plan.network.subnet}")
            for name in sorted(planned)
            if name in observed.containers
        ]
        removals.append(
            Step(
                "remove-network",
                net.name,
                f"its subnet is {net.subnet}, the hosts' addresses need {plan.network.subnet}",
            )
        )
    if net is None or remake_network:
        creations.append(Step("create-network", plan.network.name, f"bridge {plan.network.subnet}"))
    for host in plan.hosts:
        if host.volume not in observed.volumes:
            creations.append(Step("create-volume", host.volume, f"{LIBVIRT_DIR} of {host.host}"))
        current = observed.containers.get(host.container)
        if current is None or remake_network:
            creations.append(Step("create-container", host.container, f"host {host.host}"))
        elif current.labels.get(SPEC_LABEL) != host.spec_digest:
            removals.append(Step("remove-container", host.container, "its configuration changed"))
            creations.append(
                Step("create-container", host.container, f"host {host.host}, re-created")
            )
        elif current.state in ("exited", "created"):
            starts.append(Step("start-container", host.container, f"it is {current.state}"))
        elif current.state != "running":
            removals.append(Step("remove-container", host.container, f"it is {current.state}"))
            creations.append(
                Step("create-container", host.container, f"host {host.host}, re-created")
            )
    return (*removals, *creations, *starts)


# --- known_hosts ---------------------------------------------------------------------------


def _line_hosts(line: str) -> set[str]:
    fields = line.split()
    if not fields or line.lstrip().startswith("#"):
        return set()
    names = fields[1] if fields[0].startswith("@") and len(fields) > 1 else fields[0]
    out = set()
    for name in names.split(","):
        if name.startswith("[") and "]:" in name:
            name = name[1 : name.index("]:")]
        out.add(name)
    return out


def merge_known_hosts(text: str, keys: Mapping[str, str]) -> str:
    r"""``text`` (a known_hosts file) with the lines of each address replaced by its key.

    Pure. Lines naming another address, comments and hashed entries stay as they are;
    every line naming an address of ``keys`` goes, and ``<address> <key>`` is appended.

    Args:
        text: The current file (may be empty).
        keys: Address → public key (``ssh-ed25519 AAAA…``; a comment is dropped).

    >>> merge_known_hosts("10.0.0.5 ssh-ed25519 OLD\n10.0.0.6 ssh-rsa X\n",
    ...                   {"10.0.0.5": "ssh-ed25519 NEW host"})
    '10.0.0.6 ssh-rsa X\n10.0.0.5 ssh-ed25519 NEW\n'
    """
    kept = drop_known_hosts(text, keys.keys()).splitlines()
    for address, key in sorted(keys.items()):
        kind, body = key.split()[:2]
        kept.append(f"{address} {kind} {body}")
    return "".join(f"{line}\n" for line in kept)


def drop_known_hosts(text: str, addresses: Iterable[str]) -> str:
    """``text`` without the lines that name any of ``addresses``. Pure."""
    gone = set(addresses)
    lines = [line for line in text.splitlines() if not (_line_hosts(line) & gone)]
    return "".join(f"{line}\n" for line in lines)


def probe_argv(
    *, user: str, address: str, identity: Path, known_hosts: Path, connect_timeout: int = 5
) -> list[str]:
    """The check that a host is up: SSH with host-key checking, then ``virsh version``.

    Pure. OpenSSH runs without the user's configuration (``-F none``) and with the
    operator key only; the host key must be in ``known_hosts``
    (``StrictHostKeyChecking=yes``), never trusted on first use.
    """
    return [
        "ssh",
        "-F",
        "none",
        "-i",
        str(identity),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={connect_timeout}",
        "-o",
        "LogLevel=ERROR",
        f"{user}@{address}",
        "virsh",
        "-c",
        "qemu:///system",
        "version",
    ]


# --- applying ------------------------------------------------------------------------------


def ensure_host_image(
    client: Any, plan: HostImagePlan, *, cache_root: Path, say: Progress = _ignore
) -> str:
    """Make the host image exist on the engine; return its id.

    Side effects: builds the tree into the cache when it is not there (mmdebstrap,
    about a minute), and imports it (about 15 s) when no image carries its digest.
    Serialised by a lock in the cache, so concurrent runs build and import once.

    Raises:
        DriverError: mmdebstrap failed, or the engine refused the import.
    """
    with file_lock(cache_root / "locks" / "kvm-host-image.lock"):
        current = engine.image_state(client, plan.reference)
        if current is not None and current.labels.get(engine.ROOTFS_DIGEST_LABEL) == (
            plan.spec.digest()
        ):
            return current.id
        built = build_rootfs(plan.spec, cache_root, say=say)
        if built.build_seconds:
            say(f"built the host tree {built.digest[:12]} in {built.build_seconds:.0f} s")
        return engine.ensure_base_image(
            client, built, ref=plan.ref, changes=_IMPORT_CHANGES, say=say
        )


def _api_error(what: str, err: docker.errors.APIError) -> DriverError:
    return DriverError(f"cannot {what}: {err.explanation or err}")


def observe(client: Any, plan: FleetPlan) -> Observed:
    """What exists of ``plan``: containers and volumes of its names or labels, its network.

    Raises:
        DriverError: The engine failed.
    """
    api = client.api
    names = {h.container for h in plan.hosts}
    owned = [f"{PROJECT_LABEL}={plan.project}", f"{ENVIRONMENT_LABEL}={plan.environment}"]
    try:
        found = {c["Id"]: c for c in api.containers(all=True, filters={"label": owned})}
        for name in names:
            for c in api.containers(all=True, filters={"name": f"^/{name}$"}):
                found[c["Id"]] = c
        containers = {}
        for c in found.values():
            name = c["Names"][0].lstrip("/")
            containers[name] = ObservedContainer(name, str(c["State"]), c.get("Labels") or {})
        volumes: dict[str, Mapping[str, str]] = {}
        listed = (api.volumes(filters={"label": owned}) or {}).get("Volumes") or []
        for v in listed:
            volumes[v["Name"]] = v.get("Labels") or {}
        for h in plan.hosts:
            if h.volume not in volumes:
                with suppress(docker.errors.NotFound):
                    volumes[h.volume] = api.inspect_volume(h.volume).get("Labels") or {}
        network = None
        for n in api.networks(names=[plan.network.name]):
            if n["Name"] != plan.network.name:
                continue
            configs = (n.get("IPAM") or {}).get("Config") or []
            subnet = configs[0].get("Subnet") if configs else None
            network = ObservedNetwork(n["Name"], subnet, n.get("Labels") or {})
    except docker.errors.APIError as err:
        raise _api_error(f"list the objects of environment {plan.environment}", err) from err
    return Observed(containers=containers, volumes=volumes, network=network)


def _apply(client: Any, plan: FleetPlan, step: Step) -> None:
    api = client.api
    try:
        if step.action == "remove-container":
            api.remove_container(step.target, force=True)
        elif step.action == "remove-volume":
            api.remove_volume(step.target, force=True)
        elif step.action == "remove-network":
            api.remove_network(step.target)
        elif step.action == "create-network":
            net = plan.network
            pool = docker.types.IPAMPool(subnet=net.subnet, gateway=net.gateway)
            api.create_network(
                net.name,
                driver="bridge",
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                labels=dict(net.labels),
                check_duplicate=True,
            )
        elif step.action == "create-volume":
            host = next(h for h in plan.hosts if h.volume == step.target)
            api.create_volume(host.volume, driver="local", labels=host.volume_labels())
        elif step.action == "create-container":
            host = next(h for h in plan.hosts if h.container == step.target)
            _create_container(api, host)
        elif step.action == "start-container":
            api.start(step.target)
    except docker.errors.APIError as err:
        raise _api_error(str(step), err) from err


def _create_container(api: Any, host: HostPlan) -> None:
    mount = docker.types.Mount(target=LIBVIRT_DIR, source=host.volume, type="volume")
    host_config = api.create_host_config(mounts=[mount], **host.host_config_arguments())
    host_config.update({key: list(paths) for key, paths in SYSTEM_PATHS.items()})
    endpoint = api.create_endpoint_config(ipv4_address=host.address)
    api.create_container(
        image=host.image,
        name=host.container,
        hostname=host.hostname,
        labels=dict(host.labels),
        environment=dict(host.environment),
        host_config=host_config,
        networking_config=api.create_networking_config({host.network: endpoint}),
        detach=True,
        use_config_proxy=False,
    )
    api.start(host.container)


def _exec(api: Any, container: str, argv: Sequence[str]) -> tuple[int, str]:
    exec_id = api.exec_create(container, list(argv), stdout=True, stderr=True)["Id"]
    output = api.exec_start(exec_id)
    code = api.exec_inspect(exec_id).get("ExitCode")
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
    return int(code if code is not None else -1), text


def _logs(api: Any, container: str) -> str:
    try:
        data = api.logs(container, tail=20)
    except docker.errors.APIError:
        return ""
    return data.decode("utf-8", "replace").strip() if isinstance(data, bytes) else str(data)


def _host_key(api: Any, host: HostPlan, deadline: float) -> str:
    """The host's public host key, read through the engine once its init made it."""
    while True:
        try:
            state = api.inspect_container(host.container)["State"]
            if not state.get("Running"):
                raise DriverError(
                    f"host {host.host} ({host.container}) stopped"
                    f" (exit status {state.get('ExitCode')}): {_logs(api, host.container)}"
                )
            code, text = _exec(api, host.container, ["cat", f"{HOST_KEY}.pub"])
        except docker.errors.APIError as err:
            raise _api_error(f"read the host key of {host.host}", err) from err
        if code == 0 and text.strip():
            return " ".join(text.split()[:2])
        if time.monotonic() > deadline:
            raise DriverError(
                f"host {host.host} made no SSH host key in time: {_logs(api, host.container)}"
            )
        time.sleep(0.2)


def _record_host_keys(known_hosts: Path, keys: Mapping[str, str]) -> bool:
    """Write ``keys`` into ``known_hosts``; whether the file changed."""
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with file_lock(known_hosts.with_name(f".{known_hosts.name}.lock")):
        old = known_hosts.read_text(encoding="utf-8") if known_hosts.exists() else ""
        new = merge_known_hosts(old, keys)
        if new == old:
            return False
        atomic_write(known_hosts, new, mode=0o644)
        return True


def _forget_host_keys(known_hosts: Path, addresses: Sequence[str]) -> bool:
    if not known_hosts.exists() or not addresses:
        return False
    with file_lock(known_hosts.with_name(f".{known_hosts.name}.lock")):
        old = known_hosts.read_text(encoding="utf-8")
        new = drop_known_hosts(old, addresses)
        if new == old:
            return False
        atomic_write(known_hosts, new, mode=0o644)
        return True


def _answers(argv: Sequence[str], timeout: float) -> tuple[bool, str]:
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"no answer within {timeout:.0f} s"
    except OSError as err:
        raise DriverError(f"cannot run ssh: {err}") from err
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()


def _wait_answering(host: HostPlan, *, identity: Path, known_hosts: Path, deadline: float) -> None:
    argv = probe_argv(
        user=host.ssh_user, address=host.address, identity=identity, known_hosts=known_hosts
    )
    while True:
        ok, output = _answers(argv, timeout=15)
        if ok:
            return
        if time.monotonic() > deadline:
            raise DriverError(
                f"host {host.host} ({host.address}) does not answer over SSH with libvirt:"
                f" {output or 'no output'}"
            )
        time.sleep(0.5)


@dataclass(frozen=True)
class HostStatus:
    """A host as ``hosts list`` shows it.

    Attributes:
        host: Its name.
        address: Its address.
        zone: Its zone.
        container: Its container's state (``running``, ``exited``, ``missing``).
        libvirt: Whether libvirt answered over SSH (None: not asked, the container is
            not running).
    """

    host: str
    address: str
    zone: str
    container: str
    libvirt: bool | None


@dataclass(frozen=True)
class UpReport:
    """What :func:`up` did.

    Attributes:
        environment: The environment.
        image: The host image reference.
        steps: The changes made (empty: nothing changed).
        known_hosts_changed: Whether a host key was added or replaced.
        hosts: Every host, all running and answering.
        seconds: How long it took.
    """

    environment: str
    image: str
    steps: tuple[Step, ...]
    known_hosts_changed: bool
    hosts: tuple[HostStatus, ...]
    seconds: float

    @property
    def changed(self) -> bool:
        """Whether anything changed (an object, or ``known_hosts``)."""
        return bool(self.steps) or self.known_hosts_changed


def up(
    client: Any,
    env: Environment,
    *,
    project: Path,
    cache_root: Path,
    identity: Path,
    known_hosts: Path,
    file: str | None = None,
    kvm: bool | None = None,
    timeout: float = 180.0,
    say: Progress = _ignore,
) -> UpReport:
    """Start the hosts of ``env`` (idempotent): image, network, volumes, containers, trust.

    Side effects: may build and import the host image; creates, re-creates or starts
    what :func:`diff_fleet` says; replaces each host's line in ``known_hosts``; waits
    until every host answers ``virsh version`` over SSH. With every host running as
    planned it changes nothing (and ``say`` says so).

    Args:
        client: A Docker client (:func:`unkai.drivers.docker.connect`).
        env: The environment.
        project: The project root (ownership labels).
        cache_root: unkai's cache (the host tree).
        identity: The operator's private key; its ``.pub`` is authorized for root.
        known_hosts: The project's ``known_hosts``.
        file: The environment's file, for errors.
        kvm: Whether to pass ``/dev/kvm`` (default: when the machine has it).
        timeout: Seconds the hosts may take to answer.
        say: Receives a line for each step.

    Raises:
        ConfigError: A host cannot be simulated.
        DriverError: The engine failed, an object of a planned name belongs to someone
            else, or a host did not answer in time.
    """
    start = time.monotonic()
    public = identity.with_suffix(".pub").read_text(encoding="utf-8").strip()
    image = plan_host_image(cache_root=cache_root)
    plan = plan_fleet(
        env,
        project=str(project),
        image=image,
        authorized_keys=[public],
        kvm=Path("/dev/kvm").exists() if kvm is None else kvm,
        file=file,
    )
    steps = diff_fleet(plan, observe(client, plan))
    if any(s.action == "create-container" for s in steps):
        ensure_host_image(client, image, cache_root=cache_root, say=say)
    for step in steps:
        say(str(step))
        _apply(client, plan, step)
    if not steps:
        say(f"nothing to change: the {len(plan.hosts)} hosts of {env.name} are running")
    deadline = time.monotonic() + timeout
    keys = {h.address: _host_key(client.api, h, deadline) for h in plan.hosts}
    changed = _record_host_keys(known_hosts, keys)
    if changed:
        say(f"recorded the hosts' SSH host keys in {known_hosts}")
    # In parallel: each wait is mostly an SSH handshake, and hosts start independently.
    with ThreadPoolExecutor(max_workers=min(8, len(plan.hosts))) as pool:
        waits = {
            pool.submit(
                _wait_answering, h, identity=identity, known_hosts=known_hosts, deadline=deadline
            ): h
            for h in plan.hosts
        }
        for done in as_completed(waits):
            done.result()
            host = waits[done]
            say(f"{host.host} ({host.address}) answers: sshd and libvirtd")
    return UpReport(
        environment=env.name,
        image=image.reference,
        steps=steps,
        known_hosts_changed=changed,
        hosts=tuple(HostStatus(h.host, h.address, h.zone, "running", True) for h in plan.hosts),
        seconds=round(time.monotonic() - start, 1),
    )


def down(
    client: Any,
    environment: str,
    *,
    project: Path,
    known_hosts: Path | None = None,
    say: Progress = _ignore,
) -> tuple[str, ...]:
    """Remove the hosts of ``environment``: containers, volumes, network; forget their keys.

    Only objects labelled with this project and environment go. The host image stays
    (cached for the next ``up``).

    Side effects: removes those containers (killed), volumes and network; drops the
    lines of their addresses from ``known_hosts`` when given.

    Returns:
        The names of what was removed (empty: there was nothing).

    Raises:
        DriverError: The engine failed.
    """
    api = client.api
    owned = [f"{PROJECT_LABEL}={project}", f"{ENVIRONMENT_LABEL}={environment}"]
    removed: list[str] = []
    addresses: list[str] = []
    try:
        for c in sorted(
            api.containers(all=True, filters={"label": owned}), key=lambda c: c["Names"][0]
        ):
            name = c["Names"][0].lstrip("/")
            say(f"remove container {name}")
            api.remove_container(c["Id"], force=True)
            removed.append(name)
            address = (c.get("Labels") or {}).get(ADDRESS_LABEL)
            if address:
                addresses.append(address)
        volumes = (api.volumes(filters={"label": owned}) or {}).get("Volumes") or []
        for v in sorted(volumes, key=lambda v: v["Name"]):
            say(f"remove volume {v['Name']}")
            api.remove_volume(v["Name"], force=True)
            removed.append(v["Name"])
        for n in sorted(api.networks(filters={"label": owned}), key=lambda n: n["Name"]):
            say(f"remove network {n['Name']}")
            api.remove_network(n["Id"])
            removed.append(n["Name"])
    except docker.errors.APIError as err:
        raise _api_error(f"remove the hosts of environment {environment}", err) from err
    if known_hosts is not None and _forget_host_keys(known_hosts, addresses):
        say(f"forgot the host keys of {', '.join(addresses)} in {known_hosts}")
    if not removed:
        say(f"nothing to remove: environment {environment} has no hosts here")
    return tuple(removed)


def status(
    client: Any,
    env: Environment,
    *,
    project: Path,
    identity: Path,
    known_hosts: Path,
    file: str | None = None,
) -> tuple[HostStatus, ...]:
    """Each host of ``env``: its container's state and whether libvirt answers over SSH.

    Side effects: one SSH connection per running host (``virsh version``).

    Raises:
        ConfigError: A host cannot be simulated.
        DriverError: The engine failed.
    """
    hosts = _simulated_hosts(env, file)
    api = client.api
    owned = [f"{PROJECT_LABEL}={project}", f"{ENVIRONMENT_LABEL}={env.name}"]
    try:
        found = {
            (c.get("Labels") or {}).get(HOST_LABEL): str(c["State"])
            for c in api.containers(all=True, filters={"label": owned})
        }
    except docker.errors.APIError as err:
        raise _api_error(f"list the hosts of environment {env.name}", err) from err

    def row(host: Host) -> HostStatus:
        state = found.get(host.name, "missing")
        answering: bool | None = None
        if state == "running":
            argv = probe_argv(
                user=host.ssh_user or "root",
                address=host.address,
                identity=identity,
                known_hosts=known_hosts,
                connect_timeout=3,
            )
            answering = _answers(argv, timeout=10)[0]
        return HostStatus(host.name, host.address, host.zone, state, answering)

    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        return tuple(pool.map(row, hosts))
