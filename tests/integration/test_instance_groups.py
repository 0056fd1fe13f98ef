"""Managed instance groups: the operator makes, heals and rolls real VMs.

A real control plane (its operator included) and this machine's libvirt: the provider's
``InstanceGroupManager`` kind applies an ``InstanceGroup`` object made from an
environment's group (each slot's inputs rendered as for a plain instance) and waits, and
the operator makes its members, boots them to "cloud-init finished", recreates one whose
domain was destroyed (which a refresh then reads as no change), rolls the group to a new
template within its surge and unavailability limits (sampled every second), and removes
every member when the object is deleted.

The first group's members have a secret env: applying the same value again changes
nothing, and a new value rolls the group (surge 1, as a template change does) and is in
every new member, while the object only ever holds the Secret's version.

A second group autoscales between one and two members on the CPU use libvirt reports of
their domains: a loop in each guest burns a vCPU while an HTTP server of the test (the
host's loopback, a user-mode guest's 10.0.2.2) says so. Load scales it out at once and
never past ``max_size``; without load it scales back in to ``min_size``, and only after
its stabilization window.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
from unkai.drivers.kubernetes import ControlPlane, apply_group_secret, kube_client
from unkai.drivers.kubernetes._process import free_ports
from unkai.environments import load_environment
from unkai.kinds import InstanceGroupManagerInputs, InstanceGroupManagerState, input_values
from unkai.operator import GROUP, VERSION
from unkai.operator._members import slot_digests
from unkai.provider.resources.instance_group import InstanceGroupManager
from unkai.provider.resources.vm_image import VmImage
from unkai.toolchain import LIBVIRTD, cached_probe, ensure_running, operator_key

ROOT = Path(__file__).resolve().parents[2]
InstanceGroupCR = create_global_resource(GROUP, VERSION, "InstanceGroup", "instancegroups")
SIZE, SURGE = 2, 1
MANAGER = InstanceGroupManager()


TOKEN = "GROUP_TOKEN"
"""The variable of the ``ig`` members' secret env (its value is the test's)."""


def group_env(
    name: str = "ig", *, template: dict[str, Any] | None = None, **group: Any
) -> model.Environment:
    """``local`` with one managed group ``name`` of 512 MiB members, and nothing else.

    ``template`` changes the members' template; ``group`` the group. The ``ig`` members
    have one secret, :data:`TOKEN`.
    """
    data = load_environment("local", root=ROOT).model_dump(mode="json")
    data.update(
        name="igtest",
        instances={},
        workloads={},
        container_images={},
        settings={**data["settings"], "ssh_port_base": 2320, "management_cluster": "apps"},
    )
    # The cluster only hosts the operator: a simulated pool, not local's VM node.
    data["clusters"]["apps"]["node_pools"] = [
        {"name": "default", "machine_type": "e2-small", "size": 1}
    ]
    # local's web template has a secret env of its own (the e2e test's): replaced here.
    secrets = {TOKEN: "group-token"} if name == "ig" else {}
    data["instance_templates"]["web"].update(
        machine_type="custom-1-512", secrets=secrets, **(template or {})
    )
    data["instance_groups"] = {
        name: {
            "name": name,
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
    """The group's image uploaded to this machine's pool (the cache builds it once).

    First the members a killed earlier run left go (their definitions outlive a reboot):
    a stopped ``as-0`` would otherwise be repaired and a spare ``as-1`` removed, and the
    tests would count those events as their own.
    """
    env = group_env()
    host = env.hosts["localhost"]
    with libvirt.session(host.libvirt_uri) as conn:
        # Before the pool is made: a sweep that leaves it empty removes it.
        left, _ = conn.sweep(
            env.name,
            project=env.project,
            pool=render.STORAGE_POOL,
            owns=functools.partial(render.owned_by, render.owner(env)),
        )
        conn.ensure_pool(render.STORAGE_POOL, render.STORAGE_POOL_PATH)
    if left:
        print(f"removed what an earlier run left: {', '.join(left)}")
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
    """The object of ``env``'s one group, its members layered over ``image_path``."""
    (group,) = env.instance_groups.values()
    host = env.hosts["localhost"]
    accelerator = cached_probe().accelerator
    # The project's operator key authorised, as `up` does: the tests log in to members.
    operator = operator_key(ROOT).with_suffix(".pub").read_text(encoding="utf-8").strip()
    members = {i.name: render.with_keys(i, (operator,)) for i in env.all_instances()}
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


