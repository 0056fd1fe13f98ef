from __future__ import annotations

import pytest
from placement_envs import build_env as build
from placement_envs import host

from unkai.errors import PlacementError
from unkai.placement import HOST_SELECTOR_PREFIX, Placement, PlacementFailed, place

STD2 = {"machine_type": "e2-standard-2"}  # 2 vCPU, 8192 MiB, 10 GiB boot disk


def test_spread_puts_each_member_on_the_least_loaded_host() -> None:
    env = build(
        {"h1": host(), "h2": host(), "h3": host()},
        templates={"web": STD2},
        groups={"web": {"template": "web", "size": 3, "anti_affinity": False}},
    )
    assert dict(place(env).assignments) == {"web-0": "h1", "web-1": "h2", "web-2": "h3"}


def test_pack_fills_the_most_loaded_host_first_ties_by_name() -> None:
    env = build(
        {"h2": host(), "h1": host(), "h3": host()},
        templates={"web": STD2},
        groups={"web": {"template": "web", "size": 3, "spread": "pack", "anti_affinity": False}},
    )
    # 16 GiB schedulable per host: two members fill h1, the third opens h2.
    assert dict(place(env).assignments) == {"web-0": "h1", "web-1": "h1", "web-2": "h2"}


def test_hard_anti_affinity_overrides_pack() -> None:
    env = build(
        {"h1": host(), "h2": host()},
        templates={"web": STD2},
        groups={"web": {"template": "web", "size": 2, "spread": "pack"}},
    )
    assert set(place(env).assignments.values()) == {"h1", "h2"}


def test_anti_affinity_with_too_few_hosts_is_a_clear_error() -> None:
    env = build(
        {"h1": host(), "h2": host()},
        templates={"web": STD2},
        groups={"web": {"template": "web", "size": 3}},
    )
    with pytest.raises(PlacementFailed) as caught:
        place(env)
    (problem,) = caught.value.problems
    assert problem.instance == "web-2"
    assert problem.reason == "anti-affinity"
    assert "3 members need 3 different hosts, but only 2 hosts" in str(caught.value)
    assert "instance_groups.web.anti_affinity" in str(caught.value)


def test_zone_filter() -> None:
    env = build(
        {"h1": host(zone="a"), "h2": host(zone="b")},
        instances={"x": {**STD2, "zone": "b"}, "y": {**STD2, "zone": "a"}},
    )
    assert dict(place(env).assignments) == {"x": "h2", "y": "h1"}


def test_zone_without_hosts_names_the_zone() -> None:
    env = build({"h1": host(zone="a")}, instances={"x": {**STD2, "zone": "b"}})
    with pytest.raises(PlacementFailed, match=r"cannot place x .*no host is in zone b") as caught:
        place(env)
    assert caught.value.problems[0].reason == "zone"


def test_pinned_host_wins_over_the_weigher() -> None:
    env = build({"h1": host(), "h2": host()}, instances={"x": {**STD2, "host": "h2"}})
    assert place(env).host_of("x") == "h2"


def test_pinned_instances_claim_their_host_before_bigger_ones() -> None:
    env = build(
        {"h1": host(), "h2": host(memory_mb=9216)},  # h2 schedules 8 GiB
        instances={
            "big": {"machine_type": "n2-highmem-2"},  # 16 GiB: only h1
            "pinned": {**STD2, "host": "h1"},  # 8 GiB, must be h1
            "small": STD2,
        },
    )
    with pytest.raises(PlacementFailed) as caught:
        place(env)
    # pinned goes first and keeps its host; big then finds 8 GiB free on h1: short.
    assert [p.instance for p in caught.value.problems] == ["big"]


def test_host_selector_labels_pool_and_host() -> None:
    env = build(
        {
            "h1": host(),
            "h2": host(labels={"disk": "ssd"}),
            "h3": host(pool="fast"),
        },
        pools={"fast": {"zone": "a", "labels": {"disk": "ssd"}}},
        templates={"db": {**STD2, "labels": {f"{HOST_SELECTOR_PREFIX}disk": "ssd", "x": "y"}}},
        groups={"db": {"template": "db", "size": 2}},
    )
    assert set(place(env).assignments.values()) == {"h2", "h3"}


def test_selector_that_matches_nothing() -> None:
    env = build(
        {"h1": host()}, instances={"x": {**STD2, "labels": {f"{HOST_SELECTOR_PREFIX}gpu": "a100"}}}
    )
    with pytest.raises(PlacementFailed, match="has the labels gpu=a100") as caught:
        place(env)
    assert caught.value.problems[0].reason == "labels"


def test_cpu_overcommit_and_memory_reserve() -> None:
    # 2 CPUs x 4.0 = 8 vCPU; 12288 MiB - 4096 reserved = 8 GiB schedulable.
    env = build(
        {"h1": host(cpus=2, memory_mb=12288, pool="p")},
        pools={"p": {"zone": "a", "cpu_overcommit": 4.0, "reserved_memory_mb": 4096}},
        instances={f"x{i}": {"machine_type": "custom-2-2048"} for i in range(4)},
    )
    allocation = place(env).hosts["h1"]
    assert (allocation.cpus.used, allocation.cpus.capacity) == (8, 8)
    assert (allocation.memory_mb.used, allocation.memory_mb.capacity) == (8192, 8192)
    assert allocation.memory_mb.percent == 100.0


