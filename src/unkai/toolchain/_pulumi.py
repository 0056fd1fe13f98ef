"""The Pulumi engine: the ``pulumi`` CLI at the version of the pinned Python SDK.

The CLI is used from PATH when that version is there; otherwise it is built from the
pinned Go module into ``<cache>/toolchain/pulumi-<version>/bin`` (see ``_gobuild``).

The Python language host (``pulumi-language-python``) is used from PATH when its
version matches too. Its Go module is not served by the module proxy this project can
reach, so when it is absent unkai installs its own implementation of Pulumi's
``LanguageRuntime`` protocol (:mod:`unkai.langhost`) into the venv under that name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from unkai._files import atomic_write
from unkai.errors import CommandFailed
from unkai.toolchain._gobuild import GoTool, build
from unkai.toolchain._paths import pulumi_version, toolchain_dir, venv_bin
from unkai.toolchain._run import run, which

LANGHOST_MARKER = "# unkai language host"


def pulumi_tool(version: str) -> GoTool:
    """The Go build of the pulumi CLI at ``version`` (without the ``v``)."""
    v = f"v{version}"
    return GoTool(
        name="pulumi",
        module="github.com/pulumi/pulumi/pkg/v3",
        version=v,
        binaries=(("github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", "pulumi"),),
        requires=(("github.com/pulumi/pulumi/sdk/v3", v),),
        ldflags=f"-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={v}",
    )


@dataclass(frozen=True)
class Found:
    """A tool found on this machine: where, at which version, and where from."""

    path: Path
    version: str
    origin: str


def _version_of(binary: Path) -> str | None:
    try:
        out = run([str(binary), "version"], timeout=60)
    except CommandFailed:
        return None
    match = re.search(r"v?(\d+\.\d+\.\d+)", out)
    return match.group(1) if match else None


def cached_pulumi(version: str | None = None) -> Path:
    """Where the cache keeps the pulumi CLI of ``version`` (built or not)."""
    version = version or pulumi_version()
    return toolchain_dir("pulumi", version) / "bin" / "pulumi"


def find_pulumi(version: str | None = None, *, verify: bool = True) -> Found | None:
    """The pulumi CLI at the pinned version: from PATH when it matches, else the cache.

    With ``verify=False`` (every engine run), the CLI that unkai built into the cache is
    taken without running it: its folder is named by its version, and ``pulumi
    version`` costs 0.13 s a call. ``unkai doctor`` and the build verify.
    """
    version = version or pulumi_version()
    cached = cached_pulumi(version)
    if not verify and cached.is_file() and os.access(cached, os.X_OK):
        return Found(cached, version, "built from the Go module")
    on_path = which("pulumi")
    if (
        on_path is not None
        and on_path.resolve() != cached.resolve()
        and _version_of(on_path) == version
    ):
        return Found(on_path, version, "PATH")
    if cached.is_file() and _version_of(cached) == version:
        return Found(cached, version, "built from the Go module")
    return None


def ensure_pulumi(*, say: Callable[[str], None] = lambda _: None) -> Found:
    """Return the pinned pulumi CLI, building it when neither PATH nor the cache has it."""
    version = pulumi_version()
    found = find_pulumi(version)
    if found is not None:
        return found
    say(f"pulumi {version} not found: building it from the Go module (a few minutes)")
    build(pulumi_tool(version), toolchain_dir("pulumi", version), say=say)
    found = find_pulumi(version)
    if found is None:  # pragma: no cover - the build just succeeded
        raise CommandFailed([str(cached_pulumi(version)), "version"], -1, "built but not runnable")
    return found


def langhost_script(python: Path) -> str:
    """The ``pulumi-language-python`` executable that serves unkai's language host."""
    return f'#!/bin/sh\n{LANGHOST_MARKER}\nexec "{python}" -m unkai.langhost "$@"\n'


def find_langhost(version: str | None = None) -> Found | None:
    """The Python language host the engine will use.

    PATH's when its version matches, else unkai's in the venv.
    """
    version = version or pulumi_version()
    ours = venv_bin() / "pulumi-language-python"
    for candidate in (which("pulumi-language-python"), ours):
        if candidate is None or not candidate.is_file():
            continue
        if LANGHOST_MARKER in candidate.read_text(errors="replace")[:200]:
            return Found(candidate, version, "unkai.langhost")
        if _version_of(candidate) == version:
            return Found(candidate, version, "PATH")
    return None


def ensure_langhost() -> Found:
    """Install unkai's language host into the venv unless a matching real one is on PATH."""
    found = find_langhost()
    if found is not None:
        return found
    target = venv_bin() / "pulumi-language-python"
    atomic_write(target, langhost_script(venv_bin() / "python"), mode=0o755)
    return Found(target, pulumi_version(), "unkai.langhost")


def link_into_venv(pulumi: Path) -> None:
    """Make ``pulumi`` runnable from the venv's ``bin`` (so an activated venv has it all)."""
    link = venv_bin() / "pulumi"
    if link.is_symlink() and link.resolve() == pulumi.resolve():
        return
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(pulumi)


def engine_env() -> dict[str, str]:
    """Environment for running the engine.

    The venv (provider, language host) and the pinned CLI come first on PATH; no
    update checks.
    """
    pulumi = cached_pulumi()
    paths = [str(venv_bin()), str(pulumi.parent)]
    return {
        "PATH": os.pathsep.join([*paths, os.environ.get("PATH", "")]),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
    }
