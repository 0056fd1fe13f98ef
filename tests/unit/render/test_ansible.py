from __future__ import annotations

import yaml

from unkai.model import Environment
from unkai.render import render_host_vars, render_inventory


def test_inventory_groups_hosts_by_pool_and_zone(env: Environment) -> None:
    inventory = yaml.safe_load(render_inventory(env))
    children = inventory["all"]["children"]
    # Names and groups only: all about a host is in its host_vars file.
    assert children["kvm_hosts"]["hosts"] == {"kvm-2": {}, "local": {}}
    assert set(children) == {"kvm_hosts", "pool_edge", "pool_general", "zone_zone_a", "zone_zone_b"}
    assert children["pool_general"]["hosts"] == {"local": {}}
    assert children["zone_zone_b"]["hosts"] == {"kvm-2": {}}
    assert inventory["all"]["vars"] == {"unkai_environment": "dev"}


def test_host_vars_are_the_playbooks_variables(env: Environment) -> None:
    values = yaml.safe_load(render_host_vars(env.hosts["kvm-2"], env, accelerator="tcg"))
    assert {k: v for k, v in values.items() if k.startswith("ansible_")} == {
        "ansible_connection": "ssh",
        "ansible_host": "10.0.0.12",
        "ansible_user": "ops",
        "ansible_become": True,  # ops is not root: it becomes root by sudo
    }
    assert {k: v for k, v in values.items() if k.startswith("kvm_host_")} == {
        "kvm_host_accelerator": "tcg",
        # The playbook runs on the host: there libvirt is the local system daemon.
        "kvm_host_libvirt_uri": "qemu:///system",
        "kvm_host_networks": [],  # the Network resource makes the networks
        "kvm_host_pool_name": "unkai",
        "kvm_host_pool_path": "/var/lib/libvirt/images/unkai",
    }
    assert values["unkai_overcommit"] == {"cpu": 2.0, "memory": 1.0}
    assert values["unkai_labels"] == {"rack": "r2"}
    local = yaml.safe_load(render_host_vars(env.hosts["local"], env, accelerator="auto"))
    assert local["ansible_connection"] == "local" and "ansible_host" not in local
    assert local["kvm_host_libvirt_uri"] == "qemu:///system"
    assert local["kvm_host_accelerator"] == "auto"
