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
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from commands import fault_when, ok, run

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


def _interrupted_up(root: Path, *, seconds: int, times: int, engine: str, sentence: str) -> str:
    """``unkai up`` of a build of ``seconds``, given ``times`` SIGINTs two seconds apart
    once the build runs: it exits 130, the engine says ``engine`` and unkai ``sentence``
    last, with no traceback. Returns what it printed."""
    _slow_image(root, seconds)

    def ctrl_c(group: int) -> None:
        for sent in range(times):
            time.sleep(2.0 if sent else 0.0)
            os.killpg(group, signal.SIGINT)

    ended = fault_when(
        UNKAI, "up", ENV, "--root", root, cwd=root, pattern=BUILDING, delay=2.0,
        fault=ctrl_c, timeout=300,
    )  # fmt: skip
    said = ended.stdout
    assert ended.returncode == 130, said[-3000:]
    assert engine in said, said[-3000:]
    assert not [leak for leak in LEAKS if leak in said], said[-3000:]
    assert said.rstrip().endswith(f"error: {sentence}"), said[-3000:]
    return said


ONCE = (
    "interrupted: the engine finished the steps under way, saved the state and stopped;"
    " the next up does the rest"
)
TWICE = (
    "interrupted twice: the engine stopped at once, and steps under way may be unfinished;"
    " the next up finds and finishes them"
)


@pytest.mark.parametrize(
    ("times", "seconds", "engine", "sentence"),
    [(1, 10, "^C received; cancelling", ONCE), (2, 20, "^C received; terminating", TWICE)],
    ids=["once-the-build-under-way-finishes", "twice-the-engine-stops-at-once"],
)
def test_a_ctrl_c_is_said_in_a_sentence_and_the_next_up_finishes_the_work(
    project: Path, times: int, seconds: int, engine: str, sentence: str
):
    said = _interrupted_up(project, seconds=seconds, times=times, engine=engine, sentence=sentence)
    again = ok(run(UNKAI, "up", ENV, "--root", project, cwd=project, timeout=600))
    if times == 1:
        # The build under way finished and its image was recorded: the stack's lock is
        # free, and the next up makes nothing again.
        assert "Successfully built" in said, said[-3000:]
        assert "released the lock" not in again, again[-3000:]
        assert not re.search(r"ContainerImage slow-slow creating", again), again[-3000:]
    else:
        # The create the engine abandoned is pending in the state: the next up reads the
        # real world back for it, clears it and makes the image.
        assert "Successfully built" not in said, said[-3000:]
        assert f"an interrupted run of {ENV} left 1 operation(s) pending (creating)" in again
        assert "Successfully built" in again, again[-3000:]
    ok(run(UNKAI, "preview", ENV, "--expect-no-changes", "--root", project, cwd=project))
