"""Where VMs run: zones, pools of hypervisor hosts, and the hosts themselves."""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from unkai.model._base import DNS_NAME, DnsLabel, Labels, UnkaiModel

__all__ = ["Host", "HostPool", "Zone", "default_libvirt_uri"]

_HOSTNAME = re.compile(DNS_NAME.pattern, re.IGNORECASE | re.ASCII)  # DNS ignores case
_POSIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class Zone(UnkaiModel):
    """A failure domain: hosts in one zone share power, network or a rack.

    Placement spreads instance groups across hosts and can pin instances to a zone.
    """

    name: DnsLabel = Field(description="Zone name, such as ``zone-a``.")
    region: DnsLabel | None = Field(
        default=None, description="The region the zone belongs to, if regions are used."
    )


class HostPool(UnkaiModel):
    """A set of hosts in one zone that share overcommit ratios and a hypervisor reserve.

    The capacity placement may hand out on a host is given by :meth:`schedulable_cpus`,
    :meth:`schedulable_memory_mb` and :meth:`schedulable_disk_gb`.
    """

    name: DnsLabel = Field(description="Pool name, such as ``general``.")
    zone: DnsLabel = Field(description="The zone every host of the pool is in.")
    cpu_overcommit: float = Field(
        default=4.0, ge=1.0, description="vCPUs scheduled per physical CPU (≥ 1)."
    )
    memory_overcommit: float = Field(
        default=1.0, ge=1.0, description="Guest memory scheduled per MiB of host memory (≥ 1)."
    )
    reserved_memory_mb: int = Field(
        default=1024, ge=0, description="Host memory kept for the hypervisor itself, in MiB."
    )
    labels: Labels = Field(default_factory=dict, description="Labels of the pool.")

    def _check_member(self, host: Host) -> None:
        if host.pool != self.name:
            raise ValueError(f"host {host.name!r} is in pool {host.pool!r}, not {self.name!r}")

    def schedulable_cpus(self, host: Host) -> int:
        """The vCPUs placement may allocate on ``host``: its CPUs times the CPU overcommit.

        Args:
            host: A host of this pool.

        Returns:
            ``floor(host.cpus * cpu_overcommit)``.

        Raises:
            ValueError: ``host`` is not in this pool.
        """
        self._check_member(host)
        return math.floor(host.cpus * self.cpu_overcommit)

    def schedulable_memory_mb(self, host: Host) -> int:
        """Guest memory placement may allocate on ``host``, in MiB.

        The hypervisor reserve is taken off first, then the overcommit ratio applies.

        Args:
            host: A host of this pool.

        Returns:
            ``floor(max(0, host.memory_mb - reserved_memory_mb) * memory_overcommit)``.

        Raises:
            ValueError: ``host`` is not in this pool.
        """
        self._check_member(host)
        return math.floor(max(0, host.memory_mb - self.reserved_memory_mb) * self.memory_overcommit)

    def schedulable_disk_gb(self, host: Host) -> int:
        """Disk placement may allocate on ``host``, in GiB: all of it, never overcommitted.

        Args:
            host: A host of this pool.

        Returns:
            ``host.disk_gb``.

        Raises:
            ValueError: ``host`` is not in this pool.
        """
        self._check_member(host)
        return host.disk_gb


def default_libvirt_uri(*, connection: str, address: str | None, ssh_user: str | None) -> str:
    """The libvirt URI of a host reached by ``connection``.

    ``qemu:///system`` for ``local``; ``qemu+ssh://[user@]address/system`` for ``ssh``
    (an IPv6 address in brackets).
    """
    if connection == "local":
        return "qemu:///system"
    user = f"{ssh_user}@" if ssh_user else ""
    host = f"[{address}]" if address and ":" in address else address
    return f"qemu+ssh://{user}{host}/system"


class Host(UnkaiModel):
    """A KVM hypervisor host, configured by Ansible and driven through libvirt.

    ``libvirt_uri`` defaults to ``qemu:///system`` for ``connection: local`` and to
    ``qemu+ssh://{ssh_user}@{address}/system`` for ``connection: ssh``; the default is
    filled in at validation, so it appears in dumps.
    """

    name: DnsLabel = Field(description="Host name, such as ``kvm-1``.")
    address: str = Field(description="IP address or DNS name Ansible and libvirt reach.")
    connection: Literal["local", "ssh"] = Field(
        default="ssh", description="``local`` for this machine, ``ssh`` for a remote host."
    )
    ssh_user: str | None = Field(
        default=None, description="User Ansible and libvirt log in as; required for ssh."
    )
    libvirt_uri: str = Field(default="", description="libvirt connection URI (derived).")
    cpus: int = Field(ge=1, description="Physical CPU threads.")
    memory_mb: int = Field(ge=1, description="Physical memory in MiB.")
    disk_gb: int = Field(ge=1, description="Disk for VM images and volumes, in GiB.")
    cpu_vendor: Literal["intel", "amd"] = Field(description="CPU vendor (host-model CPU).")
    pool: DnsLabel = Field(description="Name of the host pool the host belongs to.")
    zone: DnsLabel = Field(description="Name of the zone; must be the pool's zone.")
    labels: Labels = Field(default_factory=dict, description="Labels placement can filter on.")

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOSTNAME.fullmatch(value):
                raise ValueError(
                    f"{value!r} is not an address; allowed: an IPv4/IPv6 address or a DNS name"
                ) from None
        return value

    @field_validator("ssh_user")
    @classmethod
    def _check_user(cls, value: str | None) -> str | None:
        if value is not None and not _POSIX_USER.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a user name; allowed: up to 32 lowercase letters, digits,"
                " '_' and '-', starting with a letter or '_'"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _derive_libvirt_uri(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("libvirt_uri"):
            return data
        connection = data.get("connection", "ssh")
        user, address = data.get("ssh_user"), data.get("address")
        if connection != "local" and (not isinstance(user, str) or not isinstance(address, str)):
            return data  # the field and model validators report what is missing
        uri = default_libvirt_uri(connection=connection, address=address, ssh_user=user)
        return {**data, "libvirt_uri": uri}

    @model_validator(mode="after")
    def _check_connection(self) -> Host:
        if self.connection == "ssh" and self.ssh_user is None:
            raise ValueError("ssh_user is required when connection is 'ssh'")
        if not self.libvirt_uri:
            raise ValueError("libvirt_uri must not be empty")
        return self
