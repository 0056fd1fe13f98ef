"""The health of every component the ``local`` environment needs.

Each check looks, and changes nothing: it reports ok or missing, the version or the
reason, and the command that fixes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from unkai.errors import CommandFailed
from unkai.toolchain._daemons import DOCKER, LIBVIRTD, answers, registry_daemon
from unkai.toolchain._kubernetes import (
    etcd_version,
    find_etcd,
    find_kubernetes,
    find_kwok,
    kubernetes_version,
    kwok_version,
)
from unkai.toolchain._kvm import cached_probe
from unkai.toolchain._metrics import find_metrics_server, metrics_server_version
from unkai.toolchain._node import containerd_version, find_node
from unkai.toolchain._paths import pulumi_version, venv_bin
from unkai.toolchain._pulumi import Found, find_langhost, find_pulumi
from unkai.toolchain._run import run, which

BOOTSTRAP = "scripts/bootstrap"


@dataclass(frozen=True)
class Check:
    """The state of one component.

    Attributes:
        component: What was checked.
        ok: Whether it is usable.
        detail: Its version, or why it is not usable.
        fix: The command that makes it ok.
        required: Whether the ``local`` environment needs it (doctor fails without it).
    """

    component: str
    ok: bool
    detail: str
    fix: str
    required: bool = True


def _version(argv: list[str], pattern: str = r"(\d+\.\d+(?:\.\d+)?)") -> str | None:
    if which(argv[0]) is None:
        return None
    try:
        out = run(argv, timeout=30)
    except CommandFailed:
        return None
    match = re.search(pattern, out)
    return match.group(1) if match else out.strip().splitlines()[0]


def _tool(component: str, argv: list[str], fix: str, *, required: bool = True) -> Check:
    version = _version(argv)
    if version is None:
        return Check(component, False, f"{argv[0]} not found", fix, required)
    return Check(component, True, version, fix, required)


def _pinned(component: str, found: Found | None, missing: str) -> Check:
    """A pinned tool: ok with its version and origin, or missing and why."""
    if found is None:
        return Check(component, False, missing, BOOTSTRAP)
    return Check(component, True, f"{found.version} ({found.origin})", BOOTSTRAP)


def check_pulumi() -> Check:
    """The pulumi CLI at the version of the pinned SDK."""
    want = pulumi_version()
    return _pinned("pulumi CLI", find_pulumi(want), f"{want} not found")


def check_langhost() -> Check:
    """The Python language host the engine will run."""
    return _pinned("pulumi language host (python)", find_langhost(), "not found")


def check_provider() -> Check:
    """Unkai's own resource provider plugin."""
    plugin = venv_bin() / "pulumi-resource-unkai"
    if not plugin.is_file():
        return Check("unkai provider plugin", False, f"{plugin} missing", BOOTSTRAP)
    return Check("unkai provider plugin", True, metadata.version("unkai"), BOOTSTRAP)


def check_docker() -> Check:
    """The Docker engine answers on its socket."""
    if which("dockerd") is None:
        return Check("Docker engine", False, "dockerd not installed", BOOTSTRAP)
    if not answers(DOCKER):
        return Check("Docker engine", False, f"no answer on {DOCKER.socket}", "unkai bootstrap")
    version = _version(["dockerd", "--version"]) or "?"
    return Check("Docker engine", True, version, "unkai bootstrap")


def check_libvirtd() -> Check:
    """Libvirtd answers on its socket."""
    if which("libvirtd") is None:
        return Check("libvirtd", False, "libvirtd not installed", BOOTSTRAP)
    if not answers(LIBVIRTD):
        return Check("libvirtd", False, f"no answer on {LIBVIRTD.socket}", "unkai bootstrap")
    return Check("libvirtd", True, _version(["libvirtd", "--version"]) or "?", "unkai bootstrap")


def check_registry() -> Check:
    """The image registry real nodes pull from answers on loopback."""
    daemon = registry_daemon()
    if which("docker-registry") is None:
        return Check("image registry", False, "docker-registry not installed", BOOTSTRAP)
    if not answers(daemon):
        return Check("image registry", False, f"no answer on {daemon.where}", "unkai bootstrap")
    return Check("image registry", True, f"{daemon.where} (docker-registry)", "unkai bootstrap")


def check_accelerator() -> Check:
    """KVM, or the TCG fallback; both are ok, the detail says which and why."""
    if which("qemu-system-x86_64") is None:
        return Check("QEMU accelerator", False, "qemu-system-x86_64 not installed", BOOTSTRAP)
    report = cached_probe()
    return Check(
        "QEMU accelerator",
        True,
        f"{report.accelerator}: {report.reason}",
        "unkai bootstrap (probes again)",
    )


def check_ansible() -> Check:
    """ansible-core in the venv."""
    try:
        version = metadata.version("ansible-core")
    except metadata.PackageNotFoundError:
        return Check("ansible-core", False, "not installed in the venv", BOOTSTRAP)
    return Check("ansible-core", True, version, BOOTSTRAP)


def check_kube_apiserver() -> Check:
    """The Kubernetes control plane binaries at the version ``toolchain.toml`` pins."""
    want = kubernetes_version()
    return _pinned("kube-apiserver", find_kubernetes(want), f"{want} not built")


def check_kwok() -> Check:
    """The kwok of ``toolchain.toml`` (simulated nodes), with its stages."""
    want = kwok_version()
    return _pinned("kwok", find_kwok(want), f"{want} not built")


def check_etcd() -> Check:
    """The control plane's store: etcd at the version ``toolchain.toml`` pins."""
    want = etcd_version()
    return _pinned("etcd", find_etcd(want), f"{want} not built")


def check_node() -> Check:
    """A node image's binaries: kubelet, kubeadm, kube-proxy and containerd, as pinned."""
    found = find_node()
    if found is None:
        detail = f"Kubernetes {kubernetes_version()}, containerd {containerd_version()} not built"
        return Check("node binaries", False, detail, "built with the first node image")
    return Check(
        "node binaries",
        True,
        f"kubelet {found.kubernetes}, containerd {found.containerd}"
        f" ({found.kube_bin.parent.parent})",
        "built with the first node image",
    )


def check_metrics_server() -> Check:
    """metrics-server at the version ``toolchain.toml`` pins.

    Built on first use, not by the bootstrap, so a cache without it is ok: the row says
    whether it is built yet.
    """
    want = metrics_server_version()
    found = find_metrics_server(want)
    where = "built on first use" if found is None else str(found.parent.parent)
    return Check("metrics-server", True, f"{want} ({where})", "built on first use")


CHECKS: tuple[Callable[[], Check], ...] = (
    check_pulumi,
    check_langhost,
    check_provider,
    check_docker,
    check_libvirtd,
    check_registry,
    lambda: _tool("QEMU", ["qemu-system-x86_64", "--version"], BOOTSTRAP),
    lambda: _tool("qemu-img", ["qemu-img", "--version"], BOOTSTRAP),
    check_accelerator,
    check_ansible,
    check_kube_apiserver,
    check_kwok,
    check_etcd,
    check_node,
    check_metrics_server,
    lambda: _tool("mmdebstrap", ["mmdebstrap", "--version"], BOOTSTRAP),
    lambda: _tool("debootstrap", ["debootstrap", "--version"], BOOTSTRAP),
    lambda: _tool("xorriso (seed ISOs)", ["xorriso", "-version"], BOOTSTRAP),
    lambda: _tool("go (builds pinned tools)", ["go", "version"], "apt-get install golang"),
)


def run_checks() -> list[Check]:
    """Run every check, in a fixed order."""
    return [check() for check in CHECKS]
