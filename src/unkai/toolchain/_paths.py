"""Where the toolchain lives: the project, its venv, the cache outside the repo."""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path


def project_root() -> Path:
    """The root of the unkai project around the current directory (see ``find_project``).

    Raises:
        ConfigError: The current directory is not inside a project; says where it looked.
    """
    from unkai.toolchain._project import find_project

    return find_project().root


def cache_root() -> Path:
    """The per-user cache of built tools, outside any checkout (``$UNKAI_CACHE_DIR``)."""
    explicit = os.environ.get("UNKAI_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "unkai"


def toolchain_dir(name: str, version: str) -> Path:
    """The cache folder of one tool at one version: ``<cache>/toolchain/<name>-<version>``."""
    return cache_root() / "toolchain" / f"{name}-{version}"


def pulumi_version() -> str:
    """The pinned pulumi version: that of the installed pulumi Python SDK.

    The CLI and the language host must match the SDK, so the SDK pin in
    ``pyproject.toml`` is the single source of truth.
    """
    return metadata.version("pulumi")


def venv_bin() -> Path:
    """The ``bin`` folder of the interpreter running unkai (the project venv)."""
    return Path(sys.executable).parent


def state_dir(root: Path | None = None) -> Path:
    """Pulumi's file backend of the ``local`` environment: ``.unkai/state`` in the project."""
    return (root or project_root()) / ".unkai" / "state"


def log_dir() -> Path:
    """Where daemons started by unkai write their logs."""
    return cache_root() / "logs"
