"""What a VM of a ``vm`` node pool is given at its first boot, before it joins.

Its cloud-init writes the node's share of the cluster's configuration
(:func:`node_files`): containerd's sandbox image and where unkai's registry is, the
node's pod network (a bridge over its own ``/24``), kube-proxy's configuration and the
kubelet's address (:func:`node_address`, static on the node network, where the API
server reaches the kubelet).
``unkai render`` shows them in the VM's user-data, as they are applied; the join itself
(``playbooks/k8s-node.yml``) then needs only its token. containerd starts after
cloud-init (its unit in the node image), so it reads them at its first start.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from unkai._pins import pinned_version
from unkai.model import REGISTRY, USER_NETWORK_HOST_IP, Environment, NodePool

__all__ = [
    "CLUSTER_POD_CIDR",
    "node_address",
    "node_files",
    "node_of",
    "node_pod_cidrs",
    "sandbox_image",
]

CLUSTER_POD_CIDR = "10.244.0.0/16"
"""Pod addresses of real nodes: node ``i`` of a cluster (counting its ``vm`` pools' nodes
in order) gets ``10.244.<i + 1>.0/24``. kwok's simulated pods use their own range."""

_NODE_PREFIX = "10.244"


def node_pod_cidrs(env: Environment, cluster: str) -> dict[str, str]:
    """Each ``vm`` node of a cluster → its pod addresses.

    A pool the operator keeps has a node for each of its slots.

    Args:
        env: The environment.
        cluster: The cluster's name.

    Raises:
        ValueError: the cluster has more than 254 VM nodes (the /16 holds no more /24s).
    """
    pools = env.clusters[cluster].node_pools
    names = [n for pool in pools if pool.kind == "vm" for n in env.pool_nodes(cluster, pool)]
    if len(names) > 254:
        raise ValueError(f"cluster {cluster} has {len(names)} VM nodes; at most 254 fit")
    return {name: f"{_NODE_PREFIX}.{index + 1}.0/24" for index, name in enumerate(names)}


def node_of(env: Environment, name: str) -> tuple[str, NodePool] | None:
    """The cluster and ``vm`` pool whose node the instance ``name`` is, if any.

    Args:
        env: The environment.
        name: An instance's name.
    """
    for cluster_name, cluster in env.clusters.items():
        for pool in cluster.node_pools:
            if pool.kind == "vm" and name in env.pool_nodes(cluster_name, pool):
                return cluster_name, pool
    return None


def node_address(env: Environment, name: str) -> tuple[str, ipaddress.IPv4Interface] | None:
    """The node network and static address of node ``name`` (``None`` for another instance).

    The nodes on each node network (``Environment.node_network`` of their pool's
    template), in name order, take the network's static addresses: those below its DHCP
    range, the gateway skipped. Static, so the kubelet is told its address
    (``--node-ip``) at first boot, and ``unkai render`` shows it. A node added or
    removed before another in that order moves the other's address (as its pod range),
    which makes a new VM of it.

    Args:
        env: The environment.
        name: An instance's name.

    Raises:
        ValueError: the node has no node network (the model's references refuse that),
            or its network has fewer static addresses than nodes.
    """
    found = node_of(env, name)
    if found is None:
        return None
    _, pool = found
    network_name = env.node_network(str(pool.template))
    if network_name is None:
        raise ValueError(f"node {name} has no nat or isolated network for its kubelet")
    network = env.networks[network_name]
    net = network.network
    assert net is not None and network.gateway and network.dhcp_start and network.dhcp_end
    start, end = (ipaddress.IPv4Address(a) for a in (network.dhcp_start, network.dhcp_end))
    gateway = ipaddress.IPv4Address(network.gateway)
    nodes = sorted(
        node
        for cluster_name, cluster in env.clusters.items()
        for other in cluster.node_pools
        if other.kind == "vm" and env.node_network(str(other.template)) == network_name
        for node in env.pool_nodes(cluster_name, other)
    )
    index = nodes.index(name)
    free = (a for a in net.hosts() if a != gateway and not start <= a <= end)
    for position, address in enumerate(free):
        if position == index:
            return network_name, ipaddress.IPv4Interface(f"{address}/{net.prefixlen}")
    raise ValueError(
        f"network {network_name} ({network.cidr}) has fewer static addresses (below its"
        f" DHCP range {start}..{end}) than its {len(nodes)} nodes"
    )


def sandbox_image() -> str:
    """The pod sandbox image in unkai's registry (``127.0.0.1:5000/pause:<pinned tag>``)."""
    return f"{REGISTRY}/pause:{pinned_version('pause')}"


def registry_url() -> str:
    """Where a node on QEMU user networking reaches unkai's registry."""
    return f"http://{USER_NETWORK_HOST_IP}:{REGISTRY.rpartition(':')[2]}"


def node_files(env: Environment, name: str) -> tuple[dict[str, Any], ...]:
    """The cloud-init ``write_files`` entries of node ``name`` (none for another instance).

    Args:
        env: The environment.
        name: An instance's name.

    Returns:
        The kubelet's address, containerd's sandbox image, the registry's ``hosts.toml``,
        the node's CNI configuration and kube-proxy's, each as a ``write_files`` entry
        (root, 0644).
    """
    found = node_of(env, name)
    if found is None:
        return ()
    cluster, _ = found
    pod_cidr = node_pod_cidrs(env, cluster)[name]
    placed = node_address(env, name)
    assert placed is not None  # name is a node
    address = placed[1]
    url = registry_url()
    containerd = (
        "# unkai: the cluster's part of containerd's configuration.\n"
        "version = 3\n\n"
        "[plugins.'io.containerd.cri.v1.images'.pinned_images]\n"
        f"  sandbox = {json.dumps(sandbox_image())}\n"
    )
    hosts = (
        f"# unkai: images named {REGISTRY}/... come from {url}.\n"
        f"server = {json.dumps(url)}\n\n"
        f"[host.{json.dumps(url)}]\n"
        '  capabilities = ["pull", "resolve"]\n'
    )
    cni = {
        "cniVersion": "1.0.0",
        "name": "unkai",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    proxy = (
        "# unkai: kube-proxy runs with its node's credentials.\n"
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
        "kind: KubeProxyConfiguration\n"
        "clientConnection:\n"
        "  kubeconfig: /etc/kubernetes/kubelet.conf\n"
        f"clusterCIDR: {json.dumps(CLUSTER_POD_CIDR)}\n"
        f"hostnameOverride: {json.dumps(name)}\n"
        "mode: iptables\n"
    )
    kubelet = (
        "# unkai: the kubelet serves on the node network, where the API server reaches it.\n"
        f"KUBELET_EXTRA_ARGS=--node-ip={address.ip}\n"
    )
    files = {
        "/etc/default/kubelet": kubelet,
        "/etc/containerd/conf.d/unkai.toml": containerd,
        f"/etc/containerd/certs.d/{REGISTRY}/hosts.toml": hosts,
        "/etc/cni/net.d/10-unkai.conflist": json.dumps(cni, indent=2, sort_keys=True) + "\n",
        "/etc/kubernetes/kube-proxy.yaml": proxy,
    }
    return tuple(
        {"path": path, "content": text, "owner": "root:root", "permissions": "0644"}
        for path, text in files.items()
    )
