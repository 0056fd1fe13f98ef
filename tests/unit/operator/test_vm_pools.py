"""A vm pool's nodes as the pool's decisions see them: VMs being made, current or not."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from unkai.operator._members import GroupWorker, Recorded, _Making, slot_digests
from unkai.operator._pools import Memory, NodeView, Resources, decide
from unkai.operator._vm_pools import CURRENT, members_status, node_views, vm_pool_spec

NOW = 1_900_000_000.0
GIB = 1024**3


def spec(size: int = 1, **changes: Any) -> dict[str, Any]:
    slots = [
        {"name": f"apps-default-{i}", "host": "localhost", "digest": f"d{i}", "inputs": {}}
        for i in range(size + 1)
    ]
    return {
        "cluster": "apps", "nodes": "vm", "size": size, "minSize": size, "maxSize": size,
        "cpu": "1", "memory": "2048Mi", "version": "1.36.3", "endpoint": "10.0.2.2:6443",
        "imageVolumes": {"localhost": "/pool/node.qcow2"}, "slots": slots, **changes,
    }  # fmt: skip


def node(name: str, *, ready: bool = True, since: float = NOW - 600) -> NodeView:
    return NodeView(
        name=name, ready=ready, since=since, allocatable=Resources(cpu=1000, memory=GIB, pods=110)
    )


def making(digest: str, started: float) -> _Making:
    return _Making(digest=digest, started=started, future=concurrent.futures.Future())


def test_nodes_are_named_after_their_cluster_and_pool_and_current_by_their_record():
    pool = spec()
    digests = slot_digests(pool)
    records = {
        "apps-default-0": Recorded(digests["apps-default-0"], created=NOW - 900, phase="healthy"),
        "apps-default-1": Recorded(digest="an-older-one", created=NOW - 900, phase="healthy"),
    }
    nodes = [node("apps-default-0"), node("apps-default-1"), node("other-0")]
    views = node_views(GroupWorker("default"), pool, "default", nodes, records)
    assert [(v.name, v.template) for v in views] == [
        ("apps-default-0", CURRENT),
        ("apps-default-1", "an-older-one"),
    ]  # other-0 is no slot of the pool
    assert vm_pool_spec("default", pool).name == "apps-default"
    assert vm_pool_spec("default", pool).template == CURRENT


def test_a_node_being_made_is_starting_whatever_its_node_object_says():
    pool = spec()
    digest = slot_digests(pool)["apps-default-0"]
    worker = GroupWorker("default")
    worker.making["apps-default-0"] = making(digest, NOW - 100)
    # No Node object yet: it counts, starting, so nothing else is made for it.
    (view,) = node_views(worker, pool, "default", [], {})
    assert (view.ready, view.reported, view.since, view.template) == (
        False,
        False,
        NOW - 100,
        CURRENT,
    )
    decision = decide(
        vm_pool_spec("default", pool), Memory(target=1, observed_size=1), [view], [], now=NOW
    )
    assert decision.create == () and decision.repair == ()
    # Its kubelet registered NotReady (as it does before its network is up): still starting,
    # so the 60 s repair delay does not apply; nodeStartupSeconds (600) does.
    registered = node("apps-default-0", ready=False, since=NOW - 90)
    (view,) = node_views(worker, pool, "default", [registered], {})
    assert (view.reported, view.since) == (False, NOW - 100)
    decision = decide(
        vm_pool_spec("default", pool), Memory(target=1, observed_size=1), [view], [], now=NOW
    )
    assert decision.repair == ()


def test_a_missing_node_is_made_in_the_lowest_free_slot_and_an_old_one_is_rolled():
    pool = spec()
    decision = decide(
        vm_pool_spec("default", pool), Memory(target=1, observed_size=1), [], [], now=NOW
    )
    assert decision.create == ("apps-default-0",)
    old = NodeView(**{**node("apps-default-0").__dict__, "template": "an-older-one"})
    decision = decide(
        vm_pool_spec("default", pool), Memory(target=1, observed_size=1), [old], [], now=NOW
    )
    assert decision.create == ("apps-default-1",)  # surge first: a new node in the spare slot


def test_the_status_records_each_node_and_what_unkai_ssh_needs():
    pool = spec()
    records = {
        "apps-default-0": Recorded(digest="d", created=NOW - 900, phase="healthy",
                                   address="127.0.0.1", ready=NOW - 800,
                                   host_keys=("ssh-ed25519 AAA",)),
        "apps-default-1": Recorded(digest="d", created=NOW - 10, phase="booting"),
    }  # fmt: skip
    views = [node("apps-default-0", ready=False)]
    listed = members_status(records, views, pool)
    assert [(m["name"], m["host"], m["phase"]) for m in listed] == [
        ("apps-default-0", "localhost", "down"),
        ("apps-default-1", "localhost", "booting"),
    ]
    assert listed[0]["hostKeys"] == ["ssh-ed25519 AAA"] and listed[0]["address"] == "127.0.0.1"
