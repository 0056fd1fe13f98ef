"""A stack's lock: a dead holder's is released, a live holder is named, waited for on ask."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from unkai.cli._workspace import _alive, release_dead_lock
from unkai.errors import UnkaiError

PROJECT = "acme"
STACK = "local"


def test_a_running_process_is_alive_and_a_zombie_is_not():
    assert _alive(os.getpid())
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while _alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # exited but not reaped yet: a zombie
    try:
        assert not _alive(child.pid)
    finally:
        child.wait()


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    return tmp_path


def stack() -> SimpleNamespace:
    """What release_dead_lock reads of a stack: its name and its project's."""
    settings = SimpleNamespace(name=PROJECT)
    return SimpleNamespace(name=STACK, workspace=SimpleNamespace(project_settings=lambda: settings))


def lock(backend: Path, pid: int, host: str | None = None) -> Path:
    folder = backend / ".pulumi" / "locks" / "organization" / PROJECT / STACK
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pid}.json"
    holder = {"pid": pid, "hostname": host or socket.gethostname(), "timestamp": "T0"}
    path.write_text(json.dumps(holder))
    return path


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def engine_like(seconds: float) -> subprocess.Popen[bytes]:
    """A live process whose command line names ``up``, like the engine's."""
    code = f"import time; time.sleep({seconds})"
    return subprocess.Popen([sys.executable, "-c", code, "up", "--yes"])


def test_no_lock_releases_nothing(backend: Path):
    assert release_dead_lock(stack(), backend) is None


def test_the_lock_of_a_dead_holder_is_released_and_said(backend: Path):
    pid = dead_pid()
    path = lock(backend, pid)
    said = release_dead_lock(stack(), backend)
    assert not path.exists()
    assert said == f"released the lock of an interrupted run of {STACK} (pid {pid}, T0)"


def test_a_live_holder_is_named_with_its_operation_and_kept(backend: Path):
    holder = engine_like(60)
    try:
        path = lock(backend, holder.pid)
        with pytest.raises(UnkaiError) as caught:
            release_dead_lock(stack(), backend)
        assert str(caught.value) == (
            f"another `up` of {STACK} is running (pid {holder.pid} since T0);"
            " wait for it to end, or pass --wait"
        )
        assert path.exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_holder_on_another_machine_counts_as_live(backend: Path):
    lock(backend, dead_pid(), host="elsewhere")
    with pytest.raises(UnkaiError, match=r"on elsewhere since T0"):
        release_dead_lock(stack(), backend)


def test_wait_waits_for_the_holder_then_releases_its_lock(backend: Path):
    holder = engine_like(1.0)
    path = lock(backend, holder.pid)
    said: list[str] = []
    reaper = threading.Thread(target=holder.wait)  # so the exited holder is not a zombie
    reaper.start()
    start = time.monotonic()
    released = release_dead_lock(stack(), backend, wait=True, say=said.append, poll=0.1)
    reaper.join()
    assert time.monotonic() - start >= 0.5
    assert not path.exists()
    assert released is not None and f"(pid {holder.pid}, T0)" in released
    assert said == [
        f"another `up` of {STACK} is running (pid {holder.pid} since T0): waiting for it to end"
    ]
