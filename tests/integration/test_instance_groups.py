"""Managed instance groups: the operator makes, heals and rolls real VMs.

A real control plane (its operator included) and this machine's libvirt: the provider's
``InstanceGroupManager`` kind applies an ``InstanceGroup`` object made from an
environment's group (each slot's inputs rendered as for a plain instance) and waits, and
the operator makes its members, boots them to "cloud-init finished", recreates one whose
domain was destroyed (which a refresh then reads as no change), rolls the group to a new
template within its surge and unavailability limits (sampled every second), and removes
every member when the object is deleted.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.generic_resource import create_global_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Event

from unkai import model, render
from unkai.cli.status import cluster_status
from unkai.components import instance_group_object, slot_values, vm_image_inputs
from unkai.drivers import libvirt
from unkai.drivers.kubernetes import ControlPlane, kube_client
from unkai.drivers.kubernetes._process import free_ports
from unkai.environments import load_environment
from unkai.kinds import InstanceGroupManagerInputs, InstanceGroupManagerState, input_values
from unkai.operator import GROUP, VERSION
from unkai.operator._members import slot_digests
from unkai.provider.resources.instance_group import InstanceGroupManager
from unkai.provider.resources.vm_image import VmImage
from unkai.toolchain import cached_probe

ROOT = Path(__file__).resolve().parents[2]
InstanceGroupCR = create_global_resource(GROUP, VERSION, "InstanceGroup", "instancegroups")
SIZE, SURGE = 2, 1
MANAGER = InstanceGroupManager()


def group_env(**group: Any) -> model.Environment:
    """``local`` with one managed group ``ig`` of 512 MiB members, and nothing else."""
    data = load_environment("local", root=ROOT).model_dump(mode="json")
    data.update(
        name="igtest",
        instances={},
        workloads={},
        container_images={},
        settings={**data["settings"], "ssh_port_base": 2320, "management_cluster": "apps"},
    )
    data["instance_templates"]["web"]["machine_type"] = "custom-1-512"
    data["instance_groups"] = {
        "ig": {
            "name": "ig",
            "template": "web",
            "size": SIZE,
            "anti_affinity": False,
            "update_policy": {"max_surge": SURGE, "max_unavailable": 0},
            "health_check": {"initial_delay_s": 60},
            **group,
        }
    }
    return model.Environment.model_validate(data)


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def established(client: Client) -> bool:
    crd = client.get(CustomResourceDefinition, "instancegroups.unkai.dev")
    conditions = (crd.status.conditions if crd.status else None) or ()
    return any(c.type == "Established" and c.status == "True" for c in conditions)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[ControlPlane, Client]]:
    state = tmp_path_factory.mktemp("groups")
    cp = ControlPlane(
        name=f"ig-{uuid.uuid4().hex[:6]}",
        state_dir=state / "clusters" / "ig",
        port=free_ports(1)[0],
        version="1.36.3",
    )
    try:
        cp.start()
        with contextlib.closing(kube_client(cp.kubeconfig_path)) as client:
            wait_for("the CRD to be established", lambda: established(client), 90)
            yield cp, client
    finally:
        for status in cp.status():
            if status.name == "unkai-operator" and status.log.is_file():
                print(f"--- operator ---\n{status.log.read_text()[-6000:]}")
        cp.stop()


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The group's image uploaded to this machine's pool (the cache builds it once)."""
    env = group_env()
    host = env.hosts["localhost"]
    with libvirt.session(host.libvirt_uri) as conn:
        conn.ensure_pool(render.STORAGE_POOL, render.STORAGE_POOL_PATH)
    inputs = vm_image_inputs(
        env.vm_images["debian-12"], host, environment=render.owner(env), root=ROOT
    )
    resource = VmImage()
    path, state = resource.create(inputs)
    try:
        yield path
    finally:
        resource.delete(path, state)


