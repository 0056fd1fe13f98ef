"""The Ansible driver's pure parts: plans, and reading recorded ansible-runner events."""

from __future__ import annotations

import copy
import doctest
import json
from pathlib import Path

import pytest
import yaml

from unkai.drivers import ansible as ansible_driver
from unkai.drivers import kvm_host as kvm_host_driver
from unkai.drivers.ansible import (
    AnsibleHost,
    builtin_playbooks_dir,
    changed_counts,
    failed_tasks,
    playbook_plan,
    reported_facts,
)
from unkai.drivers.kvm_host import KvmHostSpec, kvm_host_plan
from unkai.environments import load_environment
from unkai.errors import DriverError, PlaybookFailed
from unkai.render import render_host_vars

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[3]


def events(name: str) -> list[dict]:
    return json.loads((DATA / f"runner-events-{name}.json").read_text())


def test_local_host_plan():
    plan = playbook_plan(
        AnsibleHost(name="localhost", connection="local", address="127.0.0.1"),
        playbook="kvm-host.yml",
        extravars={"kvm_host_accelerator": "tcg"},
        playbooks_dir=Path("/srv/playbooks"),
        local_python="/opt/venv/bin/python",
    )
    assert plan.playbook == Path("/srv/playbooks/kvm-host.yml")
    assert plan.hosts == ("localhost",)
    assert plan.extravars == {"kvm_host_accelerator": "tcg"}
    assert plan.inventory == (
        "all:\n"
        "  children:\n"
        "    kvm_hosts:\n"
        "      hosts:\n"
        "        localhost:\n"
        "          ansible_connection: local\n"
        "          ansible_python_interpreter: /opt/venv/bin/python\n"
    )


def test_ssh_host_plan_uses_address_and_user_and_becomes_root():
    plan = playbook_plan(
        AnsibleHost(name="kvm-1", connection="ssh", address="10.0.0.5", ssh_user="ops"),
        playbook="kvm-host.yml",
        playbooks_dir=Path("/p"),
        local_python="/unused",
    )
    hostvars = yaml.safe_load(plan.inventory)["all"]["children"]["kvm_hosts"]["hosts"]["kvm-1"]
    assert hostvars == {
        "ansible_become": True,
        "ansible_connection": "ssh",
        "ansible_host": "10.0.0.5",
        "ansible_user": "ops",
    }
    assert plan.extravars == {}


def test_ssh_as_root_does_not_become():
    plan = playbook_plan(
        AnsibleHost(name="kvm-2", connection="ssh", address="kvm-2.lan", ssh_user="root"),
        playbook="kvm-host.yml",
        playbooks_dir=Path("/p"),
    )
    hostvars = yaml.safe_load(plan.inventory)["all"]["children"]["kvm_hosts"]["hosts"]["kvm-2"]
    assert "ansible_become" not in hostvars
    assert hostvars["ansible_host"] == "kvm-2.lan"


def test_ssh_host_without_address_is_an_error():
    with pytest.raises(DriverError, match="kvm-3: connection ssh needs an address"):
        playbook_plan(
            AnsibleHost(name="kvm-3", connection="ssh"), playbook="x.yml", playbooks_dir=Path("/p")
        )


def test_plan_is_pure_and_deterministic():
    host = AnsibleHost(name="localhost", connection="local")
    first = playbook_plan(host, playbook="kvm-host.yml", local_python="/py")
    assert first == playbook_plan(host, playbook="kvm-host.yml", local_python="/py")
    assert first.playbook == ROOT / "src/unkai/playbooks/kvm-host.yml"
    assert builtin_playbooks_dir() == ROOT / "src/unkai/playbooks"


def test_kvm_host_plan_runs_with_the_rendered_host_vars_alone():
    env = load_environment("fleet", root=ROOT)
    rendered = render_host_vars(env.hosts["kvm-a1"], env, accelerator="tcg")
    spec = KvmHostSpec(
        host=AnsibleHost(name="kvm-a1", connection="ssh", address="10.231.0.11", ssh_user="root"),
        libvirt_uri="qemu+ssh://root@10.231.0.11/system",
        pool_name="unkai",
        pool_path="/var/lib/libvirt/images/unkai",
        accelerator="tcg",
        host_vars=rendered,
    )
    plan = kvm_host_plan(spec, playbooks_dir=Path("/p"), local_python="/py")
    assert plan.playbook == Path("/p/kvm-host.yml")
    # The bytes unkai render writes are the host's variables; nothing overrides them,
    # and the inventory adds only how this machine reaches the host.
    assert plan.host_vars == {"kvm-a1": rendered} and plan.extravars == {}
    hosts = yaml.safe_load(plan.inventory)["all"]["children"]["kvm_hosts"]["hosts"]
    assert set(hosts["kvm-a1"] or {}) <= {"ansible_ssh_executable"}


