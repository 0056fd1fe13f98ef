"""examples/vm-alone: one VM declared with the VirtualMachine component, no environment.

The example's own program, through the real engine, unkai's provider, Ansible and libvirt:
the VM boots with the example's user data, a second ``up`` changes nothing, and destroy
leaves no domain.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pulumi import automation as auto

from unkai.cli._workspace import select_stack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from commands import ok, run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "vm-alone"


def domains() -> list[str]:
    listed = ok(run("virsh", "-c", "qemu:///system", "list", "--all", "--name", cwd=ROOT))
    return listed.split()


@pytest.fixture
def stack(tmp_path: Path):
    name = "it-" + uuid.uuid4().hex[:6]
    key = tmp_path / "key"
    ok(run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key, cwd=tmp_path))
    st = select_stack(EXAMPLE, name)
    st.set_config("sshKey", auto.ConfigValue(key.with_suffix(".pub").read_text().strip()))
    try:
        yield st, key
    finally:
        st.destroy()
        st.workspace.remove_stack(name)
        (EXAMPLE / f"Pulumi.{name}.yaml").unlink(missing_ok=True)


def test_a_vm_declared_alone_boots_its_user_data_and_a_second_up_changes_nothing(stack):
    st, key = stack
    up = st.up()
    # The host (Ansible), the image on it, the VM, under the component and its Cloud.
    created = up.summary.resource_changes or {}
    assert created.get("create", 0) >= 4, created
    assert up.outputs["state"].value == "running"
    domain = f"vmalone-{st.name}-hello"
    assert domain in domains()

    ssh = up.outputs["ssh"].value.split()  # ssh -p PORT unkai@HOST
    motd = subprocess.run(
        [*ssh[:3], "-i", str(key), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", ssh[3], "cat /etc/motd"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert motd.returncode == 0, motd.stderr
    assert "hello, alone" in motd.stdout

    again = st.up(expect_no_changes=True)
    assert set(again.summary.resource_changes or {}) == {"same"}

    st.destroy()
    assert domain not in domains()
