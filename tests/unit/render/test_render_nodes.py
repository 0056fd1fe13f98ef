"""What a VM of a vm node pool is given at first boot: its node files in its user data."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from unkai.environments import load_environment
from unkai.model import NodePool
from unkai.render import (
    node_files,
    node_of,
    node_pod_cidrs,
    render_user_data,
    sandbox_image,
)
from unkai.toolchain import pinned_version

ROOT = Path(__file__).resolve().parents[3]

VM_POOL = {
    "vm_images": {"node": {"version": "1", "kubernetes": "1.36.3", "profile": "lean"}},
    "instance_templates": {
        "node": {"machine_type": "custom-1-2048", "image": "node", "zone": "local",
                 "networks": ["default"]},
    },
    "clusters": {"apps": {"node_pools": [
        {"name": "vms", "kind": "vm", "template": "node", "machine_type": "custom-1-2048",
         "size": 2},
    ]}},
}  # fmt: skip


def test_each_vm_node_of_a_cluster_gets_its_own_pod_addresses():
    pools = (
        NodePool(name="a", kind="vm", template="t", machine_type="e2-small", size=2),
        NodePool(name="sim", machine_type="e2-small", size=5),
        NodePool(name="b", kind="vm", template="t", machine_type="e2-small", size=1),
    )
    assert node_pod_cidrs("apps", pools) == {
        "apps-a-0": "10.244.1.0/24",
        "apps-a-1": "10.244.2.0/24",
        "apps-b-0": "10.244.3.0/24",
    }


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

    text = render_user_data(node, env)
    config = yaml.safe_load(text.split("\n", 1)[1])
    assert [f["path"] for f in config["write_files"]] == list(files)
    assert render_user_data(node, env) == text  # the same bytes every time
    (db,) = [i for i in env.all_instances() if i.name == "db"]
    assert "write_files" not in yaml.safe_load(render_user_data(db, env).split("\n", 1)[1])
