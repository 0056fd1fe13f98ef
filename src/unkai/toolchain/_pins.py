"""The pinned tool versions of ``toolchain.toml``, package data of ``unkai.toolchain``.

Read by :mod:`unkai._pins`, which every layer may import; the toolchain re-exports it.
"""

from __future__ import annotations

from unkai._pins import PINS_FILE, pinned_version, pins

__all__ = ["PINS_FILE", "pinned_version", "pins"]
