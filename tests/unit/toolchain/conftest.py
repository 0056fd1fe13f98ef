"""What the toolchain's cache tests share: a cache of their own and fake built binaries."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest


def _fake_binary(folder: Path, name: str, output: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def fake_binary() -> Callable[[Path, str, str], Path]:
    """Makes an executable ``folder/name`` that prints ``output``, as a built tool does when
    asked its version: ``fake_binary(folder, name, output)``."""
    return _fake_binary


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``<cache>/toolchain`` of an empty cache of the test's own."""
    monkeypatch.setenv("UNKAI_CACHE_DIR", str(tmp_path))
    return tmp_path / "toolchain"
