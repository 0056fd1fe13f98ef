"""Where the toolchain lives: the project, its venv, the cache outside the repo."""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path


def project_root() -> Path:
    """The unkai checkout: the nearest parent of the cwd with a ``pyproject.toml`` naming unkai.

    Falls back to the checkout this package was installed from (editable installs).
    """
    for base in (Path.cwd(), *Path.cwd().parents):
        pyproject = base / "pyproject.toml"
        if pyproject.is_file() and 'name = "unkai"' in pyproject.read_text(encoding="utf-8"):
            return base
    return Path(__file__).resolve().parents[3]


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
