"""The node-pool reconciler's decisions: size, scale-up, scale-down, repair. Pure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from unkai.operator import (
    Memory,
    NodeView,
    PodView,
    PoolShape,
    PoolSpec,
    Resources,
    Taint,
    Toleration,
    decide,
)

GIB = 1024**3
NODE = Resources(cpu=4000, memory=16 * GIB, pods=110)
NOW = 10_000.0


def spec(**changes: object) -> PoolSpec:
    base = PoolSpec(
        name="web",
        template="t",
        size=2,
        min_size=1,
        max_size=4,
        shape=PoolShape(allocatable=NODE, labels={"tier": "web"}),
        repair_after=60,
        max_repairs=2,
        repair_window=600,
        scale_down_unneeded=120,
        scale_down_delay_after_add=300,
    )
    return replace(base, **changes)


def node(index: int, *, ready: bool = True, since: float = 0.0) -> NodeView:
    return NodeView(name=f"web-{index}", ready=ready, since=since, allocatable=NODE, template="t")


def pod(name: str, *, node: str | None = None, cpu: int = 1000, **changes: object) -> PodView:
    base = PodView(
        namespace="default",
        name=name,
        node=node,
        requests=Resources(cpu=cpu, memory=GIB, pods=1),
        unschedulable=node is None,
    )
    return replace(base, **changes)


def settled(size: int = 2) -> Memory:
    return Memory(target=size, observed_size=size)


def test_a_new_pool_gets_its_size():
    decision = decide(spec(), Memory(), [], [], now=NOW)
    assert decision.create == ("web-0", "web-1")
    assert decision.remove == decision.repair == ()
    assert (decision.memory.target, decision.memory.observed_size) == (2, 2)
    assert [e.reason for e in decision.events] == ["NodesCreated"]


def test_a_settled_pool_is_left_alone():
    busy = [pod("a", node="web-0", cpu=3000), pod("b", node="web-1", cpu=3000)]
    decision = decide(spec(), settled(), [node(0), node(1)], busy, now=NOW)
    assert (decision.create, decision.remove, decision.repair, decision.events) == ((), (), (), ())
    assert decision.target == 2


def test_a_missing_node_is_created_again_under_its_own_name():
    decision = decide(spec(size=3), settled(3), [node(0), node(2)], [], now=NOW)
    assert decision.create == ("web-1",)


def test_unschedulable_pods_that_fit_a_new_node_scale_the_pool_up():
    full = [pod("a", node="web-0", cpu=3500), pod("b", node="web-1", cpu=3500)]
    pending = [pod(f"p{i}", cpu=1500) for i in range(3)]  # 4.5 CPUs: two new nodes
    decision = decide(spec(), settled(), [node(0), node(1)], full + pending, now=NOW)
    assert decision.target == 4
    assert decision.create == ("web-2", "web-3")
    assert decision.memory.last_scale_up == NOW
    assert [e.reason for e in decision.events] == ["ScaleUp", "NodesCreated"]


def test_scale_up_stops_at_max_size_and_says_so():
    pending = [pod(f"p{i}", cpu=4000) for i in range(5)]
    decision = decide(spec(), settled(), [node(0), node(1)], pending, now=NOW)
    assert decision.target == 4
    assert [e.reason for e in decision.events] == ["ScaleUp", "ScaleUpLimited", "NodesCreated"]
    assert decision.events[1].type == "Warning"


def test_a_node_coming_up_takes_pending_pods_before_any_new_node():
    coming = NodeView(name="web-2", ready=False, since=NOW - 5, allocatable=NODE, template="t")
    decision = decide(
        spec(size=3), settled(3), [node(0), node(1), coming], [pod("p", cpu=2000)], now=NOW
    )
    assert decision.target == 3 and decision.create == ()


@pytest.mark.parametrize(
    "stranger",
    [
        pytest.param({"cpu": 8000}, id="bigger than a node"),
        pytest.param({"node_selector": {"tier": "db"}}, id="selector of another pool"),
    ],
)
def test_pods_no_node_of_the_pool_could_take_never_scale_it(stranger):
    decision = decide(spec(), settled(), [node(0), node(1)], [pod("p", **stranger)], now=NOW)
    assert decision.target == 2 and decision.events == ()


def test_taints_keep_out_pods_that_do_not_tolerate_them():
    tainted = spec(
        shape=PoolShape(allocatable=NODE, taints=(Taint("dedicated", "NoSchedule", "web"),))
    )
    intolerant = pod("p")
    tolerant = pod(
        "q", tolerations=(Toleration(key="dedicated", value="web", effect="NoSchedule"),)
    )
    assert decide(tainted, settled(), [node(0), node(1)], [intolerant], now=NOW).target == 2
    assert decide(tainted, settled(), [node(0), node(1)], [tolerant], now=NOW).target == 3


def test_tolerations_match_like_the_scheduler():
    taint = Taint("dedicated", "NoSchedule", "web")
    assert Toleration(operator="Exists").tolerates(taint)
    assert Toleration(key="dedicated", operator="Exists", effect="NoSchedule").tolerates(taint)
    assert not Toleration(key="dedicated", value="db").tolerates(taint)
    assert not Toleration(key="dedicated", value="web", effect="NoExecute").tolerates(taint)


def test_an_underused_node_is_removed_after_it_has_been_unneeded_long_enough():
    nodes = [node(0), node(1), node(2)]
    light = [pod("a", node="web-0", cpu=500), pod("b", node="web-2", cpu=500)]
    first = decide(spec(size=3), settled(3), nodes, light, now=NOW)
    # Every node is underused; each is noted, none removed yet.
    assert first.remove == () and set(first.memory.unneeded_since) == {"web-0", "web-1", "web-2"}
    later = decide(spec(size=3), first.memory, nodes, light, now=NOW + 121)
    assert later.remove == ("web-2",)  # the highest index of the longest unneeded
    assert later.target == 2
    assert [e.reason for e in later.events] == ["ScaleDown"]


def test_no_scale_down_soon_after_a_scale_up_nor_below_min_size():
    nodes = [node(0), node(1)]
    memory = Memory(
        target=2,
        observed_size=2,
        last_scale_up=NOW - 100,
        unneeded_since={"web-0": NOW - 1000, "web-1": NOW - 1000},
    )
    assert decide(spec(), memory, nodes, [], now=NOW).remove == ()  # within 300 s of the add
    at_floor = decide(spec(min_size=2), replace(memory, last_scale_up=None), nodes, [], now=NOW)
    assert at_floor.remove == ()


def test_a_node_whose_pods_would_not_fit_elsewhere_or_are_not_controlled_stays():
    nodes = [node(0), node(1)]
    old = Memory(target=2, observed_size=2, unneeded_since={"web-1": 0.0})
    # web-0 is nearly full: web-1's 1.5 CPUs would not fit there.
    crowded = [pod("a", node="web-0", cpu=3000), pod("b", node="web-1", cpu=1500)]
    assert decide(spec(), old, nodes, crowded, now=NOW).remove == ()
    # A bare pod (no controller) on web-1 keeps it; web-0, empty, goes once unneeded long.
    bare = [pod("a", node="web-1", cpu=100, controlled=False)]
    both = replace(old, unneeded_since={"web-0": 0.0, "web-1": 0.0})
    assert decide(spec(), both, nodes, bare, now=NOW).remove == ("web-0",)


def test_daemon_pods_neither_keep_a_node_nor_need_room_elsewhere():
    nodes = [node(0), node(1)]
    old = Memory(target=2, observed_size=2, unneeded_since={"web-1": 0.0, "web-0": 0.0})
    daemons = [pod(f"d{i}", node=f"web-{i}", cpu=3900, daemon=True) for i in range(2)]
    assert decide(spec(), old, nodes, daemons, now=NOW).remove == ("web-1",)


def test_a_node_not_ready_too_long_is_repaired_within_the_rate_limit():
    nodes = [node(0, ready=False, since=NOW - 61), node(1, ready=False, since=NOW - 30), node(2)]
    decision = decide(spec(size=3), settled(3), nodes, [], now=NOW)
    assert decision.repair == ("web-0",)  # web-1 has been NotReady for 30 s only
    assert decision.memory.repairs == (NOW,)
    assert [e.reason for e in decision.events] == ["NodeRepair"]
    # Two repairs in the window already: the third waits, and says so.
    busy = replace(settled(3), repairs=(NOW - 100, NOW - 50))
    limited = decide(spec(size=3), busy, nodes, [], now=NOW)
    assert limited.repair == ()
    assert [e.reason for e in limited.events] == ["RepairLimited"]
    # Once the window has passed, repairs resume.
    assert decide(spec(size=3), busy, nodes, [], now=NOW + 600).repair == ("web-0", "web-1")


def test_no_repair_when_auto_repair_is_off():
    nodes = [node(0, ready=False, since=0.0), node(1)]
    assert decide(spec(auto_repair=False), settled(), nodes, [], now=NOW).repair == ()


def test_a_new_size_from_up_is_taken_and_excess_nodes_leave_highest_first():
    grown = Memory(target=4, observed_size=2)  # the autoscaler had grown it to 4
    nodes = [node(i) for i in range(4)]
    busy = [pod(f"a{i}", node=f"web-{i}", cpu=3000) for i in range(4)]
    decision = decide(spec(size=3, min_size=1), grown, nodes, busy, now=NOW)
    assert decision.target == 3
    assert decision.remove == ("web-3",)
    assert [e.reason for e in decision.events] == ["SizeChanged", "NodesRemoved"]


def test_a_size_outside_new_bounds_is_clamped():
    decision = decide(spec(size=2, min_size=1, max_size=2), Memory(target=4, observed_size=2),
                      [node(i) for i in range(4)], [], now=NOW)  # fmt: skip
    assert decision.target == 2
    assert decision.events[0].reason == "SizeClamped"
    assert decision.remove == ("web-3", "web-2")


def test_a_pool_that_does_not_autoscale_ignores_pending_pods():
    fixed = spec(size=2, min_size=2, max_size=2)
    decision = decide(fixed, settled(), [node(0), node(1)], [pod("p")], now=NOW)
    assert decision.target == 2 and decision.events == ()


def test_a_node_holding_a_pod_its_budget_cannot_spare_is_not_a_candidate():
    nodes = [node(0), node(1)]
    old = Memory(target=2, observed_size=2, unneeded_since={"web-0": 0.0, "web-1": 0.0})
    guarded = [pod("a", node="web-1", cpu=500, disruptable=False)]
    # web-1 is the first choice (highest index) but its pod may not leave: web-0 goes.
    assert decide(spec(), old, nodes, guarded, now=NOW).remove == ("web-0",)


def old(index: int, *, ready: bool = True) -> NodeView:
    # NotReady for 10 s: under the repair delay, so a rollout handles it.
    return replace(node(index, ready=ready, since=NOW - 10), template="v1")


def test_a_rollout_surges_a_new_node_first_then_drains_an_old_one_once_it_is_ready():
    rolled = spec(template="v2")
    first = decide(rolled, settled(), [old(0), old(1)], [], now=NOW)
    assert first.create == ("web-2",) and first.roll == ()  # surge 1, no old one yet
    assert [e.reason for e in first.events] == ["UpgradeSurge"]
    coming = replace(node(2, ready=False), template="v2")
    waiting = decide(rolled, first.memory, [old(0), old(1), coming], [], now=NOW + 5)
    assert waiting.create == () and waiting.roll == ()  # 2 Ready: none may go yet
    ready_new = replace(node(2), template="v2")
    draining = decide(rolled, first.memory, [old(0), old(1), ready_new], [], now=NOW + 10)
    assert draining.roll == ("web-1",) and draining.create == ()
    assert [e.reason for e in draining.events] == ["UpgradeDrain"]
    # web-1 gone: the next new node comes under the lowest free name.
    nxt = decide(rolled, first.memory, [old(0), ready_new], [], now=NOW + 15)
    assert nxt.create == ("web-1",) and nxt.roll == ()


def test_a_rollout_without_surge_drains_first_within_max_unavailable():
    rolled = spec(template="v2", max_surge=0, max_unavailable=1)
    first = decide(rolled, settled(), [old(0), old(1)], [], now=NOW)
    assert first.create == () and first.roll == ("web-1",)
    second = decide(rolled, first.memory, [old(0)], [], now=NOW + 5)
    assert second.create == ("web-1",) and second.roll == ()  # 1 Ready: the floor


def test_a_broken_old_node_is_rolled_first_and_no_scale_down_runs_during_a_rollout():
    rolled = spec(template="v2", size=3)
    nodes = [
        old(0),
        old(1, ready=False),
        replace(node(2), template="v2"),
        replace(node(3), template="v2"),
    ]
    decision = decide(rolled, settled(3), nodes, [], now=NOW)
    assert decision.roll == ("web-1",)
    assert decision.memory.unneeded_since == {}


def test_no_rollout_when_auto_upgrade_is_off():
    decision = decide(
        spec(template="v2", auto_upgrade=False), settled(), [old(0), old(1)], [], now=NOW
    )
    assert decision.create == decision.roll == () and decision.events == ()


def test_a_node_that_has_not_reported_yet_is_starting_until_its_startup_time_is_over():
    # Made 61 s ago and not reported on since (no Ready condition): starting, not broken.
    young = replace(node(0, ready=False, since=NOW - 61), reported=False)
    decision = decide(spec(size=1, node_startup=300), settled(1), [young], [], now=NOW)
    assert decision.repair == ()
    old = replace(young, since=NOW - 301)
    decision = decide(spec(size=1, node_startup=300), settled(1), [old], [], now=NOW)
    assert decision.repair == ("web-0",)
    (event,) = decision.events
    assert "has not reported Ready in 301 s since it was made (more than 300 s)" in event.message
