"""Ctrl-C during ``unkai up``: the engine stops as it says, unkai says what it left in a
sentence (no traceback), and the next ``up`` finishes the work with no manual step.

The project is one made by ``unkai init``, with an environment of one container image
whose build sleeps: the interrupt comes while the engine is creating it. The SIGINT goes
to the command's process group, as a terminal's Ctrl-C (and ``timeout -s INT``) does.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from commands import ok, run

pytestmark = pytest.mark.integration

UNKAI = Path(sys.executable).parent / "unkai"
ENV = "slow"
BUILDING = re.compile(r"ContainerImage slow-slow creating .*RUN echo")
"""The engine's line for the build step that sleeps."""
LEAKS = ("Traceback", "Exception in thread", "KeyboardInterrupt", "<class")

DOCKERFILE = """\
{% extends "docker/base.Dockerfile.j2" %}
{% block body %}
RUN echo {{ variables.token }} && sleep {{ variables.seconds }}
{% endblock %}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("interrupt") / "cloud"
    subprocess.run([str(UNKAI), "init", str(root)], check=True, capture_output=True)
    (root / "templates" / "docker" / "slow.Dockerfile.j2").write_text(DOCKERFILE)
    yield root
    ok(run(UNKAI, "destroy", ENV, "--root", root, cwd=root, timeout=600))


def _slow_image(root: Path, seconds: int) -> None:
    """The environment: one image whose build sleeps ``seconds`` (a new token each time)."""
    doc = {
        "description": "One container image whose build takes a while.",
        "zones": {"main": {}},
        "container_images": {
            "slow": {
                "dockerfile_template": "slow.Dockerfile.j2",
                "variables": {"token": uuid.uuid4().hex, "seconds": str(seconds)},
            }
        },
    }
    (root / "environments" / f"{ENV}.yaml").write_text(yaml.safe_dump(doc))


def _interrupted_up(root: Path, times: int) -> tuple[int, str]:
    """``unkai up`` given ``times`` SIGINTs a second apart once the slow build runs."""
    proc = subprocess.Popen(
        [str(UNKAI), "up", ENV, "--root", str(root)], cwd=root, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    building = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if BUILDING.search(line):
                building.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert building.wait(300), "".join(lines)[-3000:]
    for _ in range(times):
        time.sleep(2.0)
        os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=300)
    reader.join(30)
    assert proc.stdout is not None
    proc.stdout.close()
    return code, "".join(lines)


def test_a_ctrl_c_lets_the_engine_finish_what_it_began_and_says_so(project: Path):
    _slow_image(project, seconds=10)
    code, said = _interrupted_up(project, times=1)
    assert code == 130, said[-3000:]
    assert "^C received; cancelling" in said, said[-3000:]
    assert not [leak for leak in LEAKS if leak in said], said[-3000:]
    assert said.rstrip().endswith(
        "error: interrupted: the engine finished the steps under way, saved the state and"
        " stopped; the next up does the rest"
    ), said[-3000:]
    # The build under way finished and its image was recorded: the stack's lock is free,
    # and the next up makes nothing again.
    assert "Successfully built" in said, said[-3000:]
    again = ok(run(UNKAI, "up", ENV, "--root", project, cwd=project, timeout=600))
    assert "released the lock" not in again, again[-3000:]
    assert not re.search(r"ContainerImage slow-slow creating", again), again[-3000:]
    ok(run(UNKAI, "preview", ENV, "--expect-no-changes", "--root", project, cwd=project))


def test_a_second_ctrl_c_stops_the_engine_at_once_and_the_next_up_finishes(project: Path):
    _slow_image(project, seconds=20)
    code, said = _interrupted_up(project, times=2)
    assert code == 130, said[-3000:]
    assert "^C received; terminating" in said, said[-3000:]
    assert not [leak for leak in LEAKS if leak in said], said[-3000:]
    assert said.rstrip().endswith(
        "error: interrupted twice: the engine stopped at once, and steps under way may be"
        " unfinished; the next up finds and finishes them"
    ), said[-3000:]
    assert "Successfully built" not in said, said[-3000:]
    again = ok(run(UNKAI, "up", ENV, "--root", project, cwd=project, timeout=600))
    # The create the engine abandoned is pending in the state: the next up reads the
    # real world back for it, clears it and makes the image.
    assert f"an interrupted run of {ENV} left 1 operation(s) pending (creating)" in again
    assert "Successfully built" in again, again[-3000:]
    ok(run(UNKAI, "preview", ENV, "--expect-no-changes", "--root", project, cwd=project))
