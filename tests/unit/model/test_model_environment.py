from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from unkai.errors import ConfigError
from unkai.model import (
    COLLECTIONS,
    CrossReferenceError,
    Environment,
    Instance,
    ReferenceProblem,
    Zone,
)


def problems_of(data: dict[str, Any]) -> list[ReferenceProblem]:
    with pytest.raises(ValidationError) as info:
        Environment.model_validate(data)
    (error,) = info.value.errors()
    assert error["loc"] == ()
    cause = error["ctx"]["error"]
    assert isinstance(cause, CrossReferenceError)
    return list(cause.problems)


def test_valid_environment(env_data: dict[str, Any]) -> None:
    env = Environment.model_validate(env_data)
    assert env.name == "dev"
    assert env.settings == {"domain": "dev.example.com"}
    assert set(COLLECTIONS) <= set(Environment.model_fields)


def test_names_come_from_keys(env_data: dict[str, Any]) -> None:
    env = Environment.model_validate(env_data)
    for field in COLLECTIONS:
        for key, value in getattr(env, field).items():
            assert value.name == key


def test_collections_are_sorted_by_name(env_data: dict[str, Any]) -> None:
    env_data["zones"] = {"zone-b": {}, "zone-a": {}}
    env = Environment.model_validate(env_data)
    assert list(env.zones) == ["zone-a", "zone-b"]
    assert list(env.model_dump(mode="json")["zones"]) == ["zone-a", "zone-b"]


def test_a_name_that_repeats_its_key_is_fine_but_must_agree(env_data: dict[str, Any]) -> None:
    env_data["zones"]["zone-a"]["name"] = "zone-a"
    Environment.model_validate(env_data)
    env_data["zones"]["zone-a"]["name"] = "zone-c"
    with pytest.raises(
        ValidationError, match=re.escape("zones.zone-a.name: 'zone-c' differs from its key")
    ):
        Environment.model_validate(env_data)


def test_model_values_and_lists_are_accepted_from_python() -> None:
    env = Environment(name="lab", zones=[Zone(name="b"), Zone(name="a")])
    assert env.zones == {"a": Zone(name="a"), "b": Zone(name="b")}
    with pytest.raises(ValidationError, match=re.escape("zones.1: 'a' is defined twice")):
        Environment(name="lab", zones=[Zone(name="a"), Zone(name="a")])
    with pytest.raises(
        ValidationError, match=re.escape("zones.x.name: 'a' differs from its key 'x'")
    ):
        Environment(name="lab", zones={"x": Zone(name="a")})


def test_field_errors_carry_the_key_path(env_data: dict[str, Any]) -> None:
    env_data["instance_templates"]["web"]["machine_type"] = "e2-mega"
    with pytest.raises(ValidationError) as info:
        Environment.model_validate(env_data)
    (error,) = info.value.errors()
    assert error["loc"] == ("instance_templates", "web", "machine_type")
    assert "unknown machine type (got 'e2-mega'); allowed: one of" in error["msg"]


@pytest.mark.parametrize(
    ("path", "value", "key_path", "message", "allowed"),
    [
        (
            ("instance_groups", "web", "template"),
            "webb",
            "instance_groups.web.template",
            "unknown instance template",
            "one of web",
        ),
        (
            ("instance_templates", "web", "image"),
            "debian-11",
            "instance_templates.web.image",
            "unknown VM image",
            "one of debian-12-db, debian-12-web",
        ),
        (
            ("instances", "db", "networks"),
            ["default", "backend"],
            "instances.db.networks.1",
            "unknown network",
            "one of default",
        ),
        (("instances", "db", "host"), "kvm-9", "instances.db.host", "unknown host", None),
        (("instances", "db", "zone"), "zone-z", "instances.db.zone", "unknown zone", None),
        (("hosts", "kvm-1", "pool"), "gpu", "hosts.kvm-1.pool", "unknown host pool", None),
        (
            ("host_pools", "general", "zone"),
            "zone-z",
            "host_pools.general.zone",
            "unknown zone",
            None,
        ),
        (("workloads", "api", "cluster"), "edge", "workloads.api.cluster", "unknown cluster", None),
        (
            ("workloads", "api", "image"),
            "worker",
            "workloads.api.image",
            "unknown container image",
            "one of api",
        ),
    ],
)
def test_unknown_references_name_key_path_value_and_defined_names(
    env_data: dict[str, Any],
    path: tuple[str, ...],
    value: Any,
    key_path: str,
    message: str,
    allowed: str | None,
) -> None:
    target = env_data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    problems = [p for p in problems_of(env_data) if p.key_path == key_path]
    assert len(problems) == 1
    (problem,) = problems
    assert problem.message == message
    assert problem.value in (value, value[-1])
    assert problem.allowed is not None
    if allowed is not None:
        assert problem.allowed == allowed
    assert str(problem).startswith(f"{key_path}: {message} (got ")


