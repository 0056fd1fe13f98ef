"""KvmHost against the real thing: the playbook on this machine, and a Pulumi stack.

This machine is the ``local`` environment's KVM host. The playbook runs through the
driver twice (the second run changes nothing), then the provider resource goes through
up / no-change preview / refresh of a pool deleted behind unkai's back / destroy, with
a storage pool of its own so the shared ``unkai`` pool is never disturbed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from pulumi import automation as auto

from unkai.cli._workspace import select_stack
from unkai.drivers.ansible import AnsibleHost
from unkai.drivers.kvm_host import (
    KvmHostSpec,
    configure_kvm_host,
    libvirt_state,
    remove_pool_if_empty,
)
from unkai.environments import load_environment
from unkai.errors import PlaybookFailed
from unkai.render import STORAGE_POOL, STORAGE_POOL_PATH, render_host_vars
from unkai.toolchain import cached_probe

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "tests" / "integration" / "stacks" / "kvm_host"
BIN = Path(sys.executable).parent
URI = "qemu:///system"


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["virsh", "--connect", URI, *args], capture_output=True, text=True, check=check
    )


def spec(**changes) -> KvmHostSpec:
    """The local host, its variables rendered as ``unkai render`` renders them."""
    values = {
        "host": AnsibleHost(name="localhost", connection="local", address="127.0.0.1"),
        "libvirt_uri": URI,
        "pool_name": STORAGE_POOL,
        "pool_path": STORAGE_POOL_PATH,
        "accelerator": cached_probe().accelerator,
        "networks": (),
        **changes,
    }
    env = load_environment("local", root=ROOT)
    values["host_vars"] = render_host_vars(
        env.hosts["localhost"], env, accelerator=values["accelerator"],
        pool_name=values["pool_name"], pool_path=values["pool_path"],
        networks=values["networks"],
    )  # fmt: skip
    return KvmHostSpec(**values)


def test_ansible_lint_production_profile_is_clean():
    proc = subprocess.run(
        [str(BIN / "ansible-lint"), "--profile", "production", "src/unkai/playbooks/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr


def test_playbook_twice_on_this_machine_second_run_changes_nothing():
    tasks: list[str] = []
    first = configure_kvm_host(spec(), on_task=tasks.append)
    assert "Install libvirt and QEMU" in tasks and "Report the host's facts" in tasks
    start = time.monotonic()
    second = configure_kvm_host(spec())
    seconds = time.monotonic() - start
    print(
        f"\nfirst run {first.seconds:.1f} s, changed={first.changed}; "
        f"second run {second.seconds:.1f} s, changed={second.changed}"
    )
    assert second.changed == 0
    assert seconds < 60

    facts = second
    assert facts.cpus == os.cpu_count()
    assert facts.memory_mb > 512
    assert facts.accelerator in ("kvm", "tcg")
    assert facts.accelerator == cached_probe().accelerator
    assert facts.accelerator_reason.startswith(f"requested {facts.accelerator} (CPU flags ")
    assert "/dev/kvm" in facts.accelerator_reason
    assert facts.libvirt_version.count(".") == 2 and facts.qemu_version.count(".") == 2
    assert facts.pool_path == STORAGE_POOL_PATH

    found = libvirt_state(URI, STORAGE_POOL)
    assert found is not None
    assert (found.pool_path, found.pool_active, found.pool_autostart) == (
        STORAGE_POOL_PATH,
        True,
        True,
    )
    assert found.libvirt_version == facts.libvirt_version
    assert found.qemu_version == facts.qemu_version


def test_auto_accelerator_decides_from_dev_kvm():
    facts = configure_kvm_host(spec(accelerator="auto"))
    # A PVM KVM (kvm_pvm) runs no stock guest kernel: the role says TCG there, as the probe.
    pvm = Path("/sys/module/kvm_pvm").exists()
    expected = "kvm" if os.path.exists("/dev/kvm") and not pvm else "tcg"
    assert facts.accelerator == expected
    assert ("PVM" in facts.accelerator_reason) == (pvm and os.path.exists("/dev/kvm"))
    assert facts.accelerator_reason.startswith("auto: /dev/kvm is ")
    assert facts.changed == 0


def test_a_failed_task_is_named_with_its_message():
    moved = "/var/lib/libvirt/images/unkai-elsewhere-" + uuid.uuid4().hex[:6]
    with pytest.raises(PlaybookFailed) as err:
        configure_kvm_host(spec(pool_path=moved))
    assert err.value.status == "failed" and err.value.rc != 0
    [(host, task, message)] = err.value.failed_tasks
    assert host == "localhost"
    assert task == "Check that the existing storage pool is in the expected folder"
    assert f"already exists in {STORAGE_POOL_PATH}, not in {moved}" in message
    assert not Path(moved).exists()  # nothing was changed before the check


def test_networks_when_asked_are_defined_started_and_autostarted_once():
    suffix = uuid.uuid4().hex[:6]
    name = f"unkai-it-{suffix}"
    xml = f"<network><name>{name}</name><bridge name='uk-it-{suffix}'/></network>\n"
    kept = Path("/var/lib/libvirt/unkai-networks") / f"{name}.xml"
    try:
        first = configure_kvm_host(spec(networks=({"name": name, "xml": xml},)))
        assert first.changed >= 4  # XML kept, defined, started, autostarted (+ its folder)
        info = virsh("net-info", name).stdout
        assert "Active:         yes" in info and "Autostart:      yes" in info
        found = libvirt_state(URI, STORAGE_POOL, networks=[name, "unkai-it-absent"])
        assert found is not None and found.networks_active == (name,)
        again = configure_kvm_host(spec(networks=({"name": name, "xml": xml},)))
        assert again.changed == 0
    finally:
        virsh("net-destroy", name, check=False)
        virsh("net-undefine", name, check=False)
        kept.unlink(missing_ok=True)


def test_unknown_libvirt_pool_reads_as_absent_and_removing_it_is_a_no_op():
    name = "unkai-absent-" + uuid.uuid4().hex[:6]
    found = libvirt_state(URI, name)
    assert found is not None and found.pool_path is None and not found.pool_active
    assert remove_pool_if_empty(URI, name) is True
    assert libvirt_state("qemu+unix:///system?socket=/nonexistent", name) is None


@pytest.fixture
def stack(tmp_path):
    suffix = uuid.uuid4().hex[:8]
    pool_name = f"unkai-it-{suffix}"
    pool_path = f"/var/lib/libvirt/images/unkai-it-{suffix}"
    name = "it-" + suffix
    st = select_stack(STACK, name)
    st.set_config("pool_name", auto.ConfigValue(pool_name))
    st.set_config("pool_path", auto.ConfigValue(pool_path))
    st.set_config("accelerator", auto.ConfigValue(cached_probe().accelerator))
    yield st, pool_name, pool_path
    try:
        st.destroy()
        st.workspace.remove_stack(name)
    finally:
        virsh("pool-destroy", pool_name, check=False)
        virsh("pool-undefine", pool_name, check=False)
        if Path(pool_path).is_dir():
            Path(pool_path).rmdir()


def test_stack_up_no_change_preview_refresh_repairs_drift_destroy(stack):
    st, pool_name, pool_path = stack
    up = st.up()
    assert up.summary.resource_changes == {"create": 2}
    outputs = {key: value.value for key, value in up.outputs.items()}
    assert outputs["cpus"] == os.cpu_count()
    assert outputs["accelerator"] == cached_probe().accelerator
    assert outputs["pool_path"] == pool_path
    assert outputs["libvirt_version"] and outputs["qemu_version"]
    info = virsh("pool-info", pool_name).stdout
    assert "running" in info and "Autostart:      yes" in info

    preview = st.preview(expect_no_changes=True)
    assert preview.change_summary == {"same": 2}
    st.refresh()
    assert st.preview(expect_no_changes=True).change_summary == {"same": 2}

    # Deleted behind unkai's back: refresh sees it, the next up repairs it in place.
    virsh("pool-destroy", pool_name)
    virsh("pool-undefine", pool_name)
    st.refresh()
    lines: list[str] = []
    preview = st.preview(diff=True, on_output=lines.append)
    assert preview.change_summary.get("update") == 1, "".join(lines)
    assert "pool_path" in "".join(lines)
    repaired = st.up()
    assert repaired.summary.resource_changes == {"update": 1, "same": 1}
    assert repaired.outputs["changed"].value > 0
    assert "running" in virsh("pool-info", pool_name).stdout
    assert st.preview(expect_no_changes=True).change_summary == {"same": 2}

    # A change only the playbook knows about (its folder's mode): refresh runs it in
    # check mode, so the host reads as not converged, naming the task; up repairs it.
    os.chmod(pool_path, 0o755)
    events: list[auto.EngineEvent] = []
    st.refresh(on_event=events.append)
    lines.clear()
    preview = st.preview(diff=True, on_output=lines.append)
    assert preview.change_summary.get("update") == 1
    assert "converged" in "".join(lines)
    warnings = [e.diagnostic_event.message for e in events if e.diagnostic_event]
    assert any("Create the storage pool's folder" in w for w in warnings), warnings
    st.up()
    assert Path(pool_path).stat().st_mode & 0o777 == 0o711
    st.refresh()
    assert st.preview(expect_no_changes=True).change_summary == {"same": 2}

    st.destroy()
    assert virsh("pool-info", pool_name, check=False).returncode != 0
    assert not Path(pool_path).exists()
    # The shared pool and the packages stay.
    assert virsh("pool-info", STORAGE_POOL, check=False).returncode == 0
