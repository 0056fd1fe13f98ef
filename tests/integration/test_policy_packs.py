"""Pulumi CrossGuard policy packs run by the real engine through unkai's language host.

A Python policy pack is started by the engine through the language runtime of its
``PulumiPolicy.yaml`` (``RunPlugin``), here unkai's. The pack runs in a virtualenv of its
own: ``pulumi-policy`` pins protobuf 5, the project's venv has protobuf 6.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pulumi import automation as auto

from unkai.cli._workspace import select_stack
from unkai.toolchain import ensure_policy_venv

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

PACK = """\
from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy


def private_files(args, report_violation):
    if args.resource_type == "unkai:local:File" and args.props.get("mode") != "0600":
        report_violation(f"mode {args.props.get('mode')}: a file unkai writes is 0600")


def short_names(args, report_violation):
    if args.resource_type == "unkai:local:File" and len(args.name) > 8:
        report_violation(f"{args.name} is longer than 8 characters")


PolicyPack(
    name="unkai-test",
    policies=[
        ResourceValidationPolicy(
            name="private-files", description="Files are private.",
            enforcement_level=EnforcementLevel.MANDATORY, validate=private_files,
        ),
        ResourceValidationPolicy(
            name="short-names", description="Names are short.",
            enforcement_level=EnforcementLevel.ADVISORY, validate=short_names,
        ),
    ],
)
"""

PROGRAM = """\
import pulumi
from unkai.components import LocalFile
from unkai.kinds import LocalFileInputs

config = pulumi.Config()
LocalFile(
    "greeting-file",
    LocalFileInputs(path=config.require("path"), content="hello", mode=config.require("mode")),
)
"""


@pytest.fixture(scope="module")
def policy_python() -> Path:
    """The interpreter of the policy venv (made by the bootstrap, or here when missing)."""
    return ensure_policy_venv() / "bin" / "python"


@pytest.fixture
def stack(tmp_path, policy_python):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "PulumiPolicy.yaml").write_text(
        "description: unkai test pack\n"
        f"runtime:\n  name: python\n  options:\n    virtualenv: {policy_python.parent.parent}\n"
    )
    (pack / "__main__.py").write_text(PACK)
    program = tmp_path / "program"
    program.mkdir()
    venv = Path(sys.executable).parent.parent
    (program / "Pulumi.yaml").write_text(
        f"name: policy-test\nruntime:\n  name: python\n  options:\n    virtualenv: {venv}\n"
        f"plugins:\n  providers:\n    - name: unkai\n      path: {venv / 'bin'}\n"
    )
    (program / "__main__.py").write_text(PROGRAM)
    name = "policy-" + uuid.uuid4().hex[:8]
    st = select_stack(program, name)
    st.set_config("path", auto.ConfigValue(str(tmp_path / "out.txt")))
    yield st, pack
    st.destroy()
    st.workspace.remove_stack(name)


def test_a_mandatory_violation_stops_the_preview_and_names_policy_resource_and_why(stack, tmp_path):
    st, pack = stack
    st.set_config("mode", auto.ConfigValue("0644"))
    lines: list[str] = []
    with pytest.raises(auto.CommandError):
        st.preview(policy_packs=[str(pack)], on_output=lines.append)
    shown = "".join(lines)
    assert "[mandatory]  private-files  (unkai:local:File: greeting-file)" in shown, shown
    assert "mode 0644: a file unkai writes is 0600" in shown, shown
    with pytest.raises(auto.CommandError):
        st.up(policy_packs=[str(pack)])
    assert not (tmp_path / "out.txt").exists()  # nothing was written


def test_an_advisory_violation_is_reported_and_the_up_goes_on(stack, tmp_path):
    st, pack = stack
    st.set_config("mode", auto.ConfigValue("0600"))
    lines: list[str] = []
    result = st.up(policy_packs=[str(pack)], on_output=lines.append)
    shown = "".join(lines)
    assert "[advisory]  short-names  (unkai:local:File: greeting-file)" in shown, shown
    assert "greeting-file is longer than 8 characters" in shown, shown
    assert result.summary.resource_changes == {"create": 2}
    assert (tmp_path / "out.txt").read_text() == "hello"


BIG_VMS = """\
from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy


def small_vms(args, report_violation):
    if args.resource_type == "unkai:compute:Instance" and args.props.get("memory_mb", 0) > 512:
        report_violation(f"{int(args.props['memory_mb'])} MiB: VMs here have at most 512")


PolicyPack(
    name="unkai-small-vms",
    policies=[
        ResourceValidationPolicy(
            name="small-vms", description="VMs are small.",
            enforcement_level=EnforcementLevel.MANDATORY, validate=small_vms,
        ),
    ],
)
"""


def test_unkai_preview_runs_a_policy_pack_and_a_mandatory_violation_fails_it(
    tmp_path, policy_python
):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "PulumiPolicy.yaml").write_text(
        f"runtime:\n  name: python\n  options:\n    virtualenv: {policy_python.parent.parent}\n"
    )
    (pack / "__main__.py").write_text(BIG_VMS)
    unkai = Path(sys.executable).parent / "unkai"
    proc = subprocess.run(
        [str(unkai), "preview", "local", "--policy-pack", str(pack)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    shown = proc.stdout + proc.stderr
    assert proc.returncode != 0, shown[-3000:]
    assert "[mandatory]  small-vms  (unkai:compute:Instance: local-db)" in shown, shown[-3000:]
    assert "1024 MiB: VMs here have at most 512" in shown, shown[-3000:]
    assert "Traceback" not in shown


def test_a_folder_that_is_no_policy_pack_is_refused_before_anything_runs(tmp_path):
    unkai = Path(sys.executable).parent / "unkai"
    proc = subprocess.run(
        [str(unkai), "up", "local", "--policy-pack", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"{tmp_path} is not a policy pack: it has no PulumiPolicy.yaml" in proc.stderr
