"""An instance group's object and what the operator reads from and writes into it. Pure,
but for a probe of a socket on this machine."""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path

import jsonschema
import libvirt
import pytest

from unkai import model
from unkai.components import instance_group_object, slot_digest, slot_values
from unkai.drivers.libvirt import cpu_share
from unkai.environments import load_environment
from unkai.operator import instance_group_crd
from unkai.operator._groups import Decision, GroupSpec, MemberView, Memory
from unkai.operator._members import (
    HOST_GRACE,
    Check,
    GroupWorker,
    Observed,
    Recorded,
    _cpu_use,
    _sample,
    fresh,
    group_spec,
    memory_of,
    observe,
    probe,
    recorded,
    slot_digests,
    slot_inputs,
    status_of,
)
from unkai.operator._pools import Event

ROOT = Path(__file__).resolve().parents[3]
IMAGE = "/var/lib/unkai/images/unkai-local-debian-12-0123456789ab.qcow2"


def managed_local(**group: object) -> model.Environment:
    data = load_environment("local", root=ROOT).model_dump(mode="json")
    data["settings"] = {**data["settings"], "management_cluster": "apps"}
    data["instance_groups"]["web"].update(group)
    return model.Environment.model_validate(data)


def group_object(env: model.Environment) -> dict:
    group = env.instance_groups["web"]
    members = {i.name: i for i in env.all_instances()}
    slots = [
        (
            name,
            slot_values(members[name], env=env, host=env.hosts["localhost"], accelerator="tcg"),
        )
        for name in group.slot_names()
    ]
    obj = instance_group_object(env, group, slots)
    obj["spec"]["imageVolumes"] = {"localhost": IMAGE}
    return obj


def test_the_object_has_a_slot_for_each_member_and_the_schema_accepts_it():
    env = managed_local(max_size=3, health_check={"type": "tcp", "port": 22})
    obj = group_object(env)
    (version,) = instance_group_crd()["spec"]["versions"]
    jsonschema.validate(obj, version["schema"]["openAPIV3Schema"])
    assert obj["metadata"]["name"] == "unkai-local-web"
    assert [s["name"] for s in obj["spec"]["slots"]] == ["web-0", "web-1", "web-2", "web-3"]
    assert obj["spec"]["healthCheck"]["port"] == 22
    inputs = slot_inputs(obj["spec"])
    assert inputs["web-3"].name == "unkai-local-web-3"
    assert inputs["web-3"].image_volume_path == IMAGE
    assert obj["spec"]["slots"][3]["digest"] == slot_digest(obj["spec"]["slots"][3]["inputs"])
    # Each slot has its own SSH port; rendering again gives the same bytes.
    assert len({i.ssh_port for i in inputs.values()}) == 4
    assert group_object(env) == obj


def test_the_reconciler_reads_the_policy_from_the_object():
    env = managed_local(
        size=2,
        min_size=1,
        max_size=3,
        update_policy={"max_surge": 0, "max_unavailable": 1},
        autoscaling={"target_cpu_utilization": 0.75, "scale_in_stabilization_s": 120},
        health_check={"initial_delay_s": 45},
    )
    obj = group_object(env)
    spec = group_spec("web", obj["spec"])
    assert (spec.size, spec.min_size, spec.max_size) == (2, 1, 3)
    assert (spec.max_surge, spec.max_unavailable) == (0, 1)
    assert (spec.target_cpu, spec.scale_in_stabilization, spec.initial_delay) == (0.75, 120, 45)
    assert list(spec.slots) == ["web-0", "web-1", "web-2"]
    # A new image (its volume carries its content digest) is a new digest for every slot.
    obj["spec"]["imageVolumes"] = {"localhost": IMAGE.replace("0123", "4567")}
    again = group_spec("web", obj["spec"])
    assert not set(again.slots.values()) & set(spec.slots.values())
    # So is a new version of the Secret the members' secret env is kept in; the same
    # version is the same digest.
    versioned = {**obj["spec"], "secretVersion": "4711"}
    assert not set(slot_digests(versioned).values()) & set(again.slots.values())
    assert slot_digests({**versioned}) == slot_digests(versioned)
    assert slot_digests({**versioned, "secretVersion": "4712"}) != slot_digests(versioned)