def test_every_rendered_kvm_host_variable_is_a_documented_role_default():
    defaults = yaml.safe_load(
        (ROOT / "src/unkai/playbooks/roles/kvm_host/defaults/main.yml").read_text()
    )
    env = load_environment("fleet", root=ROOT)
    rendered = yaml.safe_load(render_host_vars(env.hosts["kvm-a1"], env, accelerator="auto"))
    role_vars = {name for name in rendered if name.startswith("kvm_host_")}
    assert role_vars and role_vars <= set(defaults)
    text = (ROOT / "src/unkai/playbooks/roles/kvm_host/defaults/main.yml").read_text()
    for name in defaults:
        before = text.split(f"\n{name}:")[0]
        assert before.rstrip().splitlines()[-1].startswith("#"), f"{name} is not documented"


def test_failed_task_from_a_recorded_assert():
    assert failed_tasks(events("pool-conflict")) == [
        (
            "localhost",
            "Check that the existing storage pool is in the expected folder",
            "storage pool unkai already exists in /var/lib/libvirt/images/unkai, not in "
            "/var/lib/libvirt/images/elsewhere; remove it (virsh pool-destroy, pool-undefine) "
            "or set the pool path to /var/lib/libvirt/images/unkai",
        )
    ]


def test_failed_task_from_a_recorded_command_keeps_its_stderr():
    [(host, task, message)] = failed_tasks(events("libvirtd-down"))
    assert (host, task) == ("localhost", "Wait until libvirtd answers")
    assert message.startswith("non-zero return code; error: failed to connect to the hypervisor")
    assert "Failed to connect socket to '/nonexistent'" in message


def test_ignored_failures_and_other_events_are_left_out():
    recorded = events("pool-conflict")
    ignored = copy.deepcopy(recorded)
    for event in ignored:
        if event["event"] == "runner_on_failed":
            event["event_data"]["ignore_errors"] = True
    assert failed_tasks(ignored) == []
    assert failed_tasks(e for e in recorded if e["event"] != "runner_on_failed") == []


def test_unreachable_host_is_a_failed_task():
    unreachable = {
        "event": "runner_on_unreachable",
        "event_data": {
            "host": "kvm-1",
            "task": "Gathering Facts",
            "res": {"msg": "Failed to connect to the host via ssh: Connection refused"},
        },
    }
    assert failed_tasks([unreachable]) == [
        ("kvm-1", "Gathering Facts", "Failed to connect to the host via ssh: Connection refused")
    ]


def test_facts_and_changed_counts_from_a_recorded_run():
    recorded = events("success")
    facts = reported_facts(recorded, "kvm_host_facts")
    assert set(facts) == {"localhost"}
    assert facts["localhost"]["accelerator"] == "tcg"
    assert facts["localhost"]["accelerator_reason"].startswith("requested tcg (")
    assert isinstance(facts["localhost"]["cpus"], int)
    assert facts["localhost"]["pool_path"] == "/var/lib/libvirt/images/unkai"
    [stats] = [e["event_data"] for e in recorded if e["event"] == "playbook_on_stats"]
    assert changed_counts(stats, ["localhost"]) == {"localhost": 0}
    assert changed_counts({"changed": {"a": 3}}, ["a", "b"]) == {"a": 3, "b": 0}
    assert changed_counts(None, ["a"]) == {"a": 0}


def test_playbook_failed_names_every_failed_task():
    err = PlaybookFailed(
        "failed", 2, [("kvm-1", "Install libvirt and QEMU", "no space left")], playbook="x.yml"
    )
    assert isinstance(err, DriverError)
    assert (err.status, err.rc) == ("failed", 2)
    assert str(err) == (
        "playbook x.yml ended failed (exit status 2)\n"
        "  kvm-1: Install libvirt and QEMU: no space left"
    )


@pytest.mark.parametrize("module", [ansible_driver, kvm_host_driver], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
