"""Virtual networks the VMs attach to."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from unkai.model._base import DNS_NAME, DnsLabel, UnkaiModel

__all__ = ["REGISTRY", "USER_NETWORK_HOST_IP", "Network"]

USER_NETWORK_HOST_IP = "10.0.2.2"
"""Where a VM on QEMU user networking (``mode: user``) reaches this machine's loopback:
a node VM reaches the API server and unkai's registry there."""

REGISTRY = "127.0.0.1:5000"
"""unkai's image registry on this machine (``toolchain.registry_daemon``), as image names
say it; a container image with ``registry: 127.0.0.1:5000`` is pushed there."""

_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_MAX_PREFIX = 30  # a gateway and at least one guest address


def _address(value: str, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an IPv4 address") from None


class Network(UnkaiModel):
    """A libvirt virtual network (or QEMU user networking).

    Modes:

    - ``nat``: a libvirt network with DHCP, NAT to the outside; ``cidr`` required.
    - ``isolated``: like ``nat`` without any route out; ``cidr`` required.
    - ``bridged``: guests join an existing host bridge (``bridge`` required); addressing
      is the LAN's, so ``cidr`` is optional and DHCP fields must stay unset.
    - ``user``: QEMU user networking; nothing is reachable from outside except ports
      forwarded to ``127.0.0.1`` on the host. The ``local`` environment uses it so
      nothing leaves loopback. ``cidr`` optional (QEMU's default is used without one).

    When ``cidr`` is set (and the mode is not ``bridged``), ``gateway`` defaults to the
    first address of the network and the DHCP range to the upper half of it
    (``dhcp_start`` = network + size/2, at least network + 2; ``dhcp_end`` = broadcast
    - 1), leaving the lower half for static addresses. The range must lie inside the
    network and must not contain the gateway. Derived values are filled in at validation.
    Only IPv4 is supported for now.
    """

    name: DnsLabel = Field(description="Network name, such as ``default``.")
    mode: Literal["nat", "isolated", "bridged", "user"] = Field(
        default="nat", description="How guests reach the world (see the class docstring)."
    )
    cidr: str | None = Field(
        default=None, description="IPv4 network in CIDR notation, prefix at most /30."
    )
    gateway: str | None = Field(default=None, description="Host-side address (derived).")
    dhcp_start: str | None = Field(default=None, description="First DHCP address (derived).")
    dhcp_end: str | None = Field(default=None, description="Last DHCP address (derived).")
    dns_domain: str | None = Field(
        default=None, description="DNS domain guests get, such as ``internal.example``."
    )
    bridge: str | None = Field(
        default=None,
        description="Host bridge interface: required for bridged, optional for nat/isolated.",
    )

    @field_validator("cidr")
    @classmethod
    def _check_cidr(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            network = ipaddress.IPv4Network(value)
        except ipaddress.NetmaskValueError as err:
            raise ValueError(f"{value!r} is not an IPv4 network: {err}") from None
        except ValueError as err:
            if "has host bits set" in str(err):
                fixed = ipaddress.IPv4Network(value, strict=False)
                raise ValueError(
                    f"{value!r} has host bits set; did you mean {str(fixed)!r}?"
                ) from None
            raise ValueError(f"{value!r} is not an IPv4 network in CIDR notation") from None
        if "/" not in value:
            raise ValueError(f"{value!r} lacks a prefix length; allowed: a.b.c.d/prefix")
        if network.prefixlen > _MAX_PREFIX:
            raise ValueError(f"{value!r} is too small; allowed: a prefix of at most /{_MAX_PREFIX}")
        return str(network)

    @field_validator("dns_domain")
    @classmethod
    def _check_domain(cls, value: str | None) -> str | None:
        if value is not None and not DNS_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a DNS domain; allowed: lowercase dotted labels")
        return value

    @field_validator("bridge")
    @classmethod
    def _check_bridge(cls, value: str | None) -> str | None:
        if value is not None and not _IFNAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an interface name; allowed: 1-15 letters, digits, '_', '.', '-'"
            )
        return value

    @property
    def network(self) -> ipaddress.IPv4Network | None:
        """The parsed ``cidr``, or ``None`` when the network has none."""
        return None if self.cidr is None else ipaddress.IPv4Network(self.cidr)

    @model_validator(mode="after")
    def _check_addressing(self) -> Network:
        if self.mode == "bridged" and self.bridge is None:
            raise ValueError("bridge is required when mode is 'bridged'")
        if self.mode == "user" and self.bridge is not None:
            raise ValueError("bridge is not allowed when mode is 'user'")
        network = self.network
        if network is None:
            if self.mode in ("nat", "isolated"):
                raise ValueError(f"cidr is required when mode is {self.mode!r}")
            for field in ("gateway", "dhcp_start", "dhcp_end"):
                if getattr(self, field) is not None:
                    raise ValueError(f"{field} needs cidr")
            return self
        if self.mode == "bridged":
            if self.dhcp_start is not None or self.dhcp_end is not None:
                raise ValueError(
                    "dhcp_start/dhcp_end are not allowed when mode is 'bridged'"
                    " (the LAN's DHCP server owns addressing)"
                )
            if self.gateway is not None and _address(self.gateway, "gateway") not in network:
                raise ValueError(f"gateway {self.gateway} is outside {network}")
            return self
        self._derive_and_check(network)
        return self

    def _derive_and_check(self, network: ipaddress.IPv4Network) -> None:
        first, last = network.network_address + 1, network.broadcast_address - 1
        gateway = first if self.gateway is None else _address(self.gateway, "gateway")
        start = (
            max(network.network_address + network.num_addresses // 2, first + 1)
            if self.dhcp_start is None
            else _address(self.dhcp_start, "dhcp_start")
        )
        end = last if self.dhcp_end is None else _address(self.dhcp_end, "dhcp_end")
        usable = f"{first}..{last}"
        for what, address in (("gateway", gateway), ("dhcp_start", start), ("dhcp_end", end)):
            if not first <= address <= last:
                raise ValueError(
                    f"{what} {address} is not a usable address of {network}; allowed: {usable}"
                )
        if start > end:
            raise ValueError(f"dhcp_start {start} is after dhcp_end {end}")
        if start <= gateway <= end:
            raise ValueError(f"the DHCP range {start}..{end} contains the gateway {gateway}")
        # Frozen model: derived defaults are written once, during validation.
        object.__setattr__(self, "gateway", str(gateway))
        object.__setattr__(self, "dhcp_start", str(start))
        object.__setattr__(self, "dhcp_end", str(end))
