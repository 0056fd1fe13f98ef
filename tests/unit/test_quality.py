"""The house rules that tools can check: layering, lint, types (STYLE.md #1, #6, #15)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([str(BIN / "lint-imports")], id="import-layers"),
        pytest.param([str(BIN / "ruff"), "check", "src"], id="ruff"),
        pytest.param([str(BIN / "mypy")], id="mypy-strict"),
    ],
)
def test_tool_is_clean(argv):
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