def group_object(env: model.Environment, image_path: str) -> dict[str, Any]:
    group = env.instance_groups["ig"]
    host = env.hosts["localhost"]
    accelerator = cached_probe().accelerator
    members = {i.name: i for i in env.all_instances()}
    slots = [
        (
            name,
            slot_values(members[name], env=env, host=host, accelerator=accelerator),
        )
        for name in group.slot_names()
    ]
    obj = instance_group_object(env, group, slots)
    obj["spec"]["imageVolumes"] = {host.name: image_path}
    return obj


def manager_inputs(cp: ControlPlane, obj: dict[str, Any]) -> InstanceGroupManagerInputs:
    """What ``up`` gives the InstanceGroupManager kind for ``obj``."""
    spec = obj["spec"]
    rendered = {**obj, "spec": {k: v for k, v in spec.items() if k != "imageVolumes"}}
    return InstanceGroupManagerInputs(
        cluster="ig",
        kubeconfig=str(cp.kubeconfig_path),
        cluster_ca="sha256:test",
        name=obj["metadata"]["name"],
        size=spec["size"],
        min_size=spec["minSize"],
        max_size=spec["maxSize"],
        manifest=yaml.safe_dump(rendered, sort_keys=False),
        image_volumes=spec["imageVolumes"],
        timeout=900,
    )


def status(client: Client, name: str) -> dict[str, Any]:
    return client.get(InstanceGroupCR, name).to_dict().get("status") or {}  # type: ignore[attr-defined]


def settled(client: Client, name: str, digests: dict[str, str]) -> dict[str, Any] | None:
    """The status once every member is healthy and made from its slot's digest."""
    found = status(client, name)
    members = found.get("members") or []
    done = (
        found.get("targetSize") == SIZE
        and len(members) == SIZE
        and all(m["phase"] == "healthy" and m["digest"] == digests[m["name"]] for m in members)
    )
    return found if done else None


def digests_of(obj: dict[str, Any]) -> dict[str, str]:
    return slot_digests(obj["spec"])


