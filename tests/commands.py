"""Running commands from the end-to-end tests: timed, no stdin, output kept for the failure."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path


def run(
    *argv: str | Path,
    cwd: Path,
    timeout: float = 1800,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``cwd`` and print how long it took (pytest shows it with ``-s``).

    Standard input is ``/dev/null``: OpenSSH would otherwise switch the suite's shared
    stdin to non-blocking mode.
    """
    start = time.monotonic()
    proc = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        check=False, stdin=subprocess.DEVNULL, env=dict(env) if env is not None else None,
    )  # fmt: skip
    shown = " ".join(Path(str(a)).name if i == 0 else str(a) for i, a in enumerate(argv))
    print(f"{shown}: {time.monotonic() - start:.1f} s")
    return proc


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    """The command's output; a failure shows the end of its output and errors."""
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def clean_env() -> dict[str, str]:
    """This process's environment without the venv's own variables (for another venv)."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
