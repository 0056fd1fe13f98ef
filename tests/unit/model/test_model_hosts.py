from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from unkai.model import Host, HostPool

BASE: dict[str, Any] = {
    "name": "kvm-1",
    "cpus": 8,
    "memory_mb": 16384,
    "disk_gb": 200,
    "cpu_vendor": "intel",
    "pool": "general",
    "zone": "zone-a",
}


def test_local_host_uses_the_system_uri() -> None:
    host = Host(**BASE, address="127.0.0.1", connection="local")
    assert host.libvirt_uri == "qemu:///system"
    assert host.ssh_user is None


def test_ssh_host_derives_a_qemu_ssh_uri() -> None:
    host = Host(**BASE, address="kvm-1.example", ssh_user="ops")
    assert host.connection == "ssh"
    assert host.libvirt_uri == "qemu+ssh://ops@kvm-1.example/system"


def test_ipv6_address_is_bracketed_in_the_uri() -> None:
    host = Host(**BASE, address="fd00::5", ssh_user="ops")
    assert host.libvirt_uri == "qemu+ssh://ops@[fd00::5]/system"


def test_explicit_uri_is_kept_and_survives_a_round_trip() -> None:
    host = Host(
        **BASE, address="10.0.0.5", ssh_user="ops", libvirt_uri="qemu+tcp://10.0.0.5/system"
    )
    assert host.libvirt_uri == "qemu+tcp://10.0.0.5/system"
    assert Host.model_validate(host.model_dump(mode="json")) == host


def test_ssh_host_needs_a_user() -> None:
    with pytest.raises(ValidationError, match="ssh_user is required when connection is 'ssh'"):
        Host(**BASE, address="10.0.0.5")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("address", "not an address!", "is not an address"),
        ("ssh_user", "Root", "is not a user name"),
        ("cpu_vendor", "arm", "'intel' or 'amd'"),
        ("cpus", 0, "greater than or equal to 1"),
    ],
)
def test_bad_fields_are_named(field: str, value: object, fragment: str) -> None:
    data = {**BASE, "address": "10.0.0.5", "ssh_user": "ops", field: value}
    with pytest.raises(ValidationError) as info:
        Host.model_validate(data)
    (error,) = info.value.errors()
    assert error["loc"] == (field,)
    assert fragment in error["msg"]


def test_pool_defaults() -> None:
    pool = HostPool(name="general", zone="zone-a")
    assert (pool.cpu_overcommit, pool.memory_overcommit, pool.reserved_memory_mb) == (
        4.0,
        1.0,
        1024,
    )


def test_schedulable_capacity_applies_overcommit_after_the_reserve() -> None:
    pool = HostPool(name="general", zone="zone-a", cpu_overcommit=1.5, memory_overcommit=1.25)
    host = Host(**BASE, address="10.0.0.5", ssh_user="ops")
    assert pool.schedulable_cpus(host) == 12
    assert pool.schedulable_memory_mb(host) == (16384 - 1024) * 5 // 4
    assert pool.schedulable_disk_gb(host) == 200


def test_reserve_larger_than_memory_gives_zero() -> None:
    pool = HostPool(name="general", zone="zone-a", reserved_memory_mb=1 << 20)
    host = Host(**BASE, address="10.0.0.5", ssh_user="ops")
    assert pool.schedulable_memory_mb(host) == 0


def test_capacity_of_a_host_of_another_pool_is_refused() -> None:
    pool = HostPool(name="other", zone="zone-a")
    host = Host(**BASE, address="10.0.0.5", ssh_user="ops")
    with pytest.raises(ValueError, match="host 'kvm-1' is in pool 'general', not 'other'"):
        pool.schedulable_cpus(host)


@pytest.mark.parametrize("field", ["cpu_overcommit", "memory_overcommit"])
def test_overcommit_below_one_is_rejected(field: str) -> None:
    with pytest.raises(ValidationError) as info:
        HostPool.model_validate({"name": "p", "zone": "z", field: 0.5})
    assert info.value.errors()[0]["loc"] == (field,)
