"""Running the commands drivers need, with errors that carry their output."""

from __future__ import annotations

from unkai.toolchain._run import run, which

__all__ = ["run", "which"]
