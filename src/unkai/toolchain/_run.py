"""Running external commands with errors that say what failed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from unkai.errors import CommandFailed


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    log: Path | None = None,
) -> str:
    """Run ``argv`` to completion and return its combined output.

    Args:
        argv: The command.
        cwd: Working directory.
        env: Extra environment variables, added to the current environment.
        timeout: Seconds before the command is killed.
        log: When given, the output is also written to this file.

    Raises:
        CommandFailed: the command exited non-zero, timed out or could not start.
    """
    full_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        out = err.output if isinstance(err.output, str) else (err.output or b"").decode()
        raise CommandFailed(argv, -1, f"timed out after {timeout} s\n{out}") from err
    except OSError as err:
        raise CommandFailed(argv, -1, str(err)) from err
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(proc.stdout, encoding="utf-8")
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stdout)
    return proc.stdout


def which(name: str, *, extra: Sequence[Path] = ()) -> Path | None:
    """Find ``name`` in ``extra`` folders first, then on PATH (plus the sbin folders)."""
    for folder in extra:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin"
    found = shutil.which(name, path=path)
    return Path(found) if found else None
