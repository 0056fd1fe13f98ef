"""The ``unkai`` command. Thin: every subcommand calls into the layers below."""

from __future__ import annotations

from unkai.cli.app import app, main

__all__ = ["app", "main"]
