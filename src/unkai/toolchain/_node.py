"""A Kubernetes node's binaries: pinned, built from Go modules, cached.

A node image bakes what a kubelet needs to run containers (:func:`ensure_node`):

- ``kubelet``, ``kubeadm`` and ``kube-proxy``, built from ``k8s.io/kubernetes`` at the
  version the control plane runs, into ``<cache>/toolchain/kubernetes-node-<version>/bin``
  (a folder of their own, so the control plane's cache stays valid when they are added);
- ``containerd`` and its runc shim ``containerd-shim-runc-v2``, built from
  ``github.com/containerd/containerd/v2`` at the version ``toolchain.toml`` pins, into
  ``<cache>/toolchain/containerd-<version>/bin``. Kubernetes 1.36 refuses containerd 1.x,
  which is all Debian 12 ships.

Everything else a node needs (runc, the CNI plugins, conntrack, iptables) comes from
Debian's packages (``unkai.model.KUBERNETES_NODE_PACKAGES``).

The pod sandbox ("pause") container is Kubernetes' own ``build/pause/linux/pause.c`` of
the same module, compiled static by :func:`ensure_pause` into
``<cache>/toolchain/pause-<tag>/bin/pause`` (``tag`` is its Makefile's); the provider
puts it in an image of one file and pushes that to unkai's registry.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from unkai.errors import ToolchainError
from unkai.toolchain._gobuild import GoTool, build
from unkai.toolchain._kubernetes import (
    _reported_version,
    kubernetes_tool,
    kubernetes_version,
)
from unkai.toolchain._paths import toolchain_dir
from unkai.toolchain._pins import pinned_version
from unkai.toolchain._run import run

NODE_KUBE_BINARIES = ("kubeadm", "kubelet", "kube-proxy")
"""The node's binaries built from ``k8s.io/kubernetes``, each from ``cmd/<name>``."""

CONTAINERD_BINARIES = ("containerd", "containerd-shim-runc-v2")
"""The binaries built from ``github.com/containerd/containerd/v2``, each from ``cmd/<name>``."""


@dataclass(frozen=True)
class NodeBinaries:
    """The built binaries of a node, by version.

    Attributes:
        kubernetes: Their Kubernetes version (``1.36.3``).
        containerd: The containerd version (``2.4.2``).
        kube_bin: Folder of ``kubelet``, ``kubeadm`` and ``kube-proxy``.
        containerd_bin: Folder of ``containerd`` and ``containerd-shim-runc-v2``.
    """

    kubernetes: str
    containerd: str
    kube_bin: Path
    containerd_bin: Path

    def files(self) -> dict[str, Path]:
        """Each binary's name → its path, sorted by name."""
        out = {name: self.kube_bin / name for name in NODE_KUBE_BINARIES}
        out |= {name: self.containerd_bin / name for name in CONTAINERD_BINARIES}
        return dict(sorted(out.items()))


def containerd_version() -> str:
    """The pinned containerd version, without ``v`` (``2.4.2``)."""
    return pinned_version("containerd")


def node_kube_tool(version: str) -> GoTool:
    """The Go build of ``kubelet``, ``kubeadm`` and ``kube-proxy`` at ``version`` (no ``v``)."""
    return kubernetes_tool(version, name="kubernetes-node", binaries=NODE_KUBE_BINARIES)


def containerd_tool(version: str) -> GoTool:
    """The Go build of ``containerd`` and its runc shim at ``version`` (no ``v``).

    Static, without cgo: the btrfs, devmapper and zfs snapshotters (cgo or kernel
    features a VM node does not use) are left out; overlayfs is the node's snapshotter.
    """
    module = "github.com/containerd/containerd/v2"
    return GoTool(
        name="containerd",
        module=module,
        version=f"v{version}",
        binaries=tuple((f"{module}/cmd/{name}", name) for name in CONTAINERD_BINARIES),
        ldflags=f"-s -w -X {module}/version.Version=v{version}",
        tags=("no_btrfs", "no_devmapper", "no_zfs"),
        together=True,
    )


def node_kube_bin(version: str | None = None) -> Path:
    """The cache folder of the node's Kubernetes binaries at ``version`` (default: pinned)."""
    return toolchain_dir("kubernetes-node", version or kubernetes_version()) / "bin"


def containerd_bin(version: str | None = None) -> Path:
    """The cache folder of containerd at ``version`` (default: pinned)."""
    return toolchain_dir("containerd", version or containerd_version()) / "bin"


def _version_flag(name: str) -> list[str]:
    return ["version", "--output=short"] if name == "kubeadm" else ["--version"]


