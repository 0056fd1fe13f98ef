"""Evacuation: an unavailable host's instances move; what cannot move is named and stays."""

from __future__ import annotations

import pytest
from placement_envs import build_env, host

from unkai.placement import place
from unkai.placement._values import PlacementFailed

SMALL = {"machine_type": "custom-2-4096"}


def test_instances_of_a_down_host_move_and_nothing_else_does():
    hosts = {"h1": host(), "h2": host(), "h3": host()}
    previous = {"vm0": "h1", "vm1": "h2", "vm2": "h3"}
    env = build_env(hosts, instances={n: SMALL for n in previous})
    after = place(env, previous=previous, unavailable={"h2"})
    assert after.host_of("vm0") == "h1" and after.host_of("vm2") == "h3"
    assert after.host_of("vm1") in {"h1", "h3"}
    assert after.stranded == ()


def test_what_fits_nowhere_else_stays_and_says_why():
    hosts = {"h1": host(), "h2": host(), "h3": host()}
    group = {"web": {"template": "web", "size": 3, "anti_affinity": True}}
    env = build_env(hosts, templates={"web": SMALL}, groups=group)
    before = place(env)
    previous = dict(before.assignments)
    down = before.host_of("web-1")
    after = place(env, previous=previous, unavailable={down})
    assert after.host_of("web-1") == down  # anti-affinity: no other host is free
    assert [p.instance for p in after.stranded] == ["web-1"]
    assert after.stranded[0].reason == "anti-affinity"
    assert {after.host_of("web-0"), after.host_of("web-2")} == (set(hosts) - {down})


def test_a_pin_to_a_down_host_is_stranded_and_other_failures_still_raise():
    hosts = {"h1": host(), "h2": host()}
    env = build_env(hosts, instances={"db": {**SMALL, "host": "h2"}, "vm": SMALL})
    after = place(env, previous={"db": "h2", "vm": "h2"}, unavailable={"h2"})
    assert after.host_of("db") == "h2" and after.stranded[0].reason == "host"
    assert after.host_of("vm") == "h1"
    huge = build_env(hosts, instances={"big": {"machine_type": "custom-64-262144"}})
    with pytest.raises(PlacementFailed):
        place(huge, unavailable={"h2"})
