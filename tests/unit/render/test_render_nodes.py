"""What a VM of a vm node pool is given at first boot: its node files in its user data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from unkai.environments import load_environment
from unkai.errors import RenderError
from unkai.model import NodePool
from unkai.render import (
    node_address,
    node_files,
    node_of,
    node_pod_cidrs,
    render_network_config,
    render_tree,
    render_user_data,
    sandbox_image,
)
from unkai.toolchain import pinned_version

ROOT = Path(__file__).resolve().parents[3]

VM_POOL = {
    "networks": {"nodes": {"mode": "isolated", "cidr": "10.218.0.0/24"}},
    "vm_images": {"node": {"version": "1", "kubernetes": "1.36.3", "profile": "lean"}},
    "instance_templates": {
        "node": {"machine_type": "custom-1-2048", "image": "node", "zone": "local",
                 "networks": ["default", "nodes"]},
    },
    "clusters": {"apps": {"node_pools": [
        {"name": "vms", "kind": "vm", "template": "node", "machine_type": "custom-1-2048",
         "size": 2},
    ]}},
}  # fmt: skip


def test_each_vm_node_of_a_cluster_gets_its_own_pod_addresses():
    pools = [
        NodePool(name="a", kind="vm", template="node", machine_type="custom-1-2048", size=2),
        NodePool(name="sim", machine_type="e2-small", size=5),
        NodePool(name="b", kind="vm", template="node", machine_type="custom-1-2048", size=1),
    ]
    plain = {**VM_POOL, "settings": {"management_cluster": None}}
    plain["clusters"] = {"apps": {"node_pools": [p.model_dump(mode="json") for p in pools]}}
    env = load_environment("local", root=ROOT, overrides=plain)
    assert node_pod_cidrs(env, "apps") == {
        "apps-a-0": "10.244.1.0/24",
        "apps-a-1": "10.244.2.0/24",
        "apps-b-0": "10.244.3.0/24",
    }
    # The operator keeps them where there is a management cluster: each slot has its own.
    kept = load_environment("local", root=ROOT, overrides={**plain, "settings": {}})
    assert list(node_pod_cidrs(kept, "apps").values()) == [f"10.244.{i}.0/24" for i in range(1, 6)]


def test_a_nodes_user_data_writes_its_share_of_the_cluster_and_renders_the_same_bytes():
    env = load_environment("local", root=ROOT, overrides=VM_POOL)
    (node,) = [i for i in env.all_instances() if i.name == "apps-vms-1"]
    assert node_of(env, "apps-vms-1")[0] == "apps" and node_of(env, "db") is None
    files = {f["path"]: f["content"] for f in node_files(env, "apps-vms-1")}
    cni = json.loads(files["/etc/cni/net.d/10-unkai.conflist"])
    assert cni["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.2.0/24"}]]
    assert sandbox_image() == f"127.0.0.1:5000/pause:{pinned_version('pause')}"
    assert f'sandbox = "{sandbox_image()}"' in files["/etc/containerd/conf.d/unkai.toml"]
    hosts = files["/etc/containerd/certs.d/127.0.0.1:5000/hosts.toml"]
    assert 'server = "http://10.0.2.2:5000"' in hosts
    proxy = yaml.safe_load(files["/etc/kubernetes/kube-proxy.yaml"])
    assert proxy["hostnameOverride"] == "apps-vms-1"
    assert proxy["clusterCIDR"] == "10.244.0.0/16"
    assert files["/etc/default/kubelet"].endswith("KUBELET_EXTRA_ARGS=--node-ip=10.218.0.3\n")

    text = render_user_data(node, env)
    config = yaml.safe_load(text.split("\n", 1)[1])
    assert [f["path"] for f in config["write_files"]] == list(files)
    assert render_user_data(node, env) == text  # the same bytes every time
    (db,) = [i for i in env.all_instances() if i.name == "db"]
    assert "write_files" not in yaml.safe_load(render_user_data(db, env).split("\n", 1)[1])


def test_nodes_take_the_static_addresses_of_their_node_network_in_name_order():
    env = load_environment("local", root=ROOT, overrides=VM_POOL)
    assert [str(node_address(env, n)[1]) for n in ("apps-vms-0", "apps-vms-1")] == [
        "10.218.0.2/24",  # .1 is the gateway, this machine
        "10.218.0.3/24",
    ]
    assert node_address(env, "db") is None
    (node,) = [i for i in env.all_instances() if i.name == "apps-vms-1"]
    config = yaml.safe_load(render_network_config(node, env).split("\n", 1)[1])
    user, static = config["ethernets"]["nic0"], config["ethernets"]["nic1"]
    assert user["dhcp4"] is True and "addresses" not in user
    assert static["addresses"] == ["10.218.0.3/24"] and "dhcp4" not in static


def test_a_node_network_without_a_static_address_left_is_a_render_error():
    # A /29 whose DHCP range (its upper half) leaves .2 and .3 besides the gateway.
    small = {**VM_POOL, "networks": {"nodes": {"mode": "isolated", "cidr": "10.218.0.0/29"}}}
    pools = small["clusters"]["apps"]["node_pools"]
    small["clusters"] = {"apps": {"node_pools": [{**pools[0], "size": 3}]}}
    env = load_environment("local", root=ROOT, overrides=small)
    assert str(node_address(env, "apps-vms-1")[1]) == "10.218.0.3/29"
    (node,) = [i for i in env.all_instances() if i.name == "apps-vms-2"]
    with pytest.raises(RenderError, match=r"network nodes \(10\.218\.0\.0/29\) has fewer static"):
        render_network_config(node, env)


def test_a_vm_pool_renders_as_its_slots_and_its_object_where_the_operator_keeps_it():
    # What render writes is what up applies: the pool's object, each slot's VM.
    tree = render_tree(load_environment("local", root=ROOT), accelerator="tcg")
    paths = {str(path) for path in tree}
    for slot in ("apps-default-0", "apps-default-1"):  # size 1, and one for a rollout
        assert {f"libvirt/domains/{slot}.xml", f"cloud-init/{slot}/user-data"} <= paths
    (pool,) = [
        text for path, text in tree.items() if str(path).startswith("kubernetes/apps/nodepool-")
    ]
    spec = yaml.safe_load(pool)["spec"]
    assert (spec["nodes"], spec["endpoint"], spec["cluster"]) == ("vm", "10.0.2.2:6443", "apps")
    # Without a management cluster, up joins each VM itself: no NodePool object.
    plain = load_environment(
        "local", root=ROOT, overrides={"settings": {"management_cluster": None}}
    )
    paths = {str(path) for path in render_tree(plain, accelerator="tcg")}
    assert not any(path.startswith("kubernetes/apps/nodepool-") for path in paths)
    assert "libvirt/domains/apps-default-0.xml" in paths
    assert "libvirt/domains/apps-default-1.xml" not in paths
