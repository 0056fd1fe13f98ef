"""The pinned tool versions of ``toolchain/toolchain.toml``, readable from every layer.

The pins are unkai's, not a project's: a wheel carries them, and every project that
uses this unkai builds and runs the same tools. Reading them is pure (one package data
file), so the environments loader can refuse a version the toolchain cannot build
without importing the toolchain.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from unkai.errors import ToolchainError

PINS_FILE = "toolchain.toml"

PINS_DIR = Path(__file__).resolve().parent / "toolchain"
"""Where unkai's own ``toolchain.toml`` is."""


def pins(root: Path | None = None) -> dict[str, Any]:
    """The parsed ``toolchain.toml`` in ``root`` (default: unkai's own, :data:`PINS_DIR`).

    Raises:
        ToolchainError: the file is missing or is not valid TOML.
    """
    path = (root or PINS_DIR) / PINS_FILE
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ToolchainError(f"cannot read the pinned versions in {path}: {err}") from err


def pinned_version(tool: str, *, root: Path | None = None) -> str:
    """The version ``toolchain.toml`` pins for ``tool`` (``[tool] version = "..."``).

    Raises:
        ToolchainError: the file has no version for ``tool``.
    """
    table = pins(root).get(tool)
    version = table.get("version") if isinstance(table, dict) else None
    if not isinstance(version, str) or not version:
        raise ToolchainError(f"{PINS_FILE} pins no version for {tool!r} ([{tool}] version = ...)")
    return version