def test_memory_overcommit_lets_more_fit() -> None:
    env = build(
        {"h1": host(memory_mb=9216, pool="p")},
        pools={"p": {"zone": "a", "memory_overcommit": 2.0}},
        instances={"x": STD2, "y": STD2},
    )
    assert place(env).hosts["h1"].memory_mb.capacity == 16384


def test_disk_counts_every_disk() -> None:
    env = build(
        {"h1": host(disk_gb=100), "h2": host(disk_gb=100)},
        instances={"db": {**STD2, "disks": [{"name": "data", "size_gb": 85}]}, "web": STD2},
    )
    placement = place(env)
    assert placement.hosts[placement.host_of("db")].disk_gb.used == 95


def test_first_fit_decreasing_places_big_ones_first() -> None:
    # By name, the small ones would spread over both hosts and leave no room for "z".
    env = build(
        {"h1": host(), "h2": host()},
        instances={
            "a": {"machine_type": "e2-medium"},
            "b": {"machine_type": "e2-medium"},
            "z": {"machine_type": "n2-highmem-2"},
        },
    )
    placement = place(env)
    assert placement.host_of("z") == "h1"
    assert {placement.host_of("a"), placement.host_of("b")} == {"h2"}


def test_error_names_instance_resource_shortfall_and_best_host() -> None:
    env = build(
        {"h1": host(memory_mb=13312), "h2": host()},  # 12 GiB and 16 GiB schedulable
        instances={
            "db-0": {"machine_type": "n2-highmem-2", "disks": [{"name": "d", "size_gb": 30}]},
            "app": {"machine_type": "custom-2-13312"},
        },
    )
    with pytest.raises(PlacementError) as caught:
        place(env)
    message = str(caught.value)
    assert message.splitlines()[1] == (
        "  cannot place app (2 vCPU, 13312 MiB, 10 GiB): memory short by 1024 MiB"
        " (needs 13312, 12288 free of 12288) on the best host h1 (zone a); cpu ok, disk ok"
    )
    (problem,) = caught.value.problems  # type: ignore[attr-defined]
    assert (problem.host, problem.reason, problem.shortfalls[0].short) == ("h1", "memory", 1024)


def test_the_briefs_example_shape() -> None:
    env = build(
        {"h1": host(memory_mb=9216), "h2": host(memory_mb=6144)},  # 8192 and 5120
        instances={
            "db-0": {"machine_type": "n2-highmem-2", "disks": [{"name": "d", "size_gb": 30}]},
            "filler": {"machine_type": "e2-standard-2", "host": "h1"},
        },
    )
    with pytest.raises(PlacementFailed) as caught:
        place(env)
    assert str(caught.value.problems[0]) == (
        "cannot place db-0 (2 vCPU, 16384 MiB, 40 GiB): larger than any host: memory needs"
        " 16384 MiB but the largest host h1 (zone a) has 8192 MiB schedulable"
    )
    env = build(
        {"h1": host(memory_mb=17408), "h2": host(memory_mb=6144)},
        instances={
            "db-0": {"machine_type": "custom-2-8192", "disks": [{"name": "d", "size_gb": 30}]},
            "filler": {"machine_type": "e2-standard-2", "host": "h1"},
            "filler2": {"machine_type": "custom-2-3072", "host": "h1"},
        },
    )
    with pytest.raises(PlacementFailed) as caught:
        place(env)
    assert str(caught.value.problems[0]) == (
        "cannot place db-0 (2 vCPU, 8192 MiB, 40 GiB): memory short by 3072 MiB"
        " (needs 8192, 5120 free of 16384) on the best host h1 (zone a); cpu ok, disk ok"
    )


def test_every_unplaceable_instance_is_listed() -> None:
    env = build(
        {"h1": host()},
        templates={"big": {"machine_type": "n2-standard-16"}},
        groups={"big": {"template": "big", "size": 3, "anti_affinity": False}},
        instances={"ok": STD2, "far": {**STD2, "zone": "b"}},
    )
    with pytest.raises(PlacementFailed) as caught:
        place(env)
    assert [p.instance for p in caught.value.problems] == ["big-0", "big-1", "big-2", "far"]
    lines = str(caught.value).splitlines()
    assert lines[0] == "4 of 5 instances of environment 'test' cannot be placed:"
    assert lines[1].startswith("  cannot place big-[0-2] (3 instances of 16 vCPU, 65536 MiB")
    assert "largest host h1" in lines[1]


def test_no_hosts() -> None:
    with pytest.raises(PlacementFailed, match="the environment has no hosts"):
        place(build({}, instances={"x": STD2}))
    assert dict(place(build({})).assignments) == {}


def test_placement_is_a_frozen_json_value() -> None:
    env = build({"h1": host(), "h2": host()}, instances={"x": STD2})
    placement = place(env)
    assert Placement.model_validate(placement.model_dump(mode="json")) == placement
    assert placement.model_dump(mode="json")["hosts"]["h1"]["memory_mb"] == {
        "used": 8192,
        "capacity": 16384,
        "percent": 50.0,
    }
    with pytest.raises(ValueError, match="frozen"):
        placement.environment = "other"  # type: ignore[misc]
    assert place(env) == placement
