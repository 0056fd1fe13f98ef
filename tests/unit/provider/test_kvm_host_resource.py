"""KvmHost's pure parts: checked inputs, the diff, the create plan and the component's inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from unkai.components import kvm_host_inputs
from unkai.drivers.ansible import AnsibleHost
from unkai.drivers.kvm_host import KvmHostSpec, kvm_host_plan
from unkai.environments import load_environment
from unkai.errors import ConfigError
from unkai.kinds import KvmHostInputs, LibvirtNetwork
from unkai.provider import UNKNOWN, Props
from unkai.provider.resources import KvmHost
from unkai.provider.resources.kvm_host import _spec as kvm_host_spec
from unkai.render import STORAGE_POOL, STORAGE_POOL_PATH, render_host_vars

ROOT = Path(__file__).resolve().parents[3]
LOCAL = {"name": "localhost", "address": "127.0.0.1", "connection": "local"}


def host_vars(**values) -> str:
    """A ``host_vars`` text that says what ``values`` say (as render writes it)."""
    found = {**LOCAL, **values}
    return yaml.safe_dump(
        {
            "ansible_connection": found.get("connection", "local"),
            "ansible_host": found.get("address"),
            "kvm_host_accelerator": found.get("accelerator", "auto"),
            "kvm_host_pool_name": found.get("pool_name", STORAGE_POOL),
            "kvm_host_pool_path": found.get("pool_path", STORAGE_POOL_PATH),
        }
    )


def checked(**values):
    if "host_vars" not in values:
        values["host_vars"] = host_vars(**values)
    return KvmHost().check(Props({**LOCAL, **values}))


def test_check_fills_the_defaults_of_a_local_host():
    assert checked() == {
        **LOCAL,
        "ssh_user": None,
        "libvirt_uri": "qemu:///system",
        "pool_name": STORAGE_POOL,
        "pool_path": STORAGE_POOL_PATH,
        "accelerator": "auto",
        "networks": [],
        "host_vars": host_vars(),
        "converged": True,
    }
    # A local host without an address is this machine.
    found = KvmHost().check(Props({"name": "localhost", "host_vars": host_vars()}))
    assert found["address"] == "127.0.0.1"


def test_host_vars_that_say_otherwise_are_refused():
    with pytest.raises(ConfigError) as err:
        KvmHost().check(Props({**LOCAL, "host_vars": host_vars(pool_path="/elsewhere")}))
    assert err.value.key_path == "host_vars"
    assert "kvm_host_pool_path is '/elsewhere'" in str(err.value)
    with pytest.raises(ConfigError, match="host_vars: must be a YAML mapping"):
        KvmHost().check(Props({**LOCAL, "host_vars": "- a list\n"}))


def test_check_derives_the_ssh_libvirt_uri():
    inputs = checked(name="kvm-1", address="10.0.0.5", connection="ssh", ssh_user="ops")
    assert inputs["libvirt_uri"] == "qemu+ssh://ops@10.0.0.5/system"
    assert checked(libvirt_uri="qemu:///session")["libvirt_uri"] == "qemu:///session"


@pytest.mark.parametrize(
    ("values", "key", "text"),
    [
        ({"accelerator": "hvf"}, "accelerator", "'auto', 'kvm' or 'tcg' (got 'hvf')"),
        ({"connection": "winrm"}, "connection", "'local' or 'ssh' (got 'winrm')"),
        ({"connection": "ssh", "address": None}, "address", "an ssh host needs an address"),
        ({"pool_path": "images/unkai"}, "pool_path", "absolute path (got 'images/unkai')"),
        ({"name": ""}, "name", "at least 1 character"),
        ({"networks": "unkai-lan"}, "networks", "valid tuple (got 'unkai-lan')"),
        (
            {"networks": [{"name": "unkai-lan"}]},
            "networks.0.xml",
            "required key is missing; allowed: one of name, xml",
        ),
        (
            {"pool_nme": "images"},
            "pool_nme",
            "unknown key (did you mean 'pool_name'?); allowed: one of name, connection",
        ),
        ({"converged": False}, "converged", "Input should be True"),
    ],
)
def test_check_names_the_bad_property(values, key, text):
    with pytest.raises(ConfigError) as err:
        checked(**values)
    assert err.value.key_path == key
    assert f"{key}: " in str(err.value) and text in str(err.value)


def test_check_lets_unknown_values_through_at_preview():
    inputs = checked(address=UNKNOWN, pool_path=UNKNOWN, accelerator=UNKNOWN, host_vars=UNKNOWN)
    assert inputs["pool_path"] is UNKNOWN and inputs["accelerator"] is UNKNOWN
    assert inputs["address"] is UNKNOWN
    # The URI depends on the unknown address: it is not derived from a guess.
    assert inputs["libvirt_uri"] is None


def state(**values):
    inputs = checked()
    return Props(
        {
            **inputs,
            "accelerator": "tcg",
            "accelerator_requested": inputs["accelerator"],
            "accelerator_reason": "auto: ...",
            "cpus": 2.0,
            "memory_mb": 1024.0,
            "libvirt_version": "9.0.0",
            "qemu_version": "7.2.0",
            "changed": 0.0,
            "drift": [],
            **values,
        }
    )


def test_auto_accelerator_is_no_change_although_tcg_is_in_use():
    diff = KvmHost().diff(state(), Props(checked()))
    assert not diff.has_changes


def test_address_and_connection_replace_and_say_why():
    diff = KvmHost().diff(state(), Props(checked(address="127.0.0.2")))
    assert diff.replaces == ("address",)
    assert "different machine" in diff.reasons["address"]
    diff = KvmHost().diff(
        state(), Props(checked(connection="ssh", address="127.0.0.1", ssh_user="root"))
    )
    assert "connection" in diff.replaces and diff.reasons["connection"]
    assert set(diff.reasons) == set(diff.replaces)


def test_pool_drift_and_accelerator_change_update_in_place():
    drifted = KvmHost().diff(state(pool_path=""), Props(checked()))
    assert drifted.changed == ("pool_path",) and drifted.replaces == ()
    forced = KvmHost().diff(state(), Props(checked(accelerator="kvm")))
    assert forced.changed == ("accelerator", "host_vars") and forced.replaces == ()


def test_a_playbook_that_would_change_something_updates_in_place():
    drift = state(converged=False, drift=["Install libvirt and QEMU"])
    diff = KvmHost().diff(drift, Props(checked()))
    assert diff.changed == ("converged",) and diff.replaces == ()


def test_create_plans_the_playbook_run_from_typed_inputs():
    net = LibvirtNetwork(name="unkai-lan", xml="<network><name>unkai-lan</name></network>")
    inputs = KvmHostInputs(
        name="kvm-1",
        connection="ssh",
        address="10.0.0.5",
        ssh_user="ops",
        pool_path="/srv/pool",
        accelerator="tcg",
        networks=(net,),
        host_vars="kvm_host_pool_path: /srv/pool\n",
    )
    spec = kvm_host_spec(inputs)
    assert spec == KvmHostSpec(
        host=AnsibleHost(name="kvm-1", connection="ssh", address="10.0.0.5", ssh_user="ops"),
        libvirt_uri="qemu+ssh://ops@10.0.0.5/system",
        pool_name=STORAGE_POOL,
        pool_path="/srv/pool",
        accelerator="tcg",
        host_vars="kvm_host_pool_path: /srv/pool\n",
        networks=({"name": "unkai-lan", "xml": net.xml},),
    )
    plan = kvm_host_plan(spec, playbooks_dir=Path("/p"), local_python="/py")
    # The rendered variables are the run's, as they are: nothing overrides them.
    assert plan.host_vars == {"kvm-1": "kvm_host_pool_path: /srv/pool\n"}
    assert plan.extravars == {}


def test_component_inputs_from_the_local_host():
    env = load_environment("local", root=ROOT)
    inputs = kvm_host_inputs(env.hosts["localhost"], env=env, accelerator="tcg")
    assert inputs == KvmHostInputs(
        name="localhost",
        address="127.0.0.1",
        connection="local",
        libvirt_uri="qemu:///system",
        ssh_user=None,
        pool_name=STORAGE_POOL,
        pool_path=STORAGE_POOL_PATH,
        accelerator="tcg",
        networks=(),
        host_vars=render_host_vars(env.hosts["localhost"], env, accelerator="tcg"),
    )
    # What the component registers is what the provider's check accepts unchanged.
    plain = inputs.model_dump(mode="json")
    assert KvmHost().check(Props(plain)) == plain
