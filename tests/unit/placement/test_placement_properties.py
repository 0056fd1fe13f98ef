"""Property tests of the planner (STYLE #14): random fleets and instance sets."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from unkai.model import Environment, machine_type
from unkai.placement import HOST_SELECTOR_PREFIX, Placement, PlacementFailed, place

ZONES = ("a", "b")
LABELS = st.dictionaries(
    st.sampled_from(["disk", "gpu"]), st.sampled_from(["ssd", "x"]), max_size=1
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    pools = {
        f"p{i}": {
            "zone": draw(st.sampled_from(ZONES)),
            "cpu_overcommit": draw(st.sampled_from([1.0, 1.5, 4.0])),
            "memory_overcommit": draw(st.sampled_from([1.0, 1.25, 2.0])),
            "reserved_memory_mb": draw(st.sampled_from([0, 512, 2048])),
            "labels": draw(LABELS),
        }
        for i in range(draw(st.integers(1, 3)))
    }
    hosts = {}
    for i in range(draw(st.integers(1, 8))):
        pool = draw(st.sampled_from(sorted(pools)))
        hosts[f"h{i}"] = {
            "address": f"10.0.0.{i + 1}",
            "ssh_user": "ops",
            "cpus": draw(st.integers(1, 16)),
            "memory_mb": draw(st.integers(3, 64)) * 1024,
            "disk_gb": draw(st.integers(10, 200)),
            "cpu_vendor": "amd",
            "pool": pool,
            "zone": pools[pool]["zone"],
            "labels": draw(LABELS),
        }

    def spec() -> dict[str, Any]:
        cpus = draw(st.integers(1, 8))
        memory_mb = min(draw(st.integers(1, 16)), 13 * cpus) * 512
        doc: dict[str, Any] = {"machine_type": f"custom-{cpus}-{memory_mb}", "image": "img"}
        if draw(st.booleans()):
            doc["disks"] = [{"name": "data", "size_gb": draw(st.integers(1, 60))}]
        if draw(st.integers(0, 3)) == 0:
            doc["zone"] = draw(st.sampled_from(ZONES))
        selector = draw(LABELS)
        if selector and draw(st.booleans()):
            doc["labels"] = {f"{HOST_SELECTOR_PREFIX}{k}": v for k, v in selector.items()}
        return doc

    instances = {}
    for i in range(draw(st.integers(0, 8))):
        doc = spec()
        if draw(st.integers(0, 4)) == 0:
            pin = draw(st.sampled_from(sorted(hosts)))
            doc["host"] = pin
            doc["zone"] = hosts[pin]["zone"]
        instances[f"vm{i}"] = doc
    templates = {f"t{i}": spec() for i in range(draw(st.integers(0, 2)))}
    groups = {
        f"g{i}": {
            "template": draw(st.sampled_from(sorted(templates))),
            "size": draw(st.integers(0, 5)),
            "spread": draw(st.sampled_from(["spread", "pack"])),
            "anti_affinity": draw(st.booleans()),
        }
        for i in range(draw(st.integers(0, 3) if templates else st.just(0)))
    }
    return {
        "name": "prop",
        "zones": {zone: {} for zone in ZONES},
        "host_pools": pools,
        "hosts": hosts,
        "vm_images": {"img": {"version": "1", "disk_gb": draw(st.integers(1, 20))}},
        "instances": instances,
        "instance_templates": templates,
        "instance_groups": groups,
    }


def check_valid(env: Environment, placement: Placement) -> None:
    instances = {i.name: i for i in env.all_instances()}
    assert set(placement.assignments) == set(instances)
    used: dict[str, Counter[str]] = defaultdict(Counter)
    group_hosts: dict[str, list[str]] = defaultdict(list)
    for name, host_name in placement.assignments.items():
        instance, host = instances[name], env.hosts[host_name]
        pool = env.host_pools[host.pool]
        machine = machine_type(instance.machine_type)
        used[host_name]["cpu"] += machine.cpus
        used[host_name]["memory"] += machine.memory_mb
        used[host_name]["disk"] += sum(d.size_gb or 0 for d in instance.disks)
        assert instance.zone in (None, host.zone)
        assert instance.host in (None, host.name)
        host_labels = {**pool.labels, **host.labels}
        for key, value in instance.labels.items():
            if key.startswith(HOST_SELECTOR_PREFIX):
                assert host_labels.get(key.removeprefix(HOST_SELECTOR_PREFIX)) == value
        if instance.group and env.instance_groups[instance.group].anti_affinity:
            group_hosts[instance.group].append(host_name)
    for host_name, usage in used.items():
        host = env.hosts[host_name]
        pool = env.host_pools[host.pool]
        assert usage["cpu"] <= pool.schedulable_cpus(host)
        assert usage["memory"] <= pool.schedulable_memory_mb(host)
        assert usage["disk"] <= pool.schedulable_disk_gb(host)
        allocation = placement.hosts[host_name]
        assert (allocation.cpus.used, allocation.memory_mb.used, allocation.disk_gb.used) == (
            usage["cpu"],
            usage["memory"],
            usage["disk"],
        )
    for members in group_hosts.values():
        assert len(members) == len(set(members)), "hard anti-affinity violated"


def shuffled(document: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    out = dict(document)
    for key in ("host_pools", "hosts", "instances", "instance_templates", "instance_groups"):
        items = list(document[key].items())
        rnd.shuffle(items)
        out[key] = dict(items)
    return out


def outcome(env: Environment) -> Placement | tuple[str, ...]:
    try:
        return place(env)
    except PlacementFailed as err:
        return (str(err),)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.randoms(use_true_random=False))
def test_placements_respect_every_constraint_and_are_stable(
    document: dict[str, Any], rnd: random.Random
) -> None:
    env = Environment.model_validate(document)
    try:
        placement = place(env)
    except PlacementFailed as err:
        event("does not fit")
        assert err.problems
        names = {i.name for i in env.all_instances()}
        for problem in err.problems:
            assert problem.instance in names
            assert problem.instance in str(err) or "[" in str(err)
            assert problem.reason in {"cpu", "memory", "disk", "zone", "labels", "anti-affinity"}
            assert problem.reason.replace("-", "_") in problem.message  # anti_affinity
    else:
        event("placed")
        check_valid(env, placement)
    first = outcome(env)
    assert outcome(env) == first
    assert outcome(Environment.model_validate(shuffled(document, rnd))) == first
