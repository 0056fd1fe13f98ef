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


def _preview(root: Path, env: str, doc: dict | None = None) -> tuple[int, str]:
    """``unkai preview env`` (its file written from ``doc`` first): status and output."""
    if doc is not None:
        (root / "environments" / f"{env}.yaml").write_text(yaml.safe_dump(doc))
    proc = _unkai(root, "preview", env)
    return proc.returncode, proc.stdout + proc.stderr


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
    doc = {"extends": "local", "policies": {"secret-valus": "mandatory"}}
    (project / "environments" / "typo.yaml").write_text(yaml.safe_dump(doc))
    proc = _unkai(project, "preview", "typo")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "policies.secret-valus: no policy" in proc.stderr, (
        proc.stderr
    )  # the value: a secret's key
    assert "allowed: secret-values, non-root-with-limits" in proc.stderr, proc.stderr
    assert "<pack>/<policy>" in proc.stderr, proc.stderr


def test_a_zone_without_the_headroom_asked_for_stops_the_preview(project):
    doc = {
        "extends": "local",
        "policies": {"zone-headroom": "mandatory"},
        "settings": {"zone_headroom_percent": 95},  # the VM leaves 93-94 % of zone main free
    }
    status, shown = _preview(project, "tight", doc)
    assert status != 0, shown[-3000:]
    assert "zone-headroom" in shown, shown
    assert "zone main keeps 94 % of its 16 schedulable vCPUs free, under the 95 %" in shown, shown
    assert "(environments/tight.yaml: settings.zone_headroom_percent)" in shown, shown
    doc["settings"] = {"zone_headroom_percent": "most"}
    status, shown = _preview(project, "tight", doc)
    assert status == 2, shown
    assert "settings.zone_headroom_percent" in shown and "a number from 0 to 100" in shown, shown


PROJECT_PACK = """\
from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy


def short_names(args, report_violation):
    if args.resource_type == "unkai:compute:Instance" and len(args.name) > 8:
        report_violation(f"{args.name} is longer than 8 characters")


PolicyPack(
    name="acme-names",
    policies=[
        ResourceValidationPolicy(
            name="short-names", description="VM names are short.",
            enforcement_level=EnforcementLevel.ADVISORY, validate=short_names,
        ),
    ],
)
"""


def test_the_project_s_own_packs_in_policies_run_without_being_named(project):
    from unkai.toolchain import ensure_policy_venv

    pack = project / "policies" / "names"
    pack.mkdir(parents=True)
    (pack / "__main__.py").write_text(PROJECT_PACK)
    (pack / "PulumiPolicy.yaml").write_text(
        f"runtime:\n  name: python\n  options:\n    virtualenv: {ensure_policy_venv()}\n"
    )
    try:
        status, shown = _preview(project, "local")
        assert status == 0, shown[-3000:]
        assert "acme-names" in shown and "local-app is longer than 8 characters" in shown, shown
        # An environment makes the pack's advisory policy mandatory: <pack>/<policy>.
        doc = {"extends": "local", "policies": {"names/short-names": "mandatory"}}
        status, shown = _preview(project, "strict-names", doc)
        assert status != 0, shown[-3000:]
        assert "[mandatory]  short-names" in shown, shown
        assert "strict-names-app is longer than 8 characters" in shown, shown
        doc["policies"] = {"names/short-names": "disabled"}
        status, shown = _preview(project, "strict-names", doc)
        assert status == 0 and "longer than 8 characters" not in shown, shown[-3000:]
    finally:
        (pack / "PulumiPolicy.yaml").unlink()
