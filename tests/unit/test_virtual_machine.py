"""The environment a VirtualMachine is built from: its host, image and networks only."""

from __future__ import annotations

import pytest

from unkai import model, render
from unkai.components import VirtualMachineArgs, machine_environment
from unkai.errors import ConfigError

HOST = model.Host(
    name="h", address="127.0.0.1", connection="local", cpus=2, memory_mb=4096, disk_gb=20,
    cpu_vendor="amd", pool="p", zone="z",
)  # fmt: skip
IMAGE = model.VmImage(name="deb", version="1", disk_gb=4)


def test_one_vm_gets_its_host_zone_pool_image_and_the_user_network():
    vm = model.Instance(name="hello", machine_type="custom-1-1024", image="deb", zone="z")
    env = machine_environment(VirtualMachineArgs(vm, IMAGE, HOST), name="dev", project="acme")
    assert (env.name, env.project) == ("dev", "acme")
    assert list(env.hosts) == ["h"] and list(env.zones) == ["z"] and list(env.host_pools) == ["p"]
    (instance,) = env.all_instances()
    assert instance.networks == ("default",)  # attached to the networks given
    assert env.networks["default"].mode == "user"
    # Named like everything of a whole environment: project, stack, instance.
    assert render.domain_name(render.owner(env), "hello") == "acme-dev-hello"


def test_a_vm_naming_another_image_is_refused_with_the_key():
    vm = model.Instance(name="hello", machine_type="custom-1-1024", image="ubuntu", zone="z")
    with pytest.raises(ConfigError) as err:
        machine_environment(VirtualMachineArgs(vm, IMAGE, HOST), name="dev", project="acme")
    said = str(err.value)
    assert "ubuntu" in said and "instances.hello" in said, said
