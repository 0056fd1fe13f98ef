"""The processes of a killed run are found by their run marker and stopped; a live run's are not."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from unkai.toolchain import RUN_ENV, Run, detached_env, leftovers, stop_leftovers, this_run


def sleeper(marker: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], env={**os.environ, RUN_ENV: marker})


def dead_run(root: Path, stack: str) -> Run:
    child = subprocess.Popen(["true"])
    child.wait()
    return Run(str(root.resolve()), stack, child.pid, 1)


def test_a_marker_reads_back_as_its_run_and_garbage_as_none(tmp_path: Path):
    run = this_run(tmp_path, "local")
    assert Run.parse(run.marker()) == run
    assert run.alive()
    assert Run.parse("root=/x;stack=local") is None
    assert Run.parse("not a marker") is None


def test_leftovers_of_a_dead_run_are_found_and_stopped(tmp_path: Path):
    orphan = sleeper(dead_run(tmp_path, "local").marker())
    ours = sleeper(this_run(tmp_path, "local").marker())  # its unkai (this process) runs
    other_stack = sleeper(dead_run(tmp_path, "prod").marker())
    other_project = sleeper(dead_run(tmp_path / "elsewhere", "local").marker())
    children = [orphan, ours, other_stack, other_project]
    try:
        found = leftovers(tmp_path, "local")
        assert [p.pid for p in found] == [orphan.pid]
        assert str(found[0]) == f"sleep 60 (pid {orphan.pid})"
        stopped = stop_leftovers(tmp_path, "local")
        assert [p.pid for p in stopped] == [orphan.pid]
        assert orphan.wait(timeout=10) == -9
        assert all(child.poll() is None for child in children[1:])
        assert leftovers(tmp_path, "local") == []
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_a_detached_process_carries_no_marker():
    env = {"PATH": "/bin", RUN_ENV: "root=/x;stack=s;pid=1;start=1"}
    assert detached_env(env) == {"PATH": "/bin"}


def test_start_time_tells_a_reused_pid_from_the_run(tmp_path: Path):
    run = this_run(tmp_path, "local")
    assert not Run(run.root, run.stack, run.pid, run.start + 1).alive()
