"""The node's binaries: what is built from which module, and how the cache is checked.

The builds themselves run in ``tests/integration/test_node_image.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from unkai.toolchain import _node
from unkai.toolchain._gobuild import build_all_argv
from unkai.toolchain._node import (
    CONTAINERD_BINARIES,
    NODE_KUBE_BINARIES,
    containerd_tool,
    containerd_version,
    find_node,
    node_kube_tool,
)
from unkai.toolchain._pins import pinned_version


def test_the_versions_are_the_pinned_ones():
    assert containerd_version() == pinned_version("containerd")
    # Kubernetes 1.36 refuses containerd 1.x (all Debian 12 has).
    assert int(containerd_version().split(".")[0]) >= 2


def test_the_node_binaries_come_from_kubernetes_at_its_version_with_the_stamped_version():
    tool = node_kube_tool("1.36.3")
    assert tool.name == "kubernetes-node"  # its own cache folder: the control plane's stays
    assert tool.module == "k8s.io/kubernetes" and tool.version == "v1.36.3"
    assert [binary for _, binary in tool.binaries] == list(NODE_KUBE_BINARIES)
    assert "-X k8s.io/component-base/version.gitVersion=v1.36.3" in tool.ldflags
    assert tool.pin_local_replaces == "v0.36.3" and tool.together


def test_containerd_is_built_static_without_the_snapshotters_a_node_does_not_use(tmp_path):
    tool = containerd_tool("2.4.2")
    assert tool.module == "github.com/containerd/containerd/v2"
    assert [binary for _, binary in tool.binaries] == list(CONTAINERD_BINARIES)
    argv = build_all_argv(tool, tmp_path)
    assert argv[argv.index("-tags") + 1] == "no_btrfs,no_devmapper,no_zfs"
    assert "-X github.com/containerd/containerd/v2/version.Version=v2.4.2" in tool.ldflags


def test_the_cache_counts_only_when_every_binary_reports_its_version(cache, fake_binary):
    kube = cache / "kubernetes-node-1.36.3" / "bin"
    ctrd = cache / "containerd-2.4.2" / "bin"
    fake_binary(kube, "kubelet", "Kubernetes v1.36.3")
    fake_binary(kube, "kube-proxy", "Kubernetes v1.36.3")
    fake_binary(kube, "kubeadm", "v1.36.3")
    fake_binary(ctrd, "containerd", "containerd github.com/containerd/containerd/v2 v2.4.2")
    assert find_node("1.36.3", "2.4.2") is None  # no shim yet
    fake_binary(ctrd, "containerd-shim-runc-v2", "containerd-shim-runc-v2:\n  Version:  v2.4.2")
    found = find_node("1.36.3", "2.4.2")
    assert found is not None
    assert sorted(found.files()) == sorted([*NODE_KUBE_BINARIES, *CONTAINERD_BINARIES])
    fake_binary(kube, "kubelet", "Kubernetes v1.36.2")
    assert find_node("1.36.3", "2.4.2") is None
    assert _node.node_kube_bin("1.36.3") == kube


def test_the_pause_tag_is_read_from_kubernetes_makefile_and_compiled_as_it_says():
    from unkai.toolchain._node import pause_argv, pause_tag

    assert pause_tag("IMAGE = registry.k8s.io/pause\nTAG ?= 3.10.2\nREV = x\n") == "3.10.2"
    with pytest.raises(Exception, match="names no TAG"):
        pause_tag("IMAGE = x\n")
    argv = pause_argv(Path("/m/pause.c"), Path("/o/pause"), "3.10.2")
    assert argv[0] == "gcc" and "-static" in argv and "-DVERSION=v3.10.2-unkai" in argv
    assert pinned_version("pause") == "3.10.2"


def test_the_registry_listens_on_loopback_only_and_keeps_its_blobs_in_the_cache(cache):
    import yaml

    from unkai.model import REGISTRY
    from unkai.toolchain import REGISTRY_ADDRESS, registry_daemon

    assert f"{REGISTRY_ADDRESS[0]}:{REGISTRY_ADDRESS[1]}" == REGISTRY  # images name it so
    daemon = registry_daemon()
    assert daemon.tcp == ("127.0.0.1", 5000) and daemon.argv[:2] == ("docker-registry", "serve")
    ((path, text),) = daemon.files
    config = yaml.safe_load(text)
    assert config["http"]["addr"] == "127.0.0.1:5000"
    assert config["storage"]["filesystem"]["rootdirectory"] == str(cache.parent / "registry")
    assert "auth" not in config and path == cache.parent / "registry.yml"
