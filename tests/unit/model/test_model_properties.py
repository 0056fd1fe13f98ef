"""Property tests: generated environments validate, round-trip and fingerprint stably."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from unkai.model import MACHINE_TYPES, CrossReferenceError, Environment, Zone, dns_label

names = st.from_regex(r"\A[a-z][a-z0-9-]{0,10}[a-z0-9]\Z")
machine_types = st.one_of(
    st.sampled_from(sorted(MACHINE_TYPES)),
    st.builds(
        lambda cpus, steps: f"custom-{cpus}-{min(steps, 26 * cpus) * 256}",
        st.integers(1, 96),
        st.integers(2, 200),
    ),
)
labels = st.dictionaries(names, st.one_of(st.just(""), names), max_size=3)


@st.composite
def environments(draw: st.DrawFn) -> dict[str, Any]:
    """A valid environment document whose references all resolve."""
    zones = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    pools = {
        name: {
            "zone": draw(st.sampled_from(zones)),
            "cpu_overcommit": draw(st.floats(1, 16, allow_nan=False)),
            "reserved_memory_mb": draw(st.integers(0, 4096)),
            "labels": draw(labels),
        }
        for name in draw(st.lists(names, min_size=1, max_size=2, unique=True))
    }
    hosts = {}
    for index, name in enumerate(draw(st.lists(names, min_size=1, max_size=4, unique=True))):
        pool = draw(st.sampled_from(sorted(pools)))
        hosts[name] = {
            "address": f"10.0.{index}.10",
            "ssh_user": "ops",
            "cpus": draw(st.integers(1, 128)),
            "memory_mb": draw(st.integers(8192, 1 << 20)),
            "disk_gb": draw(st.integers(1, 10_000)),
            "cpu_vendor": draw(st.sampled_from(["intel", "amd"])),
            "pool": pool,
            "zone": pools[pool]["zone"],
        }
    networks = {
        name: {"cidr": f"10.{100 + index}.0.0/{draw(st.integers(16, 30))}"}
        for index, name in enumerate(draw(st.lists(names, min_size=1, max_size=2, unique=True)))
    }
    images = {
        name: {"version": "1", "disk_gb": draw(st.integers(1, 50))}
        for name in draw(st.lists(names, min_size=1, max_size=3, unique=True))
    }

    def spec() -> dict[str, Any]:
        return {
            "machine_type": draw(machine_types),
            "image": draw(st.sampled_from(sorted(images))),
            "networks": draw(st.lists(st.sampled_from(sorted(networks)), unique=True)),
            "labels": draw(labels),
            "metadata": draw(st.dictionaries(names, st.text(max_size=5), max_size=2)),
        }

    # Instance names carry a prefix no group member can have (members end in "-<digits>").
    instances = {f"vm-{name}": spec() for name in draw(st.lists(names, max_size=3, unique=True))}
    templates = {name: spec() for name in draw(st.lists(names, max_size=2, unique=True))}
    groups: dict[str, Any] = {}
    if templates:
        for name in draw(st.lists(names, max_size=2, unique=True)):
            size = draw(st.integers(0, 4))
            groups[f"g{name}"] = {
                "template": draw(st.sampled_from(sorted(templates))),
                "size": size,
                "max_size": size + draw(st.integers(0, 3)),
                "spread": draw(st.sampled_from(["spread", "pack"])),
            }
    return {
        "name": draw(names),
        "zones": {zone: {} for zone in zones},
        "host_pools": pools,
        "hosts": hosts,
        "networks": networks,
        "vm_images": images,
        "instances": instances,
        "instance_templates": templates,
        "instance_groups": groups,
        "settings": draw(st.dictionaries(names, st.integers() | st.text(max_size=5), max_size=3)),
    }


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(environments())
def test_generated_environments_round_trip(data: dict[str, Any]) -> None:
    env = Environment.model_validate(data)
    dumped = env.model_dump(mode="json")
    again = Environment.model_validate(dumped)
    assert again == env
    assert again.fingerprint() == env.fingerprint()
    assert again.canonical_json() == env.canonical_json()


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(environments())
def test_all_instances_is_sorted_complete_and_concrete(data: dict[str, Any]) -> None:
    env = Environment.model_validate(data)
    instances = env.all_instances()
    got = [i.name for i in instances]
    assert got == sorted(got)
    assert len(set(got)) == len(got)
    expected = len(env.instances) + sum(g.size for g in env.instance_groups.values())
    assert len(got) == expected
    for instance in instances:
        assert all(disk.size_gb is not None for disk in instance.disks)
        assert instance.disks[0].boot
        dns_label(instance.name)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(environments(), st.data())
def test_breaking_a_reference_is_always_reported(data: dict[str, Any], draw: st.DataObject) -> None:
    host = draw.draw(st.sampled_from(sorted(data["hosts"])))
    data["hosts"][host]["pool"] = "no-such-pool"
    with pytest.raises(ValidationError) as info:
        Environment.model_validate(data)
    (error,) = info.value.errors()
    cause = error["ctx"]["error"]
    assert isinstance(cause, CrossReferenceError)
    assert [p.key_path for p in cause.problems] == [f"hosts.{host}.pool"]


@given(st.text(max_size=70))
def test_names_are_dns_labels_or_rejected(text: str) -> None:
    try:
        Zone(name=text)
    except ValidationError as err:
        assert "is not a DNS label" in str(err)
    else:
        assert len(text) <= 63 and text[0].isalpha() and text == text.lower()
