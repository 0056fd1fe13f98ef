"""Running commands from the end-to-end tests: timed, no stdin, output kept for the failure."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


@dataclass
class Killed:
    """One run killed on purpose: where, what it was doing, and what it printed."""

    point: str
    in_progress: list[str]
    """The resources the engine had started and not finished when the kill came."""
    output: str


ENGINE_STEP = re.compile(r"^\s*\S+\s+(?P<type>unkai:\w+:\w+)\s+(?P<name>\S+)\s+(?P<step>\w+)")
"""An engine progress line: ``+  unkai:compute:Instance local-db creating (3s)``."""


def in_progress(lines: list[str]) -> list[str]:
    """The resources (``type name``) the engine started and had not finished (pure)."""
    started: dict[str, None] = {}
    for line in lines:
        match = ENGINE_STEP.match(line)
        if match is None:
            continue
        key = f"{match['type']} {match['name']}"
        if match["step"] in ("creating", "updating", "replacing", "deleting"):
            started[key] = None
        elif match["step"] in ("created", "updated", "replaced", "deleted", "failed"):
            started.pop(key, None)
    return list(started)


def kill_when(
    *argv: str | Path,
    cwd: Path,
    points: Mapping[str, tuple[re.Pattern[str], float]] | None = None,
    after: float | None = None,
    timeout: float = 1800,
) -> Killed | None:
    """Run ``argv`` in a process group of its own and SIGKILL the whole group mid-way.

    Either ``points`` — a name for each pattern of an output line and a delay: the group
    is killed ``delay`` seconds after the first line that matches — or ``after``: killed
    that many seconds after it started. None when the command ended before the kill (it
    did its whole work).
    """
    proc = subprocess.Popen(
        [str(a) for a in argv], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    hit: list[tuple[str, float]] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            for name, (pattern, delay) in (points or {}).items():
                if not hit and pattern.search(line):
                    hit.append((name, delay))
                    seen.set()
        seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if after is not None:
        hit.append((f"{after:.0f} s", after))
    elif not seen.wait(timeout) or not hit:
        proc.wait(timeout=60)
        reader.join(10)
        assert proc.stdout is not None
        proc.stdout.close()
        return None
    point, delay = hit[0]
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        pass
    else:  # it finished before the kill
        reader.join(10)
        assert proc.stdout is not None
        proc.stdout.close()
        return None
    _stop(proc, reader)
    print(f"killed {Path(str(argv[0])).name} {' '.join(map(str, argv[1:]))} at {point}")
    return Killed(point, in_progress(lines), "".join(lines))


def fault_when(
    *argv: str | Path,
    cwd: Path,
    pattern: re.Pattern[str],
    delay: float,
    fault: Callable[[int], None],
    timeout: float = 1800,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a process group of its own; ``delay`` seconds after its first line
    matching ``pattern``, call ``fault`` with that group (to stop a daemon, say, or signal
    the group) while it goes on; return how it ended.

    Raises:
        AssertionError: no line matched (the fault never came), or it outlived ``timeout``.
    """
    proc = subprocess.Popen(
        [str(a) for a in argv], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if pattern.search(line):
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    faulted = seen.wait(timeout)
    if faulted:
        time.sleep(delay)
        fault(proc.pid)
    try:
        proc.wait(timeout=timeout)
    finally:
        _stop(proc, reader)
    output = "".join(lines)
    assert faulted, f"no line matched {pattern.pattern}:\n{output[-3000:]}"
    return subprocess.CompletedProcess(proc.args, proc.returncode, output, "")


def _stop(proc: subprocess.Popen[str], reader: threading.Thread) -> None:
    """SIGKILL ``proc``'s process group if it still runs; collect its output reader."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    reader.join(10)
    assert proc.stdout is not None
    proc.stdout.close()