def test_nothing_defined_is_said_so(env_data: dict[str, Any]) -> None:
    env_data["clusters"] = {}
    (problem,) = problems_of(env_data)
    assert problem.allowed == "no cluster is defined"


def test_all_problems_are_reported_at_once(env_data: dict[str, Any]) -> None:
    env_data["instance_groups"]["web"]["template"] = "nope"
    env_data["workloads"]["api"]["cluster"] = "nope"
    env_data["hosts"]["kvm-2"]["zone"] = "zone-b"
    problems = problems_of(env_data)
    assert [p.key_path for p in problems] == [
        "hosts.kvm-2.zone",
        "instance_groups.web.template",
        "workloads.api.cluster",
    ]
    assert problems[0].message == "differs from the zone of host pool 'general'"
    assert problems[0].allowed == "zone-a"


def test_problem_becomes_a_config_error_with_the_file() -> None:
    problem = ReferenceProblem("instances.db.host", "unknown host", "kvm-9", "one of kvm-1")
    err = problem.to_config_error("environments/prod.yaml")
    assert isinstance(err, ConfigError)
    assert (err.file, err.key_path, err.value, err.allowed) == (
        "environments/prod.yaml",
        "instances.db.host",
        "kvm-9",
        "one of kvm-1",
    )
    assert str(err) == (
        "environments/prod.yaml:instances.db.host: unknown host (got 'kvm-9');"
        " allowed: one of kvm-1"
    )


def test_consistency_checks(env_data: dict[str, Any]) -> None:
    env_data["hosts"]["kvm-2"]["memory_mb"] = 1024
    env_data["instances"]["db"]["zone"] = "zone-b"
    env_data["instances"]["db"]["disks"] = [
        {"name": "root", "size_gb": 5, "backing_image": "debian-12-db", "boot": True}
    ]
    env_data["instances"]["web-4"] = {"machine_type": "e2-small", "image": "debian-12-web"}
    env_data["instances"]["odd"] = {
        "machine_type": "e2-small",
        "image": "debian-12-web",
        "group": "web",
    }
    got = {(p.key_path, p.message, p.value, p.allowed) for p in problems_of(env_data)}
    assert got == {
        (
            "hosts.kvm-2.memory_mb",
            "is not more than the 1024 MiB host pool 'general' reserves for the hypervisor",
            "1024",
            "more than 1024",
        ),
        (
            "instances.db.disks.0.size_gb",
            "is smaller than its backing image 'debian-12-db'",
            "5",
            "at least 20",
        ),
        (
            "instances.db.zone",
            "differs from the zone of its pinned host 'kvm-1'",
            "zone-b",
            "zone-a",
        ),
        (
            "instances.odd.group",
            "is set by instance groups only; a standalone instance has none",
            "web",
            "no value",
        ),
        (
            "instance_groups.web",
            "member name collides with instances.web-4",
            "web-4",
            "names not used by standalone instances",
        ),
    }


def test_all_instances_expands_groups_and_resolves_disks(env_data: dict[str, Any]) -> None:
    env = Environment.model_validate(env_data)
    instances = env.all_instances()
    assert [i.name for i in instances] == ["db", "web-0", "web-1", "web-2"]
    db, web0 = instances[0], instances[1]
    assert db is not env.instances["db"]
    assert [(d.name, d.size_gb) for d in db.disks] == [("boot", 20), ("data", 100)]
    assert env.instances["db"].disks[0].size_gb is None
    assert (web0.group, web0.hostname, web0.labels) == ("web", "web-0", {"tier": "web"})
    assert [(d.name, d.size_gb) for d in web0.disks] == [("boot", 8)]
    assert all(isinstance(i, Instance) for i in instances)
    assert env.all_instances() == instances


def test_json_round_trip(env_data: dict[str, Any]) -> None:
    env = Environment.model_validate(env_data)
    dumped = env.model_dump(mode="json")
    assert json.loads(json.dumps(dumped)) == dumped
    again = Environment.model_validate(dumped)
    assert again == env
    assert again.model_dump(mode="json") == dumped


def test_fingerprint_is_sha256_of_canonical_json(env_data: dict[str, Any]) -> None:
    env = Environment.model_validate(env_data)
    canonical = env.canonical_json()
    assert " " not in canonical.split('"description"')[0]
    assert env.fingerprint() == hashlib.sha256(canonical.encode()).hexdigest()


