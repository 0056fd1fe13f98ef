"""The processes of one run of unkai on a stack, findable after that run was killed.

Every engine unkai starts for a stack carries ``UNKAI_RUN`` in its environment: the
project's folder, the stack, and the pid and start time of the ``unkai`` process that
started it. The engine passes its environment to the provider plugin, and the plugin to
everything it runs (Ansible and its SSH connections, ``qemu-img``, image builds). When
``unkai up`` is killed, those run on in their own process groups, still working on the
stack; the next run of the same stack finds them by that variable — their ``unkai`` is
gone — and stops them before it starts.

Processes meant to outlive a run (a control plane, the daemons unkai starts) are started
without the variable (:func:`detached_env`): they are owned by what they serve, not by a run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RUN_ENV = "UNKAI_RUN"
"""The environment variable that marks the processes of one run of unkai on a stack."""


@dataclass(frozen=True)
class Run:
    """One run of unkai on a stack: who started it, for which project and stack."""

    root: str
    stack: str
    pid: int
    start: int
    """The process's start time (clock ticks since boot): a pid alone can be reused."""

    def marker(self) -> str:
        """The value of :data:`RUN_ENV` for the processes of this run."""
        return f"root={self.root};stack={self.stack};pid={self.pid};start={self.start}"

    @classmethod
    def parse(cls, value: str) -> Run | None:
        """The run a marker names; None for a value that is not one (pure)."""
        fields = dict(part.partition("=")[::2] for part in value.split(";"))
        try:
            return cls(fields["root"], fields["stack"], int(fields["pid"]), int(fields["start"]))
        except (KeyError, ValueError):
            return None

    def alive(self) -> bool:
        """Whether the ``unkai`` process of this run still runs."""
        return process_start(self.pid) == self.start


@dataclass(frozen=True)
class Leftover:
    """A process of a run whose ``unkai`` is gone."""

    pid: int
    command: str
    run: Run

    def __str__(self) -> str:
        return f"{self.command} (pid {self.pid})"


def this_run(root: Path, stack: str) -> Run:
    """The run of this process on ``stack`` of the project at ``root``."""
    pid = os.getpid()
    return Run(str(root.resolve()), stack, pid, process_start(pid) or 0)


def detached_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a process that must outlive the run that starts it: no run marker."""
    return {k: v for k, v in env.items() if k != RUN_ENV}


def leftovers(root: Path, stack: str) -> list[Leftover]:
    """The live processes of earlier runs on ``stack`` of ``root`` whose ``unkai`` is gone.

    Only processes this user may read the environment of are seen (all of them as root).
    """
    wanted = str(root.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        marker = _variable(environ, RUN_ENV)
        run = Run.parse(marker) if marker is not None else None
        if run is None or run.root != wanted or run.stack != stack or run.alive():
            continue
        pid = int(entry.name)
        if process_start(pid) is None:  # gone meanwhile, or a zombie
            continue
        found.append(Leftover(pid, _command(pid), run))
    return sorted(found, key=lambda p: p.pid)


def stop_leftovers(root: Path, stack: str, *, timeout: float = 10.0) -> list[Leftover]:
    """Kill what :func:`leftovers` finds and wait until it is gone.

    They are workers of a run that no longer exists; nothing waits for their results, so
    they get ``SIGKILL``: a graceful end would only let them go on changing the stack.

    Returns:
        What was stopped.
    """
    found = leftovers(root, stack)
    for process in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(process_start(p.pid) for p in found):
        time.sleep(0.05)
    return found


def _variable(environ: bytes, name: str) -> str | None:
    prefix = name.encode() + b"="
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot); None when it is gone or a zombie.

    A killed process whose parent died stays a zombie where PID 1 does not reap (in a
    container): it runs nothing, holds no lock and must count as gone. With the start
    time, a pid reused by another process is told from the one recorded.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _command(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [Path(a.decode(errors="replace")).name for a in argv[:3] if a]
    return " ".join(words) or "?"