def test_what_a_round_keeps_in_status_reads_back_the_same():
    obj = group_object(managed_local())
    digests = slot_digests(obj["spec"])
    records = {
        "web-0": Recorded(
            digests["web-0"],
            1_000.0,
            "healthy",
            "127.0.0.1",
            ready=1_040.0,
            host_keys=("ssh-ed25519 AAAAC3Nza web-0",),
        ),
        "web-1": Recorded("old", 1_010.0, "booting"),
    }
    observed = Observed(
        members=(
            MemberView("web-0", digests["web-0"], "healthy", 1_000.0, cpu=0.25, ready=1_040.0),
            MemberView("web-1", "old", "booting", 1_010.0),
        ),
        records=records,
        hosts={"web-0": "localhost", "web-1": "localhost"},
    )
    memory = Memory(target=2, observed_size=2, recommendations=((1_100.0, 2),), repairs=(900.0,))
    status = status_of(Decision(target=2, memory=memory), observed, records, obj["spec"])
    assert (status["healthyMembers"], status["updatedMembers"]) == (1, 1)
    assert status["members"][0]["cpuPercent"] == 25
    assert recorded(status) == records
    (version,) = instance_group_crd()["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    jsonschema.validate(status, schema)
    kept = schema["properties"]["members"]["items"]["properties"]
    assert {"ready", "hostKeys"} <= set(kept)  # not pruned by the API server
    assert memory_of(status) == memory


@pytest.fixture
def listener():
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_health_checks_reach_the_guest(listener):
    obj = group_object(managed_local())
    nat = slot_inputs(obj["spec"])["web-0"].model_copy(update={"ssh_port": None})
    assert probe(Check(), None, nat)
    assert probe(Check("tcp", listener), "127.0.0.1", nat)
    assert probe(Check("http", listener, "/"), "127.0.0.1", nat)
    assert not probe(Check("http", listener, "/missing"), "127.0.0.1", nat)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert not probe(Check("tcp", port), "127.0.0.1", nat)
    # On a user network only SSH is reachable, through its forwarded port.
    user = slot_inputs(obj["spec"])["web-0"]
    assert not probe(Check("tcp", listener), "10.0.2.15", user)
    assert probe(Check("tcp", 22), None, user.model_copy(update={"ssh_port": listener}))


def test_cpu_use_is_a_share_of_the_vcpus():
    assert cpu_share((0.0, 0), (10.0, 5 * 10**9), vcpus=1) == 0.5
    assert cpu_share((0.0, 0), (10.0, 5 * 10**9), vcpus=2) == 0.25
    assert cpu_share((0.0, 0), (1.0, 3 * 10**9), vcpus=1) == 1.0
    assert cpu_share((5.0, 0), (5.0, 10), vcpus=1) is None
    assert cpu_share((0.0, 10), (1.0, 0), vcpus=1) is None


def test_cpu_use_is_measured_from_readings_after_the_initialization():
    worker = GroupWorker("web")
    # Up at 100, initialized at 130; a 20 s window. A whole vCPU until 130, then a quarter.
    for t in range(100, 131, 5):
        _sample(worker, "web-0", float(t), (t - 100) * 10**9)
    assert _cpu_use(worker, "web-0", 130.0, 20.0, 1, since=130.0) is None
    _sample(worker, "web-0", 135.0, 30 * 10**9 + 5 * 10**9 // 4)
    assert _cpu_use(worker, "web-0", 135.0, 20.0, 1, since=130.0) is None  # 5 s of readings
    _sample(worker, "web-0", 140.0, 30 * 10**9 + 10 * 10**9 // 4)
    assert _cpu_use(worker, "web-0", 140.0, 20.0, 1, since=130.0) == 0.25  # half the window
    # Without the initialization, the window would still hold the end of the boot.
    assert _cpu_use(worker, "web-0", 140.0, 20.0, 1, since=0.0) == 0.625


def test_group_spec_defaults_match_the_decisions():
    minimal = {"size": 1, "minSize": 1, "maxSize": 1, "slots": []}
    assert group_spec("g", minimal) == GroupSpec(name="g", size=1, min_size=1, max_size=1, slots={})


def test_a_template_with_secrets_names_its_secret_and_carries_no_value():
    """The members' secret env is a Secret the object names; no slot holds a value."""
    env = managed_local()
    assert set(env.instance_templates["web"].secrets) == {"WEB_TOKEN"}
    obj = group_object(env)
    (version,) = instance_group_crd()["spec"]["versions"]
    jsonschema.validate(obj, version["schema"]["openAPIV3Schema"])
    assert obj["spec"]["secretName"] == obj["metadata"]["name"]
    assert all("secret_env" not in slot["inputs"] for slot in obj["spec"]["slots"])
    assert all(i.secret_env is None for i in slot_inputs(obj["spec"]).values())
    data = env.model_dump(mode="json")
    data["instance_templates"]["web"]["secrets"] = {}
    assert "secretName" not in group_object(model.Environment.model_validate(data))["spec"]


def test_unkai_ssh_finds_a_member_in_its_groups_status():
    from unkai.cli.cloud import guest_known_hosts, member_vms
    from unkai.drivers.kubernetes._instance_groups import _status

    obj = group_object(managed_local())
    records = {"web-1": Recorded("d", 1_000.0, "healthy", "127.0.0.1", ready=1_040.0,
                                 host_keys=("ssh-ed25519 AAAAC3Nza web-1",))}  # fmt: skip
    observed = Observed(
        members=(MemberView("web-1", "d", "healthy", 1_000.0),),
        records=records,
        hosts={"web-1": "localhost"},
    )
    memory = Memory(target=1, observed_size=1)
    obj["status"] = status_of(Decision(target=1, memory=memory), observed, records, obj["spec"])
    (vm,) = member_vms({"unkai-local-web": _status(obj)}).values()
    port = slot_inputs(obj["spec"])["web-1"].ssh_port
    assert vm == {
        "name": "web-1",
        "host": "localhost",
        "ssh_port": port,
        "ips": [],  # reached on its forwarded port, not the loopback address it recorded
        "host_keys": ["ssh-ed25519 AAAAC3Nza web-1"],
    }
    assert guest_known_hosts(vm) == f"[127.0.0.1]:{port} ssh-ed25519 AAAAC3Nza web-1\n"


REFUSED = "qemu+tcp://127.0.0.1:1/system"
"""A libvirt URI nothing answers at (the connection is refused at once)."""


@pytest.fixture
def answering_host():
    """libvirt's in-process test driver with web-0's domain running on it."""
    host = libvirt.open("test:///default")  # its state lasts while a connection is open
    domain = host.defineXML(
        "<domain type='test'><name>unkai-local-web-0</name><memory>524288</memory>"
        "<os><type>hvm</type></os></domain>"
    )
    domain.create()
    yield "test:///default"
    domain.destroy()
    domain.undefine()
    host.close()


def test_a_host_that_does_not_answer_leaves_its_members_unreachable_then_lost(answering_host):
    # web-0 and web-2 on a host that answers, web-1 and web-3 on one that does not.
    obj = group_object(managed_local(max_size=3))
    for slot in obj["spec"]["slots"]:
        if slot["name"] in ("web-1", "web-3"):
            slot["inputs"].update(libvirt_uri=REFUSED, host="gone")
        else:
            slot["inputs"].update(libvirt_uri=answering_host)
    obj["spec"]["imageVolumes"]["gone"] = IMAGE
    digests = slot_digests(obj["spec"])
    records = {
        name: Recorded(digests[name], 1_000.0, "healthy", ready=1_040.0)
        for name in ("web-0", "web-1")
    }
    worker = GroupWorker("unkai-local-web")

    first = observe(worker, obj["spec"], records, now=2_000.0)
    phases = {m.name: m.phase for m in first.members}
    assert phases == {"web-0": "healthy", "web-1": "unreachable"}
    assert first.down == {"web-1", "web-3"}
    assert set(first.records) == {"web-0", "web-1"}  # nothing forgotten
    ((kind, reason, message),) = [(e.type, e.reason, e.message) for e in first.events]
    assert (kind, reason) == ("Warning", "HostUnreachable")
    assert "host gone does not answer" in message and "Connection refused" in message

    still = observe(worker, obj["spec"], records, now=2_000.0 + HOST_GRACE - 1)
    assert {m.name: m.phase for m in still.members}["web-1"] == "unreachable"
    assert still.events == ()  # said once, not every round

    lost = observe(worker, obj["spec"], records, now=2_000.0 + HOST_GRACE)
    assert {m.name: m.phase for m in lost.members}["web-1"] == "lost"

    # The host answers again: its members are read from it as before, and that is said.
    for slot in obj["spec"]["slots"]:
        slot["inputs"]["libvirt_uri"] = answering_host
    back = observe(worker, obj["spec"], records, now=2_100.0 + HOST_GRACE)
    assert back.down == frozenset()
    assert [(e.reason, e.message) for e in back.events] == [
        ("HostAnswers", "host gone answers again")
    ]
    status = status_of(Decision(target=2, memory=Memory(target=2)), lost, lost.records, obj["spec"])
    assert [m["phase"] for m in status["members"]] == ["healthy", "lost"]


def test_a_standing_condition_is_posted_once_and_again_when_it_comes_back():
    worker = GroupWorker("unkai-local-web")
    full = Event("Warning", "NoFreeSlot", "1 more member(s) wanted but every one of the 3 slots")
    made = Event("Normal", "MembersCreated", "making web-2")
    assert fresh(worker, [full]) == [full]
    assert fresh(worker, [full]) == []
    assert fresh(worker, [full, made]) == [made]
    assert fresh(worker, []) == []
    assert fresh(worker, [full]) == [full]
