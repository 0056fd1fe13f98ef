"""Sticky placement: what runs stays where it runs; only the new or the misfit move."""

from __future__ import annotations

from placement_envs import build_env, host

from unkai.placement import place

MACHINE = {"machine_type": "custom-2-4096"}


def test_adding_a_host_moves_nothing_that_runs():
    two = {"h1": host(), "h2": host()}
    instances = {f"vm{i}": MACHINE for i in range(4)}
    before = place(build_env(two, instances=instances))
    previous = {name: before.host_of(name) for name in instances}
    # Spread would put some on the empty h3 if it placed from scratch.
    grown = build_env({**two, "h3": host()}, instances=instances)
    assert {place(grown).host_of(n) for n in instances} >= {"h3"}
    after = place(grown, previous=previous)
    assert {name: after.host_of(name) for name in instances} == previous


def test_adding_an_instance_moves_nothing_and_the_new_one_spreads():
    hosts = {"h1": host(), "h2": host(), "h3": host()}
    before = {"vm0": "h3", "vm1": "h3"}
    env = build_env(hosts, instances={"vm0": MACHINE, "vm1": MACHINE, "vm2": MACHINE})
    after = place(env, previous=before)
    assert after.host_of("vm0") == "h3" and after.host_of("vm1") == "h3"
    assert after.host_of("vm2") in {"h1", "h2"}


def test_a_host_that_left_or_no_longer_fits_places_its_instances_anew():
    env = build_env({"h1": host(), "h2": host()}, instances={"vm0": MACHINE})
    assert place(env, previous={"vm0": "gone"}).host_of("vm0") in {"h1", "h2"}
    big = {"machine_type": "custom-8-16384"}
    small = {"h1": host(cpus=2, memory_mb=5120), "h2": host()}
    grown = place(build_env(small, instances={"vm0": big}), previous={"vm0": "h1"})
    assert grown.host_of("vm0") == "h2"


def test_an_anti_affinity_group_stays_where_it_runs():
    hosts = {f"h{i}": host() for i in range(4)}
    group = {"web": {"template": "web", "size": 4, "anti_affinity": True}}
    env = build_env(hosts, templates={"web": MACHINE}, groups=group)
    first = place(env)
    again = place(env, previous=dict(first.assignments))
    assert again.assignments == first.assignments
    assert len(set(again.assignments.values())) == 4
