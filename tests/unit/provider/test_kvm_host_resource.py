"""KvmHost's pure parts: checked inputs, the diff, and the component's arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from unkai.components import KvmHostArgs
from unkai.environments import load_environment
from unkai.errors import ConfigError
from unkai.provider import UNKNOWN, Props
from unkai.provider.resources import KvmHost
from unkai.render import STORAGE_POOL, STORAGE_POOL_PATH

ROOT = Path(__file__).resolve().parents[3]
LOCAL = {"name": "localhost", "address": "127.0.0.1", "connection": "local"}


def checked(**values):
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
    }


def test_check_derives_the_ssh_libvirt_uri():
    inputs = checked(name="kvm-1", address="10.0.0.5", connection="ssh", ssh_user="ops")
    assert inputs["libvirt_uri"] == "qemu+ssh://ops@10.0.0.5/system"
    assert checked(libvirt_uri="qemu:///session")["libvirt_uri"] == "qemu:///session"


@pytest.mark.parametrize(
    ("values", "key", "text"),
    [
        ({"accelerator": "hvf"}, "accelerator", "allowed: auto, kvm, tcg"),
        ({"connection": "winrm"}, "connection", "allowed: local, ssh"),
        ({"connection": "ssh", "address": None}, "address", "non-empty"),
        ({"pool_path": "images/unkai"}, "pool_path", "absolute"),
        ({"name": ""}, "name", "non-empty"),
        ({"networks": "unkai-lan"}, "networks", "must be a list"),
        ({"networks": [{"name": "unkai-lan"}]}, "networks[0]", "{name, xml}"),
    ],
)
def test_check_names_the_bad_property(values, key, text):
    with pytest.raises(ConfigError) as err:
        checked(**values)
    assert err.value.key_path == key
    assert text in str(err.value)


def test_check_lets_unknown_values_through_at_preview():
    inputs = checked(address=UNKNOWN, pool_path=UNKNOWN, accelerator=UNKNOWN)
    assert inputs["pool_path"] is UNKNOWN and inputs["accelerator"] is UNKNOWN


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


def test_pool_drift_and_accelerator_change_update_in_place():
    drifted = KvmHost().diff(state(pool_path=""), Props(checked()))
    assert drifted.changed == ("pool_path",) and drifted.replaces == ()
    forced = KvmHost().diff(state(), Props(checked(accelerator="kvm")))
    assert forced.changed == ("accelerator",) and forced.replaces == ()


def test_component_args_from_the_local_host():
    env = load_environment("local", root=ROOT)
    args = KvmHostArgs.from_host(env.hosts["localhost"], accelerator="tcg")
    assert args == KvmHostArgs(
        name="localhost",
        address="127.0.0.1",
        connection="local",
        libvirt_uri="qemu:///system",
        ssh_user=None,
        pool_name=STORAGE_POOL,
        pool_path=STORAGE_POOL_PATH,
        accelerator="tcg",
        networks=(),
    )
