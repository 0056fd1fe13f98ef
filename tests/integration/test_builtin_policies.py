"""unkai's built-in policy pack, turned on by an environment file and run by the engine.

A project made by ``unkai init`` gets an environment whose file turns policies on; the
engine runs the pack in the policy venv through unkai's language host. A mandatory
violation stops ``preview`` and ``up`` before anything is made and names the resource,
the environment file and the key; an advisory one is reported and the preview goes on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

UNKAI = Path(sys.executable).parent / "unkai"


def _unkai(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(UNKAI), *args, "--root", str(root)],
        cwd=root, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("policies") / "cloud"
    subprocess.run([str(UNKAI), "init", str(root)], check=True, capture_output=True)
    return root


def _strict(root: Path, level: str) -> None:
    """``strict``: local's VM with a password typed into its user_data."""
    doc = {
        "extends": "local",
        "instances": {"app": {"user_data": {"password": "hunter2-typed-in-clear"}}},
        "policies": {"secret-values": level, "non-root-with-limits": "advisory"},
    }
    (root / "environments" / "strict.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_mandatory_violation_stops_preview_and_up_naming_file_and_key(project):
    _strict(project, "mandatory")
    preview = _unkai(project, "preview", "strict")
    shown = preview.stdout + preview.stderr
    assert preview.returncode != 0, shown[-3000:]
    assert "[mandatory]  secret-values  (unkai:compute:Instance: strict-app)" in shown, shown
    assert "user_data password has a secret's name and a plain value" in shown, shown
    assert "(environments/strict.yaml: instances.app)" in shown, shown
    assert "Traceback" not in shown
    up = _unkai(project, "up", "strict")
    shown = up.stdout + up.stderr
    assert up.returncode != 0, shown[-3000:]
    assert "checking the policies of 1 pack(s) before anything changes" in shown, shown
    assert "secret-values" in shown
    state = _unkai(project, "drift", "strict", "--json")  # nothing was made
    assert yaml.safe_load(state.stdout)["checked"] == {}, state.stdout + state.stderr


def test_an_advisory_violation_is_reported_and_the_preview_goes_on(project):
    _strict(project, "advisory")
    preview = _unkai(project, "preview", "strict")
    shown = preview.stdout + preview.stderr
    assert preview.returncode == 0, shown[-3000:]
    assert "[advisory]  secret-values  (unkai:compute:Instance: strict-app)" in shown, shown


def test_an_unknown_policy_or_level_is_refused_naming_file_and_key(project):
    doc = {"extends": "local", "policies": {"secret-values": "strict"}}
    (project / "environments" / "typo.yaml").write_text(yaml.safe_dump(doc))
    proc = _unkai(project, "preview", "typo")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "typo.yaml" in proc.stderr and "policies.secret-values" in proc.stderr, proc.stderr
    assert "'advisory', 'mandatory' or 'disabled'" in proc.stderr, proc.stderr
