"""The local Kubernetes control plane's binaries: pinned, built from Go modules, cached.

``kube-apiserver``, ``kube-controller-manager``, ``kube-scheduler`` and ``kubectl`` are
built from ``k8s.io/kubernetes`` at the version ``toolchain.toml`` pins, into
``<cache>/toolchain/kubernetes-<version>/bin``; ``kwok`` from ``sigs.k8s.io/kwok`` into
``<cache>/toolchain/kwok-<version>/bin``, next to ``stages.yaml``: kwok's own "fast"
node and pod stages of that release (nodes turn Ready and keep a lease, pods turn
Running), which ``kwok`` needs as configuration. ``etcd`` is built from
``go.etcd.io/etcd/server/v3`` at the version Kubernetes itself requires, into
``<cache>/toolchain/etcd-<version>/bin``: Debian's etcd 3.4 lacks the watch progress
requests the API server's watch cache relies on, and stalls under thousands of pods.

``k8s.io/kubernetes`` replaces each of its staging modules with a ``./staging/...`` path,
so the wrapper module pins every one of them to the matching ``v0.<minor>.<patch>``
release (:attr:`GoTool.pin_local_replaces`). The four binaries are compiled by one
``go build`` so the packages they share are compiled once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from unkai._files import atomic_write
from unkai.errors import CommandFailed, ToolchainError
from unkai.toolchain._gobuild import GoTool, build
from unkai.toolchain._paths import toolchain_dir
from unkai.toolchain._pins import pinned_version
from unkai.toolchain._pulumi import Found
from unkai.toolchain._run import run

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
"""The binaries built from ``k8s.io/kubernetes``, each from ``cmd/<name>``."""

KWOK_STAGE_DIRS = (
    "kustomize/stage/node/fast",
    "kustomize/stage/node/heartbeat-with-lease",
    "kustomize/stage/pod/fast",
)
"""The folders of the kwok module whose Stage manifests ``stages.yaml`` gathers."""


def kubernetes_version() -> str:
    """The pinned Kubernetes version, without ``v`` (``1.36.3``)."""
    return pinned_version("kubernetes")


def etcd_version() -> str:
    """The pinned etcd version, without ``v`` (``3.6.8``)."""
    return pinned_version("etcd")


def kwok_version() -> str:
    """The pinned KWOK version, without ``v`` (``0.8.0``)."""
    return pinned_version("kwok")


def staging_version(version: str) -> str:
    """The version of the ``k8s.io/*`` staging modules released with Kubernetes ``version``.

    ``1.36.3`` → ``v0.36.3``.

    Raises:
        ToolchainError: ``version`` is not ``1.<minor>.<patch>``.
    """
    match = re.fullmatch(r"1\.(\d+)\.(\d+)", version)
    if match is None:
        raise ToolchainError(f"Kubernetes version {version!r} is not 1.<minor>.<patch>")
    return f"v0.{match[1]}.{match[2]}"


def kubernetes_ldflags(version: str) -> str:
    """Linker flags that stamp Kubernetes ``version`` (no ``v``) into its binaries.

    The version goes where ``hack/lib/version.sh`` stamps it, so ``--version`` prints
    ``Kubernetes v<version>``.
    """
    major, minor, _ = version.split(".")
    stamps = [
        f"-X {pkg}.{var}={value}"
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for var, value in (
            ("gitVersion", f"v{version}"),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
        )
    ]
    return " ".join(["-s", "-w", *stamps])


def kubernetes_tool(
    version: str, *, name: str = "kubernetes", binaries: tuple[str, ...] = KUBE_BINARIES
) -> GoTool:
    """The Go build of ``binaries`` of Kubernetes ``version`` (no ``v``), built together.

    By default the control plane's; ``name`` is the cache folder's prefix.
    """
    return GoTool(
        name=name,
        module="k8s.io/kubernetes",
        version=f"v{version}",
        binaries=tuple((f"k8s.io/kubernetes/cmd/{binary}", binary) for binary in binaries),
        ldflags=kubernetes_ldflags(version),
        pin_local_replaces=staging_version(version),
        together=True,
    )


def kwok_tool(version: str) -> GoTool:
    """The Go build of ``kwok`` at ``version`` (no ``v``)."""
    return GoTool(
        name="kwok",
        module="sigs.k8s.io/kwok",
        version=f"v{version}",
        binaries=(("sigs.k8s.io/kwok/cmd/kwok", "kwok"),),
        ldflags=f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={version}",
    )


def etcd_tool(version: str) -> GoTool:
    """The Go build of ``etcd`` at ``version`` (no ``v``).

    ``go.etcd.io/etcd/server/v3`` replaces its sibling modules (``api/v3``,
    ``client/v3``, ...) with local paths; they are pinned to the same version.
    """
    return GoTool(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version=f"v{version}",
        binaries=(("go.etcd.io/etcd/server/v3", "etcd"),),
        pin_local_replaces=f"v{version}",
    )


def etcd_bin(version: str | None = None) -> Path:
    """The cache folder of ``etcd`` at ``version`` (default: pinned)."""
    return toolchain_dir("etcd", version or etcd_version()) / "bin"


def kubernetes_bin(version: str | None = None) -> Path:
    """The cache folder of the control plane binaries at ``version`` (default: pinned)."""
    return toolchain_dir("kubernetes", version or kubernetes_version()) / "bin"


def kwok_bin(version: str | None = None) -> Path:
    """The cache folder of ``kwok`` at ``version`` (default: pinned)."""
    return toolchain_dir("kwok", version or kwok_version()) / "bin"


def kwok_stages() -> Path:
    """The Stage manifests that come with the pinned kwok (``--config`` of ``kwok``)."""
    return kwok_bin().parent / "stages.yaml"


def gather_stages(files: dict[str, str]) -> str:
    """One multi-document YAML of the Stage manifests in ``files`` (name → text).

    ``kustomization.yaml`` and non-YAML files are left out; the order is by name, so the
    result depends only on the module's content.
    """
    docs = [
        text.strip()
        for name, text in sorted(files.items())
        if name.endswith(".yaml") and not name.endswith("kustomization.yaml")
    ]
    return "---\n" + "\n---\n".join(docs) + "\n"


def _write_stages(version: str) -> None:
    env = {"GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    info = json.loads(
        run(["go", "mod", "download", "-json", f"sigs.k8s.io/kwok@v{version}"], env=env)
    )
    module = Path(info["Dir"])
    files = {
        f"{folder}/{path.name}": path.read_text(encoding="utf-8")
        for folder in KWOK_STAGE_DIRS
        for path in (module / folder).glob("*.yaml")
    }
    atomic_write(kwok_bin(version).parent / "stages.yaml", gather_stages(files))


def _reported_version(argv: list[str]) -> str | None:
    try:
        out = run(argv, timeout=60)
    except CommandFailed:
        return None
    match = re.search(r"v?(\d+\.\d+\.\d+)", out)
    return match.group(1) if match else None


def find_kubernetes(version: str | None = None) -> Found | None:
    """The cached control plane binaries, when all are there and report ``version``.

    Returns:
        ``kube-apiserver``'s path and version (its siblings are in the same folder), or
        ``None`` when one is missing or reports another version.
    """
    version = version or kubernetes_version()
    folder = kubernetes_bin(version)
    for name in KUBE_BINARIES:
        flag = ["version", "--client"] if name == "kubectl" else ["--version"]
        if _reported_version([str(folder / name), *flag]) != version:
            return None
    return Found(folder / "kube-apiserver", version, "built from the Go module")


def find_kwok(version: str | None = None) -> Found | None:
    """The cached ``kwok`` when it is there, reports ``version`` and has its stages."""
    version = version or kwok_version()
    binary = kwok_bin(version) / "kwok"
    if not (binary.parent.parent / "stages.yaml").is_file():
        return None
    if _reported_version([str(binary), "--version"]) != version:
        return None
    return Found(binary, version, "built from the Go module")


def find_etcd(version: str | None = None) -> Found | None:
    """The cached ``etcd`` when it is there and reports ``version`` (default: pinned)."""
    version = version or etcd_version()
    binary = etcd_bin(version) / "etcd"
    if _reported_version([str(binary), "--version"]) != version:
        return None
    return Found(binary, version, "built from the Go module")


def _ensure(
    label: str,
    version: str,
    find: Callable[[str], Found | None],
    tool: GoTool,
    bin_dir: Path,
    say: Callable[[str], None],
) -> Found:
    """The cached tool, or build it into ``bin_dir``'s parent and check its version."""
    found = find(version)
    if found is not None:
        return found
    say(f"{label} {version} not in the cache: building it from the Go module")
    build(tool, bin_dir.parent, say=say)
    found = find(version)
    if found is None:
        raise ToolchainError(f"built {label} {version} but it reports another version")
    return found


def ensure_etcd(*, say: Callable[[str], None] = lambda _: None) -> Found:
    """Return the pinned ``etcd``, building it when the cache lacks it.

    Raises:
        CommandFailed: the build failed.
        ToolchainError: the build succeeded but ``etcd`` does not report the version.
    """
    version = etcd_version()
    return _ensure("etcd", version, find_etcd, etcd_tool(version), etcd_bin(version), say)


def ensure_kubernetes(*, say: Callable[[str], None] = lambda _: None) -> Found:
    """Return the pinned control plane binaries, building them when the cache lacks them.

    Side effects:
        A cold build downloads ``k8s.io/kubernetes`` and its dependencies from the Go
        module proxy and compiles for several minutes (see the README for the time).

    Raises:
        CommandFailed: the build failed.
        ToolchainError: the build succeeded but a binary does not report the version.
    """
    version = kubernetes_version()
    return _ensure(
        "Kubernetes", version, find_kubernetes, kubernetes_tool(version),
        kubernetes_bin(version), say,
    )  # fmt: skip


def ensure_kwok(*, say: Callable[[str], None] = lambda _: None) -> Found:
    """Return the pinned ``kwok``, building it when the cache lacks it.

    Side effects:
        Builds ``kwok`` from its Go module and writes ``stages.yaml`` from the same module.

    Raises:
        CommandFailed: the build failed.
        ToolchainError: the build succeeded but ``kwok`` does not report the version.
    """
    version = kwok_version()
    found = find_kwok(version)
    if found is not None:
        return found
    binary = kwok_bin(version) / "kwok"
    if _reported_version([str(binary), "--version"]) != version:
        say(f"kwok {version} not in the cache: building it from the Go module")
        build(kwok_tool(version), kwok_bin(version).parent, say=say)
    _write_stages(version)
    found = find_kwok(version)
    if found is None:
        raise ToolchainError(f"built kwok {version} but it reports another version")
    return found