def test_fingerprint_ignores_input_order_and_follows_content(env_data: dict[str, Any]) -> None:
    env = Environment.model_validate(env_data)
    reordered = {key: env_data[key] for key in reversed(list(env_data))}
    reordered["hosts"] = dict(reversed(list(env_data["hosts"].items())))
    reordered["vm_images"]["debian-12-web"]["packages"] = ["nginx", "nginx"]
    assert Environment.model_validate(reordered).fingerprint() == env.fingerprint()
    env_data["instance_groups"]["web"]["size"] = 4
    assert Environment.model_validate(env_data).fingerprint() != env.fingerprint()


def test_fingerprint_is_pinned_for_a_minimal_environment() -> None:
    env = Environment(name="empty")
    expected = (
        '{"clusters":{},"container_images":{},"description":"","host_pools":{},"hosts":{},'
        '"instance_groups":{},"instance_templates":{},"instances":{},"name":"empty",'
        '"networks":{},"policies":{},"project":null,"settings":{},"vm_images":{},"workloads":{},'
        '"zones":{}}'
    )
    assert env.canonical_json() == expected
    assert env.fingerprint() == hashlib.sha256(expected.encode()).hexdigest()


def test_local_style_environment_on_loopback() -> None:
    env = Environment.model_validate(
        {
            "name": "local",
            "zones": {"local": {}},
            "host_pools": {"local": {"zone": "local", "reserved_memory_mb": 512}},
            "hosts": {
                "localhost": {
                    "address": "127.0.0.1",
                    "connection": "local",
                    "cpus": 4,
                    "memory_mb": 8192,
                    "disk_gb": 50,
                    "cpu_vendor": "intel",
                    "pool": "local",
                    "zone": "local",
                }
            },
            "networks": {"loopback": {"mode": "user"}},
            "vm_images": {"debian-12": {"version": "1"}},
            "instances": {
                "vm": {"machine_type": "e2-micro", "image": "debian-12", "networks": ["loopback"]}
            },
            "clusters": {"local": {"kubernetes_version": "1.31.2"}},
        }
    )
    assert env.hosts["localhost"].libvirt_uri == "qemu:///system"
    assert env.clusters["local"].control_plane.endpoint == "https://127.0.0.1:6443"


def test_a_management_cluster_makes_every_slot_of_a_group_an_instance(env_data: dict[str, Any]):
    plain = Environment.model_validate(env_data)
    assert plain.management_cluster is None
    assert [i.name for i in plain.all_instances() if i.group] == ["web-0", "web-1", "web-2"]
    managed = Environment.model_validate({**env_data, "settings": {"management_cluster": "main"}})
    assert managed.management_cluster == "main"
    # max_size 5 and the default surge of 1: six slots, placed and rendered ahead.
    assert [i.name for i in managed.all_instances() if i.group] == [f"web-{i}" for i in range(6)]


@pytest.mark.parametrize(
    ("value", "message"), [("edge", "unknown cluster"), (3, "must be the name of a cluster")]
)
def test_the_management_cluster_must_be_a_cluster(env_data, value, message):
    (problem,) = problems_of({**env_data, "settings": {"management_cluster": value}})
    assert problem.key_path == "settings.management_cluster"
    assert problem.message == message


def _with_vm_pool(env_data: dict[str, Any], **pool: Any) -> dict[str, Any]:
    env_data = copy.deepcopy(env_data)
    env_data["vm_images"]["node"] = {"version": "1", "kubernetes": "1.31.2"}
    env_data["networks"]["user"] = {"mode": "user"}
    env_data["instance_templates"]["node"] = {
        "machine_type": "e2-standard-4",
        "image": "node",
        "networks": ["user", "default"],
    }
    env_data["clusters"]["main"]["node_pools"].append(
        {"name": "vms", "kind": "vm", "template": "node", "machine_type": "e2-standard-4",
         "size": 2, **pool}
    )  # fmt: skip
    return env_data


def test_a_vm_pools_nodes_are_instances_of_its_template(env_data: dict[str, Any]) -> None:
    env = Environment.model_validate(_with_vm_pool(env_data))
    nodes = env.node_instances()
    assert [n.name for n in nodes] == ["main-vms-0", "main-vms-1"]
    assert all(n.image == "node" and n.machine_type == "e2-standard-4" for n in nodes)
    assert all(n.hostname == n.name and n.group is None for n in nodes)
    names = [i.name for i in env.all_instances()]
    assert {"main-vms-0", "main-vms-1", "db"} <= set(names) and names == sorted(names)


