"""The loader: extends chains, merge semantics, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from env_helpers import REPO, SHIPPED, Write

from unkai.environments import (
    ConfigProblem,
    ConfigProblems,
    list_environments,
    load_environment,
    resolve_document,
)
from unkai.errors import ConfigError

REPO_ENVIRONMENTS = REPO / "environments"

BASE = """\
description: the base
vm_images:
  debian-12: {version: "1", disk_gb: 4}
networks:
  default: {mode: nat, cidr: 10.0.0.0/24}
instance_templates:
  web:
    machine_type: e2-small
    image: debian-12
    networks: [default]
    labels: {tier: web}
instance_groups:
  web: {template: web, size: 2}
settings: {domain: base.example, tags: [a, b]}
"""


def _problem_lines(err: ConfigError) -> list[str]:
    problems = getattr(err, "problems", (err,))
    return [str(problem) for problem in problems]


# --- the shipped example cloud ------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_environments_validate(shipped: Path, name: str) -> None:
    env = load_environment(name, root=shipped)
    assert env.name == name
    assert {i.name for i in env.all_instances()} >= {"db", "web-0", "web-1"}
    assert set(env.workloads) == {"api", "worker"}
    assert env.workloads["api"].secret_env["DB_PASSWORD"].name == "db-password"
    assert {c.dockerfile_template for c in env.container_images.values()} == {
        "api.Dockerfile.j2",
        "worker.Dockerfile.j2",
    }


def test_local_is_one_small_loopback_machine(shipped: Path) -> None:
    env = load_environment("local", root=shipped)
    assert list(env.zones) == ["local"]
    assert list(env.hosts) == ["localhost"]
    host = env.hosts["localhost"]
    assert (host.connection, host.address, host.libvirt_uri) == (
        "local",
        "127.0.0.1",
        "qemu:///system",
    )
    assert (host.cpus, host.memory_mb, host.disk_gb) == (2, 16384, 60)
    assert env.host_pools[host.pool].cpu_overcommit == 8.0
    # The node's isolated network has no route out either.
    assert {n: net.mode for n, net in env.networks.items()} == {
        "default": "user",
        "nodes": "isolated",
    }
    assert env.networks["default"].cidr is None  # removed by `cidr: null` over base
    assert env.settings["ssh_port_base"] == 2200
    assert env.settings["domain"] == "local.unkai"
    assert env.instance_groups["web"].size == 2
    instances = env.all_instances()
    assert all(i.machine.cpus <= 2 and i.machine.memory_mb <= 2048 for i in instances)
    pool = env.host_pools[host.pool]
    assert sum(i.machine.cpus for i in instances) <= pool.schedulable_cpus(host)
    assert sum(i.machine.memory_mb for i in instances) <= pool.schedulable_memory_mb(host)
    assert sum(d.size_gb or 0 for i in instances for d in i.disks) <= host.disk_gb
    cluster = env.clusters["apps"]
    assert cluster.control_plane.endpoint == "https://127.0.0.1:6443"
    assert [(p.name, p.size) for p in cluster.node_pools] == [("default", 1)]
    assert env.vm_images["debian-12"].disk_gb == 4
    assert "openssh-server" in env.vm_images["debian-12"].packages


def test_remote_environments_use_ssh_hosts_and_nat(shipped: Path) -> None:
    for name in ("dev", "staging", "prod"):
        env = load_environment(name, root=shipped)
        assert env.hosts and all(h.connection == "ssh" for h in env.hosts.values())
        assert all(n.mode == "nat" and n.cidr for n in env.networks.values())
    sizes = [
        load_environment(n, root=shipped).instance_groups["web"].size
        for n in ("local", "dev", "staging", "prod")
    ]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_list_environments(shipped: Path, write: Write) -> None:
    write("Not A Name", "{}")
    (shipped / "environments" / "notes.txt").write_text("x")
    assert list_environments(shipped) == sorted(SHIPPED)
    assert list_environments(shipped / "missing") == []


# --- extends and merge ---------------------------------------------------------------


def test_extends_merges_mappings_replaces_lists_and_null_removes(
    project: Path, write: Write
) -> None:
    write("base", BASE)
    write(
        "mid",
        """\
        extends: base
        instance_groups:
          web: {size: 3}
        settings: {tags: [c], domain: null, mid: true}
        """,
    )
    write(
        "leaf",
        """\
        extends: mid
        description: ~
        instance_templates:
          web: {machine_type: e2-medium, labels: {role: front}}
        """,
    )
    doc = resolve_document("leaf", root=project)
    assert next(iter(doc)) == "name" and doc["name"] == "leaf"
    assert "extends" not in doc and "description" not in doc
    assert doc["instance_groups"] == {"web": {"template": "web", "size": 3}}
    assert doc["settings"] == {"tags": ["c"], "mid": True}
    assert doc["instance_templates"]["web"]["labels"] == {"tier": "web", "role": "front"}
    env = load_environment("leaf", root=project)
    assert env.description == ""
    assert env.instance_templates["web"].machine_type == "e2-medium"
    assert len(env.all_instances()) == 3


def test_resolve_document_is_what_load_validates(shipped: Path) -> None:
    from unkai.model import Environment

    for name in SHIPPED:
        assert Environment.model_validate(resolve_document(name, root=shipped)) == load_environment(
            name, root=shipped
        )


def test_extends_cycle_names_the_chain(project: Path, write: Write) -> None:
    write("a", "extends: b\n")
    write("b", "extends: c\n")
    write("c", "\n\nextends: a\n")
    with pytest.raises(ConfigProblem) as caught:
        load_environment("a", root=project)
    err = caught.value
    assert "a → b → c → a" in str(err)
    assert (err.file, err.line, err.key_path) == ("environments/c.yaml", 3, "extends")


def test_self_extension_is_a_cycle(project: Path, write: Write) -> None:
    write("a", "extends: a\n")
    with pytest.raises(ConfigError, match="cycle: a → a"):
        load_environment("a", root=project)


def test_unknown_environment_lists_the_available_ones(shipped: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_environment("qa", root=shipped)
    assert str(caught.value) == (
        "unknown environment 'qa'; allowed: one of base, dev, local, prod, staging"
    )


def test_unknown_environment_in_an_empty_project(project: Path) -> None:
    with pytest.raises(ConfigError, match="none is defined"):
        load_environment("local", root=project)


@pytest.mark.parametrize("name", ["../etc/passwd", "Prod", "", "a" * 64, "-x"])
def test_environment_names_are_dns_labels(project: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="not an environment name"):
        load_environment(name, root=project)


def test_extends_an_unknown_environment(shipped: Path, write: Write) -> None:
    write("qa", "# qa\nextends: staging2\n")
    with pytest.raises(ConfigProblem) as caught:
        load_environment("qa", root=shipped)
    assert str(caught.value) == (
        "environments/qa.yaml:2: extends: extends an unknown environment (got 'staging2');"
        " allowed: one of base, dev, local, prod, qa, staging"
    )


@pytest.mark.parametrize("value", ["[base]", "3", "{a: 1}", "'../base'"])
def test_extends_must_be_a_name(project: Path, write: Write, value: str) -> None:
    write("base", BASE)
    write("qa", f"extends: {value}\n")
    with pytest.raises(ConfigProblem, match="extends is not an environment name") as caught:
        load_environment("qa", root=project)
    assert caught.value.file == "environments/qa.yaml"


def test_files_may_not_set_name(project: Path, write: Write) -> None:
    write("base", "name: base\n" + BASE)
    write("qa", "extends: base\nname: qa\n")
    with pytest.raises(ConfigProblems) as caught:
        load_environment("qa", root=project)
    assert [(p.file, p.line, p.key_path) for p in caught.value.problems] == [
        ("environments/base.yaml", 1, "name"),
        ("environments/qa.yaml", 2, "name"),
    ]


# --- errors: file, line, key path, value, allowed --------------------------------


def test_bad_value_is_blamed_on_the_file_that_set_it(project: Path, write: Write) -> None:
    write("base", BASE)
    write("qa", "extends: base\n\ninstance_groups:\n  web:\n    size: -1\n")
    with pytest.raises(ConfigProblem) as caught:
        load_environment("qa", root=project)
    err = caught.value
    assert (err.file, err.line, err.key_path, err.value) == (
        "environments/qa.yaml",
        5,
        "instance_groups.web.size",
        -1,
    )
    assert str(err) == (
        "environments/qa.yaml:5: instance_groups.web.size: Input should be greater than"
        " or equal to 0 (got -1)"
    )


def test_inherited_bad_value_is_blamed_on_the_base(project: Path, write: Write) -> None:
    write("base", BASE.replace("machine_type: e2-small", "machine_type: e2-huge"))
    write("qa", "extends: base\ninstance_groups: {web: {size: 1}}\n")
    with pytest.raises(ConfigProblem) as caught:
        load_environment("qa", root=project)
    err = caught.value
    assert (err.file, err.line, err.key_path) == (
        "environments/base.yaml",
        8,
        "instance_templates.web.machine_type",
    )
    assert str(err).count("'e2-huge'") == 1  # the model's message quotes it: not twice
    assert err.allowed is not None and "e2-micro" in err.allowed and "custom-" in err.allowed


def test_several_problems_are_reported_together(project: Path, write: Write) -> None:
    write("base", BASE)
    write(
        "qa",
        """\
        extends: base
        instance_groups:
          web: {size: 2, sise: 3}
        instance_templates:
          web: {networks: [default, backend]}
        networks:
          default: {mode: wifi}
        """,
    )
    with pytest.raises(ConfigProblems) as caught:
        load_environment("qa", root=project)
    err = caught.value
    assert err.file == "environments/qa.yaml"
    assert _problem_lines(err) == [
        "environments/qa.yaml:3: instance_groups.web.sise: unknown key (did you mean 'size'?);"
        " allowed: one of template, size, min_size, max_size, spread, anti_affinity,"
        " update_policy, auto_healing, health_check, autoscaling",
        "environments/qa.yaml:7: networks.default.mode: Input should be 'nat', 'isolated',"
        " 'bridged' or 'user' (got 'wifi')",
    ]
    assert str(err).splitlines()[0] == "environment 'qa' is invalid: 2 problems"


def test_cross_reference_problems_name_the_file(project: Path, write: Write) -> None:
    write("base", BASE)
    write("qa", "extends: base\ninstance_templates:\n  web: {networks: [default, backend]}\n")
    with pytest.raises(ConfigProblem) as caught:
        load_environment("qa", root=project)
    assert str(caught.value) == (
        "environments/qa.yaml:3: instance_templates.web.networks.1: unknown network"
        " (got 'backend'); allowed: one of default"
    )


def test_missing_required_key(project: Path, write: Write) -> None:
    write("qa", "instance_groups:\n  web: {size: 1}\n")
    with pytest.raises(ConfigProblem) as caught:
        load_environment("qa", root=project)
    err = caught.value
    assert (err.key_path, err.line, err.message) == (
        "instance_groups.web.template",
        2,
        "required key is missing",
    )
    assert err.allowed is not None and err.allowed.startswith("one of template, size")


def test_unknown_top_level_key(project: Path, write: Write) -> None:
    write("qa", "instance_group: {}\n")
    with pytest.raises(ConfigProblem) as caught:
        load_environment("qa", root=project)
    err = caught.value
    assert err.message == "unknown key (did you mean 'instance_groups'?)"
    assert err.allowed is not None and err.allowed.startswith("one of extends, description")


def test_union_errors_become_one_problem(project: Path, write: Write) -> None:
    write("base", (REPO_ENVIRONMENTS / "base.yaml").read_text())
    write("qa", "extends: base\nworkloads:\n  api:\n    liveness_probe: {type: tcp, port: 'A B'}\n")
    with pytest.raises(ConfigProblem) as caught:
        load_environment("qa", root=project)
    err = caught.value
    assert (err.key_path, err.value, err.line) == ("workloads.api.liveness_probe.port", "A B", 4)
    assert err.allowed is not None and err.allowed.startswith("a valid integer | ")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("workloads", "api", "secret_env", "DB_PASSWORD"), "hunter2 !"),
        (("instances", "db", "secrets", "DB_PASSWORD"), "hunter2 value"),
        (("instances", "db", "metadata", "api_token"), ["hunter2"]),
        (("workloads", "api", "env", "DB_PASSWORD"), 12345678),
    ],
)
def test_values_under_secret_keys_are_never_echoed(
    project: Path, write: Write, path: tuple[str, ...], value: object
) -> None:
    import yaml

    write("base", (REPO_ENVIRONMENTS / "base.yaml").read_text())
    doc: dict[str, Any] = {"extends": "base"}
    cursor = doc
    for part in path[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[path[-1]] = value
    write("qa", yaml.safe_dump(doc))
    with pytest.raises(ConfigProblem) as caught:
        load_environment("qa", root=project)
    err = caught.value
    assert err.key_path == ".".join(path)
    assert err.value is None
    assert "hunter2" not in str(err) and "12345678" not in str(err)
