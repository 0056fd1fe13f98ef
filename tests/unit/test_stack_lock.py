"""A stack lock's holder counts as alive only while it really runs (a zombie does not)."""

from __future__ import annotations

import os
import subprocess
import time

from unkai.cli._workspace import _alive


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