def manager_inputs(
    cp: ControlPlane, obj: dict[str, Any], secret_env: dict[str, str] | None = None
) -> InstanceGroupManagerInputs:
    """What ``up`` gives the InstanceGroupManager kind for ``obj`` (and its secret env)."""
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
        secret_env=secret_env,
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


def live(client: Client, name: str) -> dict[str, Any]:
    """The object as the API server has it (``up`` added the image volumes and the
    secret env's version to what was rendered)."""
    return client.get(InstanceGroupCR, name).to_dict()  # type: ignore[attr-defined]


def digests_of(client: Client, name: str) -> dict[str, str]:
    """What the operator makes each slot's member from now."""
    return slot_digests(live(client, name)["spec"])


FIRST_TOKEN, SECOND_TOKEN = "first-" + uuid.uuid4().hex, "second-" + uuid.uuid4().hex


def ssh(port: int, command: str) -> str:
    """``command``'s output in a member (its forwarded port, the project's operator key)."""
    proc = subprocess.run(
        [
            "ssh", "-i", str(operator_key(ROOT)), "-p", str(port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "unkai@127.0.0.1", command,
        ],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


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
    started: float = field(default_factory=time.monotonic)


@pytest.fixture(scope="module")
def group(cluster, image) -> Iterator[Made]:
    """The group made by the kind: its object applied, waited for until both members are up."""
    cp, client = cluster
    obj = group_object(group_env(), image)
    name = obj["metadata"]["name"]
    start = time.monotonic()
    _, state = MANAGER.create(manager_inputs(cp, obj, {TOKEN: FIRST_TOKEN}))
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
    wait_for("the member up again", lambda: settled(client, name, digests_of(client, name)), 600)
    print(f"destroyed member healthy again after {time.monotonic() - failed:.1f} s")
    assert domains(domain) == {domain: "running"}
    # What the operator did is its status: a refresh reads the same inputs, no change.
    read = MANAGER.read(f"ig/{name}", group.state)
    assert read is not None
    assert input_values(read) == input_values(group.state)
    assert read.healthy == SIZE


def _libvirtd_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _uuid(domain: str) -> str:
    return subprocess.run(
        ["virsh", "-c", "qemu:///system", "domuuid", domain],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def _uuids(prefix: str) -> dict[str, str]:
    return {name: _uuid(name) for name in domains(prefix)}


def _phases(client: Client, name: str) -> dict[str, str]:
    return {m["name"]: m["phase"] for m in status(client, name).get("members") or ()}


def test_a_host_that_stops_answering_leaves_its_members_counted_then_lost_then_back(group):
    """libvirtd stopped for longer than the grace period, then started again.

    Its guests run on meanwhile (QEMU does not need libvirtd). The operator goes on with
    its rounds: the members are ``unreachable``, then ``lost``; every slot is on this
    host, so none can be made elsewhere, and that is said. Back, the same domains count
    again: nothing was deleted, remade or rolled.
    """
    client, obj = group.client, group.obj
    name = obj["metadata"]["name"]
    prefix = render.owner(group_env()) + "-ig-"
    before = _uuids(prefix)
    seen = len(reasons(client, name))
    start = time.monotonic()
    try:
        for pid in _libvirtd_pids():
            os.kill(pid, signal.SIGTERM)
        wait_for("libvirtd to stop", lambda: not _libvirtd_pids(), 30)
        wait_for(
            "the members unreachable",
            lambda: set(_phases(client, name).values()) == {"unreachable"},
            60,
        )
        print(f"unreachable after {time.monotonic() - start:.1f} s")
        wait_for("the members lost", lambda: set(_phases(client, name).values()) == {"lost"}, 120)
        print(f"lost after {time.monotonic() - start:.1f} s")
        assert len(_phases(client, name)) == SIZE  # kept in the status, not forgotten
        shown = cluster_status(group.cp.kubeconfig_path)["groups"][name]
        assert {m["phase"] for m in shown["members"]} == {"lost"}
    finally:
        assert ensure_running(LIBVIRTD) in ("started", "running")
    wait_for("the members back", lambda: settled(client, name, digests_of(client, name)), 120)
    print(f"back {time.monotonic() - start:.1f} s after libvirtd stopped")
    assert _uuids(prefix) == before  # the same domains: none remade
    during = reasons(client, name)[seen:]
    assert {"HostUnreachable", "NoFreeSlot", "HostAnswers"} <= set(during), during
    assert not {"MemberRepair", "MembersCreated", "MembersRemoved"} & set(during), during


def test_a_template_change_rolls_the_group_within_its_limits(group):
    client, obj = group.client, group.obj
    name = obj["metadata"]["name"]
    prefix = render.owner(group_env()) + "-ig-"
    # Rendering again gives the same slots; a new template gives every slot a new digest.
    assert group_object(group_env(), group_image_path(obj)) == obj
    new = roll_object(obj)
    assert not set(slot_digests(new["spec"]).values()) & set(slot_digests(obj["spec"]).values())
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
        group.state = MANAGER.update(
            f"ig/{name}", group.state, manager_inputs(group.cp, new, {TOKEN: FIRST_TOKEN})
        )
        group.obj = new
        assert settled(client, name, digests_of(client, name))
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


def test_a_new_secret_value_rolls_the_group_and_reaches_every_member(group):
    client, obj = group.client, group.obj
    name = obj["metadata"]["name"]
    found = live(client, name)
    version, before = found["spec"]["secretVersion"], digests_of(client, name)
    # The same value applied again writes nothing: the same version, no roll.
    again = apply_group_secret(
        kubeconfig=group.cp.kubeconfig_path,
        name=found["spec"]["secretName"],
        values={TOKEN: FIRST_TOKEN},
        labels=found["metadata"].get("labels") or {},
    )
    assert again == version
    surges = reasons(client, name).count("UpdateSurge")
    start = time.monotonic()
    group.state = MANAGER.update(
        f"ig/{name}", group.state, manager_inputs(group.cp, obj, {TOKEN: SECOND_TOKEN})
    )
    print(f"rolled {SIZE} members onto a new secret value in {time.monotonic() - start:.1f} s")
    found = live(client, name)
    assert found["spec"]["secretVersion"] != version
    after = digests_of(client, name)
    assert settled(client, name, after)
    assert not set(after.values()) & set(before.values())
    assert reasons(client, name).count("UpdateSurge") > surges  # create before delete
    # In every member, root's only; in the object, never.
    ports = {slot["name"]: slot["inputs"]["ssh_port"] for slot in found["spec"]["slots"]}
    for member in status(client, name)["members"]:
        shown = ssh(ports[member["name"]], "sudo cat /etc/unkai/secrets.env")
        assert f"{TOKEN}={SECOND_TOKEN}" in shown, member["name"]
    assert SECOND_TOKEN not in json.dumps(found) and FIRST_TOKEN not in json.dumps(found)


def test_deleting_the_group_removes_every_member(group):
    client, obj = group.client, group.obj
    name = obj["metadata"]["name"]
    prefix = render.owner(group_env()) + "-ig-"
    MANAGER.delete(f"ig/{name}", group.state)  # waits until the operator removed them
    assert not _exists(client, name)
    assert domains(prefix) == {}


# --- autoscaling ----------------------------------------------------------------------
# A second group, made after the first is gone: one member, at most two, aiming for half
# a vCPU each. Its members' CPU use is what libvirt reports of their domains; the load is
# real work inside the guests, switched on and off from here.

AS_MIN, AS_MAX = 1, 2
TARGET_CPU = 0.5
WINDOW_S, INITIALIZATION_S, SCALE_IN_S = 20, 30, 40

LOAD_LOOP = """\
# Burn one CPU for 5 s at a time while the test's host answers 200 on /load.
import socket
import time
import urllib.request

URL = "http://10.0.2.2:{port}/load?member=" + socket.gethostname()
while True:
    try:
        with urllib.request.urlopen(URL, timeout=2) as reply:
            loaded = reply.status == 200
    except OSError:  # 404 (off), or the host not answering
        loaded = False
    if loaded:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            pass
    else:
        time.sleep(2)
"""


@dataclass
class LoadSwitch:
    """What the members' load loop asks for: served on 127.0.0.1 (a guest's 10.0.2.2).

    Attributes:
        port: The port it answers on.
        on: Set: ``/load`` answers 200 (burn); clear: 404 (rest).
        asked: Requests so far, by the member (hostname) that asked.
    """

    port: int
    on: threading.Event = field(default_factory=threading.Event)
    asked: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def load() -> Iterator[LoadSwitch]:
    """A tiny HTTP server the members' load loop polls; load starts switched off."""
    switch = LoadSwitch(port=free_ports(1)[0])

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            member = urllib.parse.parse_qs(url.query).get("member", ["?"])[0]
            switch.asked[member] = switch.asked.get(member, 0) + 1
            self.send_response(200 if url.path == "/load" and switch.on.is_set() else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", switch.port), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield switch
    finally:
        server.shutdown()
        server.server_close()


def autoscaled_env(port: int) -> model.Environment:
    """``as``: 1 to 2 members whose cloud-init starts the load loop (a lean image runs
    ``write_files`` and ``runcmd``); ``systemd-run --no-block`` so cloud-init finishes."""
    user_data = {
        "write_files": [
            {
                "path": "/usr/local/bin/unkai-load",
                "permissions": "0755",
                "content": LOAD_LOOP.format(port=port),
            }
        ],
        "runcmd": [
            [
                "systemd-run", "--no-block", "--unit=unkai-load", "--property=Restart=always",
                "python3", "/usr/local/bin/unkai-load",
            ]
        ],
    }  # fmt: skip
    return group_env(
        "as",
        template={"user_data": user_data},
        size=AS_MIN,
        min_size=AS_MIN,
        max_size=AS_MAX,
        autoscaling={
            "target_cpu_utilization": TARGET_CPU,
            "window_s": WINDOW_S,
            "initialization_s": INITIALIZATION_S,
            "scale_in_stabilization_s": SCALE_IN_S,
        },
    )


@pytest.fixture(scope="module")
def scaled(cluster, image, load) -> Iterator[Made]:
    """The autoscaled group made by the kind, its one member up (after the tests of ``ig``)."""
    cp, client = cluster
    obj = group_object(autoscaled_env(load.port), image)
    name = obj["metadata"]["name"]
    made_at = time.monotonic()
    _, state = MANAGER.create(manager_inputs(cp, obj))
    print(f"an autoscaled group of {AS_MIN} made in {time.monotonic() - made_at:.1f} s")
    try:
        yield Made(client, cp, obj, state, made_at)
    finally:
        with contextlib.suppress(Exception):
            client.delete(InstanceGroupCR, name)
            wait_for("the group's object to go", lambda: not _exists(client, name), 600)


@dataclass(frozen=True)
class Sample:
    """The group once a second: its domains on this machine and its status."""

    domains: int
    target: int | None
    healthy: int
    cpu: dict[str, int]


def members_of(found: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: m["phase"] for m in found.get("members") or ()}


def cpu_of(found: dict[str, Any]) -> dict[str, int]:
    """Each measured member's CPU use, in percent of its vCPU, as the status says."""
    return {m["name"]: m["cpuPercent"] for m in found.get("members") or () if "cpuPercent" in m}


def test_cpu_load_inside_the_members_scales_the_group_out_and_back_in(scaled, load):
    """Load in the guests scales out to max_size and no further; without it, back to
    min_size, but only after the stabilization window. Sampled every second."""
    client, name = scaled.client, scaled.obj["metadata"]["name"]
    prefix = render.owner(autoscaled_env(load.port)) + "-as-"
    assert (scaled.state.target, scaled.state.members) == (AS_MIN, ("as-0",))
    assert domains(prefix) == {f"{prefix}0": "running"}
    samples: list[Sample] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            existing = domains(prefix)
            found = status(client, name)
            healthy = sum(1 for phase in members_of(found).values() if phase == "healthy")
            samples.append(Sample(len(existing), found.get("targetSize"), healthy, cpu_of(found)))
            time.sleep(1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        # Idle: the member's loop polls, the autoscaler measures it and keeps one member.
        wait_for("as-0's load loop to ask", lambda: load.asked.get("as-0"), 120)
        idle = wait_for(
            "three recommendations for the idle member",
            lambda: (found := status(client, name)).get("recommendations", [])[2:] and found,
            120,
        )
        print(f"idle: CPU {cpu_of(idle)} %, recommendations {idle['recommendations']}")
        assert idle["targetSize"] == AS_MIN, idle
        assert {r["size"] for r in idle["recommendations"]} == {AS_MIN}, idle
        assert "ScaleOut" not in reasons(client, name)

        # Load on: as-0 burns its vCPU (100 %, twice the 50 % aimed for): one more member, at once.
        load.on.set()
        on_at = time.monotonic()
        wait_for("a ScaleOut", lambda: "ScaleOut" in reasons(client, name), 120)
        scale_out_s = time.monotonic() - on_at
        wait_for(
            "two healthy members",
            lambda: members_of(status(client, name)) == {"as-0": "healthy", "as-1": "healthy"},
            400,
        )
        second_s = time.monotonic() - on_at
        print(f"load on → ScaleOut {scale_out_s:.1f} s, → as-1 healthy {second_s:.1f} s")

        # Both burn: their use asks for more than max_size (over 100 % together, so at
        # least 3 members at 50 %), and the group stays at two.
        wait_for("as-1's load loop to ask", lambda: load.asked.get("as-1"), 120)
        loaded = wait_for(
            "both members measured under load",
            lambda: (
                len(cpu := cpu_of(found := status(client, name))) == AS_MAX
                and sum(cpu.values()) > 100
                and found
            ),
            120,
        )
        print(f"loaded: CPU {cpu_of(loaded)} %, recommendations {loaded['recommendations']}")
        assert loaded["targetSize"] == AS_MAX, loaded
        assert max(r["size"] for r in loaded["recommendations"]) == AS_MAX, loaded

        # Load off: the recommendation falls to one at once, the group only after the
        # stabilization window (and the CPU window the old load is averaged over).
        load.on.clear()
        off_at = time.monotonic()
        wait_for(
            "a ScaleIn", lambda: "ScaleIn" in reasons(client, name), WINDOW_S + SCALE_IN_S + 120
        )
        scale_in_s = time.monotonic() - off_at
        assert scale_in_s >= SCALE_IN_S, f"scaled in {scale_in_s:.1f} s after the load stopped"
        wait_for(
            "one member left",
            lambda: (
                domains(prefix) == {f"{prefix}0": "running"}
                and members_of(found := status(client, name)) == {"as-0": "healthy"}
                and found["targetSize"] == AS_MIN
            ),
            120,
        )
        one_s = time.monotonic() - off_at
        print(f"load off → ScaleIn {scale_in_s:.1f} s, → one member {one_s:.1f} s")
    finally:
        stop.set()
        sampler.join(timeout=30)
    assert samples, "nothing was sampled"
    assert max(s.domains for s in samples) <= AS_MAX, samples
    assert min(s.domains for s in samples) >= AS_MIN, samples
    targets = [s.target for s in samples if s.target is not None]
    assert targets and min(targets) >= AS_MIN and max(targets) <= AS_MAX, targets
    assert max(s.healthy for s in samples) == AS_MAX, samples
    # Once out and once in: no flapping.
    said = reasons(client, name)
    assert (said.count("ScaleOut"), said.count("ScaleIn")) == (1, 1), said
    assert "MemberRepair" not in said, said
    # `unkai status` shows the member left and its CPU use.
    shown = cluster_status(scaled.cp.kubeconfig_path)["groups"][name]
    assert (shown["min_size"], shown["max_size"], shown["target"]) == (AS_MIN, AS_MAX, AS_MIN)
    assert [(m["name"], m["phase"]) for m in shown["members"]] == [("as-0", "healthy")]
    assert shown["members"][0]["cpu_percent"] is not None, shown
    MANAGER.delete(f"ig/{name}", scaled.state)
    assert domains(prefix) == {}
    print(
        f"autoscaling: {len(samples)} samples; {time.monotonic() - scaled.started:.1f} s"
        " from applying the group to its deletion"
    )
