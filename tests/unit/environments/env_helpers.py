"""Constants the environment tests share (a module of its own: conftest is not importable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SHIPPED = ("base", "dev", "local", "prod", "staging")

Write = Callable[[str, str], Path]
