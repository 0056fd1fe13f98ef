"""Fixtures of the render tests: the sample environment of ``tests/render_fixtures.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from render_fixtures import SAMPLE, sample_environment  # noqa: E402
from unkai.model import Environment  # noqa: E402


@pytest.fixture
def env() -> Environment:
    return sample_environment()


@pytest.fixture
def sample_document() -> dict[str, object]:
    import copy

    return copy.deepcopy(SAMPLE)