@pytest.mark.parametrize("size", [1001, 10**30])
def test_a_vm_pool_too_large_to_name_is_refused_at_once(
    env_data: dict[str, Any], size: int
) -> None:
    # Nodes are named when the environment loads: a size no cloud holds is an error,
    # never a loop over its names.
    with pytest.raises(ValidationError) as caught:
        Environment.model_validate(_with_vm_pool(env_data, size=size, min_size=0, max_size=1000))
    assert "less than or equal to 1000" in str(caught.value)


def test_a_vm_pool_needs_a_template_booting_the_clusters_node(env_data: dict[str, Any]) -> None:
    problems = problems_of(_with_vm_pool(env_data, template="nowhere"))
    assert [(p.key_path, p.message) for p in problems] == [
        ("clusters.main.node_pools.1.template", "unknown instance template")
    ]
    data = _with_vm_pool(env_data)
    data["vm_images"]["node"]["kubernetes"] = "1.31.1"
    (problem,) = problems_of(data)
    assert problem.key_path == "clusters.main.node_pools.1.template"
    assert "bakes Kubernetes 1.31.1; the cluster runs 1.31.2" in problem.message
    data["vm_images"]["node"].pop("kubernetes")
    (problem,) = problems_of(data)
    assert "which bakes no node" in problem.message


def test_a_vm_pools_node_network_is_its_templates_first_nat_or_isolated_one(
    env_data: dict[str, Any],
) -> None:
    env = Environment.model_validate(_with_vm_pool(env_data))
    assert env.node_network("node") == "default"
    assert env.node_network("nowhere") is None


@pytest.mark.parametrize("networks", [["default"], ["user"], []])
def test_a_vm_pools_template_needs_a_user_and_a_node_network(
    env_data: dict[str, Any], networks: list[str]
) -> None:
    data = _with_vm_pool(env_data)
    data["instance_templates"]["node"]["networks"] = networks
    (problem,) = problems_of(data)
    assert problem.key_path == "clusters.main.node_pools.1.template"
    assert "needs a user network" in problem.message
    assert "a nat or isolated one (the API server reaches their kubelets on it)" in problem.message


def test_a_vm_pools_machine_type_is_its_templates(env_data: dict[str, Any]) -> None:
    (problem,) = problems_of(_with_vm_pool(env_data, machine_type="e2-small"))
    assert problem.key_path == "clusters.main.node_pools.1.machine_type"
    assert problem.allowed == "e2-standard-4"


def test_a_vm_pool_the_operator_keeps_has_a_vm_for_each_of_its_slots(env_data: dict[str, Any]):
    data = {**_with_vm_pool(env_data, max_size=3), "settings": {"management_cluster": "main"}}
    env = Environment.model_validate(data)
    slots = [f"main-vms-{i}" for i in range(4)]  # max_size and one for a rollout's surge
    assert [n.name for n in env.node_instances()] == slots
    assert env.kept_nodes() == frozenset(slots)
    assert env.pool_nodes("main", env.clusters["main"].node_pools[-1]) == tuple(slots)


def test_a_vm_pool_autoscales_only_where_the_operator_keeps_it(env_data: dict[str, Any]):
    problems = problems_of(_with_vm_pool(env_data, max_size=3))
    (problem,) = [p for p in problems if "autoscales only" in p.message]
    assert problem.key_path == "clusters.main.node_pools.1"
    assert "settings.management_cluster" in str(problem.allowed)
    plain = Environment.model_validate(_with_vm_pool(env_data))
    assert plain.kept_nodes() == frozenset()
    assert [n.name for n in plain.node_instances()] == ["main-vms-0", "main-vms-1"]


def test_the_nodes_of_a_kept_vm_pool_take_no_secrets(env_data: dict[str, Any]):
    data = {**_with_vm_pool(env_data), "settings": {"management_cluster": "main"}}
    data["instance_templates"]["node"]["secrets"] = {"TOKEN": "token"}
    (problem,) = [p for p in problems_of(data) if "has secrets" in p.message]
    assert problem.key_path == "clusters.main.node_pools.1.template"


def test_a_vm_pools_node_names_may_not_be_taken(env_data: dict[str, Any]) -> None:
    data = _with_vm_pool(env_data)
    data["instances"]["main-vms-1"] = dict(data["instances"]["db"], host=None)
    problems = problems_of(data)
    assert any("node name collides with instances.main-vms-1" in p.message for p in problems)
