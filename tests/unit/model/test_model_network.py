from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from unkai.model import Network


def net(**fields: Any) -> Network:
    return Network.model_validate({"name": "default", **fields})


def test_defaults_give_gateway_first_and_dhcp_in_upper_half() -> None:
    n = net(cidr="192.168.50.0/24")
    assert n.mode == "nat"
    assert (n.gateway, n.dhcp_start, n.dhcp_end) == (
        "192.168.50.1",
        "192.168.50.128",
        "192.168.50.254",
    )
    assert str(n.network) == "192.168.50.0/24"


def test_smallest_network_still_has_a_gateway_and_one_lease() -> None:
    n = net(cidr="10.0.0.0/30")
    assert (n.gateway, n.dhcp_start, n.dhcp_end) == ("10.0.0.1", "10.0.0.2", "10.0.0.2")


def test_explicit_range_is_kept() -> None:
    n = net(cidr="10.0.0.0/16", gateway="10.0.0.1", dhcp_start="10.0.10.0", dhcp_end="10.0.20.0")
    assert (n.dhcp_start, n.dhcp_end) == ("10.0.10.0", "10.0.20.0")
    assert Network.model_validate(n.model_dump(mode="json")) == n


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"cidr": "10.0.0.1/24"}, "has host bits set; did you mean '10.0.0.0/24'?"),
        ({"cidr": "10.0.0.0/31"}, "prefix of at most /30"),
        ({"cidr": "10.0.0.0"}, "lacks a prefix length"),
        ({"cidr": "10.0.0.0/33"}, "is not an IPv4 network"),
        ({"cidr": "fd00::/64"}, "is not an IPv4 network"),
        ({"cidr": "banana"}, "is not an IPv4 network"),
        ({"cidr": "10.0.0.0/24", "dhcp_start": "10.0.1.5"}, "not a usable address of 10.0.0.0/24"),
        ({"cidr": "10.0.0.0/24", "dhcp_end": "10.0.0.255"}, "dhcp_end 10.0.0.255 is not a usable"),
        ({"cidr": "10.0.0.0/24", "gateway": "10.0.0.0"}, "gateway 10.0.0.0 is not a usable"),
        (
            {"cidr": "10.0.0.0/24", "dhcp_start": "10.0.0.200", "dhcp_end": "10.0.0.100"},
            "dhcp_start 10.0.0.200 is after dhcp_end 10.0.0.100",
        ),
        (
            {"cidr": "10.0.0.0/24", "gateway": "10.0.0.200"},
            "the DHCP range 10.0.0.128..10.0.0.254 contains the gateway 10.0.0.200",
        ),
        ({"cidr": "10.0.0.0/24", "dhcp_start": "10.0.0.x"}, "is not an IPv4 address"),
        ({"mode": "nat"}, "cidr is required when mode is 'nat'"),
        ({"mode": "isolated"}, "cidr is required when mode is 'isolated'"),
        ({"mode": "bridged"}, "bridge is required when mode is 'bridged'"),
        ({"mode": "user", "bridge": "br0"}, "bridge is not allowed when mode is 'user'"),
        ({"mode": "user", "dhcp_start": "10.0.2.15"}, "dhcp_start needs cidr"),
        (
            {"mode": "bridged", "bridge": "br0", "cidr": "10.0.0.0/24", "dhcp_start": "10.0.0.9"},
            "not allowed when mode is 'bridged'",
        ),
        ({"mode": "bridged", "bridge": "a-very-long-bridge-name"}, "is not an interface name"),
        ({"cidr": "10.0.0.0/24", "dns_domain": "Not A Domain"}, "is not a DNS domain"),
        ({"cidr": "10.0.0.0/24", "mode": "vpn"}, "'nat', 'isolated', 'bridged' or 'user'"),
    ],
)
def test_bad_addressing_is_explained(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        net(**fields)
    assert fragment in str(info.value)


def test_user_mode_needs_no_cidr() -> None:
    n = net(mode="user")
    assert n.cidr is None and n.network is None and n.gateway is None


def test_user_mode_with_cidr_derives_dhcp() -> None:
    n = net(mode="user", cidr="10.0.2.0/24")
    assert (n.gateway, n.dhcp_start) == ("10.0.2.1", "10.0.2.128")


def test_bridged_mode_leaves_addressing_to_the_lan() -> None:
    n = net(mode="bridged", bridge="br0", cidr="192.168.1.0/24", gateway="192.168.1.254")
    assert (n.gateway, n.dhcp_start, n.dhcp_end) == ("192.168.1.254", None, None)
    with pytest.raises(
        ValidationError, match=re.escape("gateway 10.0.0.1 is outside 192.168.1.0/24")
    ):
        net(mode="bridged", bridge="br0", cidr="192.168.1.0/24", gateway="10.0.0.1")


def test_nat_may_name_its_bridge() -> None:
    assert net(cidr="10.0.0.0/24", bridge="virbr7").bridge == "virbr7"