def find_node(kubernetes: str | None = None, containerd: str | None = None) -> NodeBinaries | None:
    """The cached node binaries, when every one is there and reports its version."""
    kubernetes = kubernetes or kubernetes_version()
    containerd = containerd or containerd_version()
    found = NodeBinaries(
        kubernetes, containerd, node_kube_bin(kubernetes), containerd_bin(containerd)
    )
    if not _kube_current(found) or not _containerd_current(found):
        return None
    return found


def _kube_current(found: NodeBinaries) -> bool:
    return all(
        _reported_version([str(found.kube_bin / name), *_version_flag(name)]) == found.kubernetes
        for name in NODE_KUBE_BINARIES
    )


def _containerd_current(found: NodeBinaries) -> bool:
    # The shim answers -v with the same stamped version.
    return all(
        _reported_version([str(found.containerd_bin / name), flag]) == found.containerd
        for name, flag in (("containerd", "--version"), ("containerd-shim-runc-v2", "-v"))
    )


def ensure_node(*, say: Callable[[str], None] = lambda _: None) -> NodeBinaries:
    """Return the pinned node binaries, building those the cache lacks.

    Side effects:
        A cold build downloads ``k8s.io/kubernetes`` and containerd with their
        dependencies from the Go module proxy and compiles for minutes (the control
        plane's build leaves most shared packages in Go's build cache).

    Raises:
        CommandFailed: a build failed.
        ToolchainError: a build succeeded but a binary reports another version.
    """
    kubernetes, containerd = kubernetes_version(), containerd_version()
    wanted = NodeBinaries(kubernetes, containerd, node_kube_bin(), containerd_bin())
    if not _kube_current(wanted):
        say(f"kubelet, kubeadm and kube-proxy {kubernetes} not in the cache: building them")
        build(node_kube_tool(kubernetes), wanted.kube_bin.parent, say=say)
    if not _containerd_current(wanted):
        say(f"containerd {containerd} not in the cache: building it from the Go module")
        build(containerd_tool(containerd), wanted.containerd_bin.parent, say=say)
    found = find_node(kubernetes, containerd)
    if found is None:
        raise ToolchainError(
            f"built the node binaries (Kubernetes {kubernetes}, containerd {containerd})"
            " but one reports another version"
        )
    return found


@dataclass(frozen=True)
class Pause:
    """The pod sandbox binary: Kubernetes' ``pause.c``, compiled static.

    Attributes:
        tag: The pause image tag Kubernetes gives it (``3.10.2``), from its Makefile.
        binary: The compiled program.
    """

    tag: str
    binary: Path


def pause_tag(makefile: str) -> str:
    """The ``TAG ?= <version>`` of ``build/pause/Makefile``.

    Raises:
        ToolchainError: the Makefile has no such line.
    """
    match = re.search(r"^TAG \?= (\d+\.\d+(?:\.\d+)?)$", makefile, re.MULTILINE)
    if match is None:
        raise ToolchainError("build/pause/Makefile of k8s.io/kubernetes names no TAG")
    return match[1]


def pause_argv(source: Path, out: Path, tag: str) -> list[str]:
    """The compiler command of the pause binary (the flags of its Makefile)."""
    return ["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{tag}-unkai",
            "-o", str(out), str(source)]  # fmt: skip


def ensure_pause(*, say: Callable[[str], None] = lambda _: None) -> Pause:
    """Return the pause binary of the pinned Kubernetes, compiling it when missing.

    Raises:
        CommandFailed: downloading the module or compiling failed.
        ToolchainError: the module has no pause source where Kubernetes keeps it.
    """
    version = kubernetes_version()
    env = {"GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    info = json.loads(run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@v{version}"],
                          env=env))  # fmt: skip
    folder = Path(info["Dir"]) / "build" / "pause"
    source = folder / "linux" / "pause.c"
    if not source.is_file():
        raise ToolchainError(
            f"k8s.io/kubernetes v{version} has no {source.relative_to(info['Dir'])}"
        )
    tag = pause_tag((folder / "Makefile").read_text(encoding="utf-8"))
    if tag != pinned_version("pause"):
        raise ToolchainError(
            f"k8s.io/kubernetes v{version} builds pause {tag}, but toolchain.toml pins"
            f" pause {pinned_version('pause')}; pin the version Kubernetes builds"
        )
    binary = toolchain_dir("pause", tag) / "bin" / "pause"
    if binary.is_file():
        return Pause(tag, binary)
    say(f"compiling the pod sandbox (pause {tag}) from k8s.io/kubernetes v{version}")
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=binary.parent) as tmp:
        out = Path(tmp) / "pause"
        run(pause_argv(source, out, tag))
        shutil.move(str(out), binary)
    return Pause(tag, binary)
