"""metrics-server: pinned, built from its Go module, cached.

``metrics-server`` serves the ``metrics.k8s.io`` API that the HorizontalPodAutoscaler
reads, from the resource metrics the kubelets expose. It is built from
``sigs.k8s.io/metrics-server`` at the version ``toolchain.toml`` pins, into
``<cache>/toolchain/metrics-server-<version>/bin``, on first use (:func:`ensure_metrics_server`)
rather than by the bootstrap.

Its version is stamped where its own Makefile stamps it, ``k8s.io/client-go/pkg/version``,
which is what ``metrics-server --version`` prints (``v0.8.0``). The Makefile's commit and
build date are left out: a module from the proxy has no commit, and a date would make
two builds of one pin differ.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from unkai.toolchain._gobuild import GoTool
from unkai.toolchain._kubernetes import _ensure, _reported_version
from unkai.toolchain._paths import toolchain_dir
from unkai.toolchain._pins import pinned_version
from unkai.toolchain._pulumi import Found

METRICS_SERVER_MODULE = "sigs.k8s.io/metrics-server"
"""The Go module ``metrics-server`` is built from, its main package at ``cmd/metrics-server``."""


def metrics_server_version() -> str:
    """The pinned metrics-server version, without ``v`` (``0.8.0``)."""
    return pinned_version("metrics-server")


def metrics_server_tool(version: str) -> GoTool:
    """The Go build of ``metrics-server`` at ``version`` (no ``v``), its version stamped.

    Static, without cgo, like every tool of :func:`unkai.toolchain.build`.
    """
    return GoTool(
        name="metrics-server",
        module=METRICS_SERVER_MODULE,
        version=f"v{version}",
        binaries=((f"{METRICS_SERVER_MODULE}/cmd/metrics-server", "metrics-server"),),
        ldflags=f"-s -w -X k8s.io/client-go/pkg/version.gitVersion=v{version}",
    )


def metrics_server_bin(version: str | None = None) -> Path:
    """The cache folder of ``metrics-server`` at ``version`` (default: pinned)."""
    return toolchain_dir("metrics-server", version or metrics_server_version()) / "bin"


def _found(version: str) -> Found | None:
    binary = metrics_server_bin(version) / "metrics-server"
    if _reported_version([str(binary), "--version"]) != version:
        return None
    return Found(binary, version, "built from the Go module")


def find_metrics_server(version: str | None = None) -> Path | None:
    """The cached ``metrics-server`` when it is there and reports ``version`` (default: pinned).

    A binary without the stamp reports client-go's ``v0.0.0-master`` and does not count.
    """
    found = _found(version or metrics_server_version())
    return found.path if found is not None else None


def ensure_metrics_server(*, say: Callable[[str], None] = lambda _: None) -> Path:
    """Return the pinned ``metrics-server``, building it when the cache lacks it.

    Side effects:
        A cold build downloads ``sigs.k8s.io/metrics-server`` and its dependencies from
        the Go module proxy and compiles for about four minutes on two cores.

    Raises:
        CommandFailed: the build failed.
        ToolchainError: the build succeeded but ``metrics-server`` reports another version.
    """
    version = metrics_server_version()
    tool = metrics_server_tool(version)
    return _ensure("metrics-server", version, _found, tool, metrics_server_bin(version), say).path