def domains(prefix: str) -> dict[str, str]:
    """This machine's domains named ``prefix…``, with their state."""
    listed = subprocess.run(
        ["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    found = {}
    for name in listed:
        if name.startswith(prefix):
            state = subprocess.run(
                ["virsh", "-c", "qemu:///system", "domstate", name],
                capture_output=True, text=True, check=False,
            ).stdout.strip()  # fmt: skip
            found[name] = state
    return found


def reasons(client: Client, name: str) -> list[str]:
    events = [
        e for e in client.list(Event, namespace="*")
        if e.involvedObject.kind == "InstanceGroup" and e.involvedObject.name == name
    ]  # fmt: skip
    events.sort(key=lambda e: e.lastTimestamp or e.eventTime or e.metadata.creationTimestamp)
    return [e.reason for e in events]


@dataclass
class Made:
    """The group as the tests left it: its object and the kind's state of it."""

    client: Client
    cp: ControlPlane
    obj: dict[str, Any]
    state: InstanceGroupManagerState


@pytest.fixture(scope="module")
def group(cluster, image) -> Iterator[Made]:
    """The group made by the kind: its object applied, waited for until both members are up."""
    cp, client = cluster
    obj = group_object(group_env(), image)
    name = obj["metadata"]["name"]
    start = time.monotonic()
    _, state = MANAGER.create(manager_inputs(cp, obj))
    print(f"a group of {SIZE} made in {time.monotonic() - start:.1f} s")
    made = Made(client, cp, obj, state)
    try:
        yield made
    finally:
        with contextlib.suppress(Exception):
            client.delete(InstanceGroupCR, name)
            wait_for("the group's object to go", lambda: not _exists(client, name), 600)


def _exists(client: Client, name: str) -> bool:
    try:
        client.get(InstanceGroupCR, name)
    except Exception:
        return False
    return True


def test_the_operator_makes_the_members_from_their_slots(group):
    client, obj = group.client, group.obj
    name = obj["metadata"]["name"]
    assert (group.state.healthy, group.state.updated, group.state.target) == (SIZE, SIZE, SIZE)
    assert group.state.members == ("ig-0", "ig-1")
    prefix = render.owner(group_env()) + "-ig-"
    assert domains(prefix) == {f"{prefix}0": "running", f"{prefix}1": "running"}
    found = status(client, name)
    assert (found["healthyMembers"], found["updatedMembers"]) == (SIZE, SIZE)
    assert {m["host"] for m in found["members"]} == {"localhost"}
    assert "MembersCreated" in reasons(client, name)
    # `unkai status` shows each member, its host, health and template.
    shown = cluster_status(group.cp.kubeconfig_path)["groups"][name]
    assert (shown["healthy"], shown["updated"], shown["settled"]) == (SIZE, SIZE, True)
    assert [(m["name"], m["host"], m["phase"]) for m in shown["members"]] == [
        ("ig-0", "localhost", "healthy"),
        ("ig-1", "localhost", "healthy"),
    ]
    assert any(
        e["reason"] == "MemberReady" for e in cluster_status(group.cp.kubeconfig_path)["events"]
    )
    assert reasons(client, name).count("MemberReady") >= SIZE


def test_a_destroyed_member_is_made_again(group):
    client, obj = group.client, group.obj
    name = obj["metadata"]["name"]
    domain = render.owner(group_env()) + "-ig-0"
    before = len(reasons(client, name))
    failed = time.monotonic()
    subprocess.run(["virsh", "-c", "qemu:///system", "destroy", domain], check=True)
    wait_for("the repair", lambda: "MemberRepair" in reasons(client, name)[before:], 60)
    wait_for("the member up again", lambda: settled(client, name, digests_of(obj)), 600)
    print(f"destroyed member healthy again after {time.monotonic() - failed:.1f} s")
    assert domains(domain) == {domain: "running"}
    # What the operator did is its status: a refresh reads the same inputs, no change.
    read = MANAGER.read(f"ig/{name}", group.state)
    assert read is not None
    assert input_values(read) == input_values(group.state)
    assert read.healthy == SIZE


def test_a_template_change_rolls_the_group_within_its_limits(group):
    client, obj = group.client, group.obj
    name = obj["metadata"]["name"]
    prefix = render.owner(group_env()) + "-ig-"
    # Rendering again gives the same slots; a new template gives every slot a new digest.
    assert group_object(group_env(), group_image_path(obj)) == obj
    new = roll_object(obj)
    assert not set(digests_of(new).values()) & set(digests_of(obj).values())
    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            existing = domains(prefix)
            found = status(client, name)
            healthy = sum(1 for m in found.get("members") or () if m["phase"] == "healthy")
            samples.append((len(existing), healthy))
            time.sleep(1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.monotonic()
    try:
        group.state = MANAGER.update(f"ig/{name}", group.state, manager_inputs(group.cp, new))
        assert settled(client, name, digests_of(new))
    finally:
        stop.set()
        sampler.join(timeout=30)
    print(f"rolled {SIZE} members in {time.monotonic() - start:.1f} s; {len(samples)} samples")
    assert samples, "nothing was sampled"
    assert max(n for n, _ in samples) <= SIZE + SURGE, samples
    assert min(h for _, h in samples) >= SIZE, samples  # max_unavailable 0
    assert {"UpdateSurge", "UpdateReplace"} <= set(reasons(client, name))


def group_image_path(obj: dict[str, Any]) -> str:
    return obj["spec"]["imageVolumes"]["localhost"]


def roll_object(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` made from a template whose cloud-init data says something new."""
    env = group_env()
    data = env.model_dump(mode="json")
    data["instance_templates"]["web"]["metadata"] = {"rollout": "2"}
    return group_object(model.Environment.model_validate(data), group_image_path(obj))


def test_deleting_the_group_removes_every_member(group):
    client, obj = group.client, group.obj
    name = obj["metadata"]["name"]
    prefix = render.owner(group_env()) + "-ig-"
    MANAGER.delete(f"ig/{name}", group.state)  # waits until the operator removed them
    assert not _exists(client, name)
    assert domains(prefix) == {}
