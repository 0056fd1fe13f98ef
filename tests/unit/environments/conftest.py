"""Fixtures of the environment tests: a throwaway project holding environment files."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from env_helpers import REPO, SHIPPED, Write


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project root (``unkai.toml``) with an ``environments/`` folder."""
    (tmp_path / "environments").mkdir()
    (tmp_path / "unkai.toml").write_text('[project]\nname = "test"\n')
    return tmp_path


@pytest.fixture
def shipped(project: Path) -> Path:
    """A project root holding a copy of the repository's example environments."""
    for name in SHIPPED:
        shutil.copy(REPO / "environments" / f"{name}.yaml", project / "environments")
    return project


@pytest.fixture
def write(project: Path) -> Write:
    """Write ``environments/<name>.yaml`` (dedented) into the project; return its path."""

    def _write(name: str, text: str) -> Path:
        path = project / "environments" / f"{name}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write
