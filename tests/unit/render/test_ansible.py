from __future__ import annotations

import yaml

from unkai.model import Environment
from unkai.render import render_host_vars, render_inventory


def test_inventory_groups_hosts_by_pool_and_zone(env: Environment) -> None:
    inventory = yaml.safe_load(render_inventory(env))
    children = inventory["all"]["children"]
    assert children["kvm_hosts"]["hosts"] == {
        "kvm-2": {"ansible_connection": "ssh", "ansible_host": "10.0.0.12", "ansible_user": "ops"},
        "local": {"ansible_connection": "local"},
    }
    assert set(children) == {"kvm_hosts", "pool_edge", "pool_general", "zone_zone_a", "zone_zone_b"}
    assert children["pool_general"]["hosts"] == {"local": {}}
    assert children["zone_zone_b"]["hosts"] == {"kvm-2": {}}
    assert inventory["all"]["vars"] == {"unkai_environment": "dev"}


def test_host_vars(env: Environment) -> None:
    values = yaml.safe_load(render_host_vars(env.hosts["kvm-2"], env))
    assert values["unkai_libvirt_uri"] == "qemu+ssh://ops@10.0.0.12/system"
    assert values["unkai_storage_pools"] == [
        {"name": "unkai", "path": "/var/lib/libvirt/images/unkai"}
    ]
    assert [n["name"] for n in values["unkai_libvirt_networks"]] == ["backend", "storage", "uplink"]
    assert values["unkai_overcommit"] == {"cpu": 2.0, "memory": 1.0}
    assert values["unkai_labels"] == {"rack": "r2"}
    local = yaml.safe_load(render_host_vars(env.hosts["local"], env))
    assert local["unkai_libvirt_uri"] == "qemu:///system"
