"""Bad input fails at preview with a clear error, before anything is created."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import libvirt
import pytest

ROOT = Path(__file__).resolve().parents[2]
UNKAI = str(Path(sys.executable).parent / "unkai")


def _domains() -> set[str]:
    conn = libvirt.open("qemu:///system")
    try:
        return {d.name() for d in conn.listAllDomains()}
    finally:
        conn.close()


def _refused_preview(project: Path, env: str) -> str:
    """What ``unkai preview <env>`` of ``project`` printed; it must have failed."""
    proc = subprocess.run(
        [UNKAI, "preview", env, "--root", str(project)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "environments", tmp_path / "environments")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    shutil.copy(ROOT / "unkai.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "instances:\n  db:\n    machine_type: e2-gigantic\n",
            [
                "environments/broken.yaml:4: instances.db.machine_type: unknown machine type"
                " (got 'e2-gigantic'); allowed: one of e2-medium,",
            ],
        ),
        (
            "instances:\n  db:\n    machine_type: n2-highmem-4\n",
            ["cannot place db", "memory", "larger than any host", "14336 MiB"],
        ),
    ],
    ids=["unknown-machine-type", "more-memory-than-any-host"],
)
def test_preview_refuses_bad_input_and_creates_nothing(project, override, expected):
    (project / "environments" / "broken.yaml").write_text(f"extends: local\n{override}")
    before = _domains()
    out = _refused_preview(project, "broken")
    for text in expected:
        assert text in out, out
    assert "Traceback" not in out
    assert not (project / ".unkai" / "state").exists(), "a stack was created"
    assert _domains() == before


def test_a_template_that_does_not_render_stops_the_preview_before_a_stack_is_made(project):
    # The project's own meta-data template, using a value no instance gives it.
    override = project / "templates" / "cloud-init" / "meta-data.j2"
    override.parent.mkdir(parents=True)
    override.write_text("instance-id: {{ instance.no_such_field }}\n")
    before = _domains()
    out = _refused_preview(project, "local")
    assert "meta-data.j2" in out and "no_such_field" in out, out
    assert "Traceback" not in out
    # The render runs while an existing stack would be selected (which initialises the
    # state backend's folder); no stack is made.
    stacks = project / ".unkai" / "state" / ".pulumi" / "stacks"
    assert not [p for p in stacks.rglob("*") if p.is_file()], "a stack was created"
    assert _domains() == before
