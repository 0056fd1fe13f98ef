"""The built-in pack's rules, on the properties the engine hands them."""

from __future__ import annotations

import importlib.util
import typing
from pathlib import Path

import pytest
import yaml

from unkai.environments import load_environment
from unkai.errors import ConfigError
from unkai.model import PolicyName
from unkai.policies import PACK_SOURCE, mandatory, prepare_pack, resource_keys
from unkai.render import render_tree

ROOT = Path(__file__).resolve().parents[3]


def _load_rules():
    spec = importlib.util.spec_from_file_location("unkai_pack_rules", PACK_SOURCE / "rules.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rules = _load_rules()
WORKLOAD = "unkai:kubernetes:Workload"


def _rendered(kind: str) -> dict[str, str]:
    """The files ``unkai render local`` writes under ``kind/``, by path below it."""
    env = load_environment("local", root=ROOT)
    tree = render_tree(env, accelerator="tcg")
    return {
        str(path).split(f"{kind}/", 1)[1]: content
        for path, content in tree.items()
        if str(path).startswith(f"{kind}/")
    }


def test_every_policy_the_model_names_is_a_rule_of_the_pack():
    names = set(typing.get_args(PolicyName))
    assert names == {*rules.RESOURCE_RULES, *rules.STACK_RULES}


def test_local_s_own_workloads_images_and_vms_break_no_rule():
    manifests = _rendered("kubernetes")
    api = {k.split("/", 2)[-1]: v for k, v in manifests.items() if k.startswith("apps/api/")}
    assert rules.secret_values(WORKLOAD, {"manifests": api}) == []
    assert rules.non_root_with_limits(WORKLOAD, {"manifests": api}) == []
    dockerfile = _rendered("docker")["api/Dockerfile"]
    assert rules.secret_values("unkai:containers:ContainerImage", {"dockerfile": dockerfile}) == []
    cloud_init = _rendered("cloud-init")
    vm = {"user_data": cloud_init["db/user-data"], "meta_data": cloud_init["db/meta-data"]}
    assert rules.secret_values("unkai:compute:Instance", vm) == []
    # local names images by tag, not digest
    assert len(rules.pinned_images(WORKLOAD, {"manifests": api})) == 1


def _deployment(env: list, container: dict | None = None, pod: dict | None = None) -> dict:
    spec = {"containers": [{"name": "app", "image": "app:1", "env": env, **(container or {})}]}
    spec.update(pod or {})
    doc = {"kind": "Deployment", "spec": {"template": {"spec": spec}}}
    return {"deployment.yaml": yaml.safe_dump(doc)}


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("DB_PASSWORD", "hunter2", "has a secret's name"),
        ("api_key", "x", "has a secret's name"),
        ("SESSION", "q8Zr3VxP0m+2LkT9wYb7Ud4fHs1NcEa6", "random-looking"),
        ("TLS", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
         "private key"),
    ],
)  # fmt: skip
def test_a_secret_in_a_container_s_plain_env_is_found(name, value, why):
    manifests = _deployment([{"name": name, "value": value}])
    found = rules.secret_values(WORKLOAD, {"manifests": manifests})
    assert len(found) == 1 and why in found[0] and name in found[0], found


@pytest.mark.parametrize(
    "value",
    [
        "info",
        "sha256:" + "ab" * 32,  # a digest: hex, 4 bits a character at most
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB8y78lGinxV0Yh+5WeylkHH0j2rMiFDhUuDcatzG124",
        "a sentence with spaces that is long enough to be looked at",
        "$(DB_HOST)",
    ],
)
def test_plain_values_that_are_no_secret_pass(value):
    env = [{"name": "SETTING", "value": value}]
    assert rules.secret_values(WORKLOAD, {"manifests": _deployment(env)}) == []


def test_a_secret_from_a_secret_reference_passes():
    env = [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "api", "key": "k"}}}]
    assert rules.secret_values(WORKLOAD, {"manifests": _deployment(env)}) == []


def test_dockerfile_env_and_instance_cloud_init_are_looked_at():
    dockerfile = 'FROM unkai/debian:12\nENV API_TOKEN="abc"\nARG PORT=8080\n'
    found = rules.secret_values("unkai:containers:ContainerImage", {"dockerfile": dockerfile})
    assert found and "Dockerfile ENV API_TOKEN" in found[0]
    user_data = "#cloud-config\npassword: hunter2hunter2\nssh_pwauth: false\n"
    found = rules.secret_values("unkai:compute:Instance", {"user_data": user_data})
    assert len(found) == 1 and "user_data password" in found[0], found


def test_root_and_missing_limits_are_reported_per_container():
    root = _deployment([], container={"securityContext": {"runAsUser": 0}})
    found = rules.non_root_with_limits(WORKLOAD, {"manifests": root})
    assert any("may run as root" in f for f in found)
    assert any("no cpu and no memory limit" in f for f in found)
    fine = _deployment(
        [], container={"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
        pod={"securityContext": {"runAsNonRoot": True}},
    )  # fmt: skip
    assert rules.non_root_with_limits(WORKLOAD, {"manifests": fine}) == []


def test_unknown_manifests_are_not_judged():
    assert rules.non_root_with_limits(WORKLOAD, {"manifests": None}) == []
    assert rules.pinned_images(WORKLOAD, {}) == []


def test_bridged_nics_and_group_members_sharing_a_host():
    xml = "<domain><devices><interface type='bridge'><source bridge='br0'/></interface>"
    assert rules.no_bridged_nic("unkai:compute:Instance", {"domain_xml": xml})
    user = {"domain_xml": "<interface type='user'>"}
    assert rules.no_bridged_nic("unkai:compute:Instance", user) == []
    members = {"web": {"web-0": "kvm-1", "web-1": "kvm-1", "web-2": "kvm-2"}}
    assert rules.group_anti_affinity(members) == [
        ("web-1", "shares host kvm-1 with web-0 of group web")
    ]


def test_the_pack_is_written_only_for_an_environment_that_turns_a_policy_on(tmp_path):
    env = load_environment("local", root=ROOT)
    assert prepare_pack(env, root=tmp_path, env_file="environments/local.yaml",
                        venv=lambda: tmp_path / "venv") is None  # fmt: skip
    strict = env.model_copy(update={"policies": {"secret-values": "mandatory",
                                                 "pinned-images": "disabled"}})  # fmt: skip
    folder = prepare_pack(strict, root=tmp_path, env_file="environments/local.yaml",
                          venv=lambda: tmp_path / "venv")  # fmt: skip
    assert folder == tmp_path / ".unkai" / "policy" / "local"
    assert {p.name for p in folder.iterdir()} == {
        "PulumiPolicy.yaml", "__main__.py", "rules.py", "context.json"
    }  # fmt: skip
    context = yaml.safe_load((folder / "context.json").read_text())
    assert context["levels"] == {"secret-values": "mandatory"}
    keys = context["keys"]
    assert keys["unkai:compute:Instance::local-db"] == "instances.db"
    assert keys["unkai:compute:Instance::local-web-1"] == "instance_groups.web"
    assert keys["unkai:kubernetes:Workload::local-api"] == "workloads.api"
    assert keys["unkai:containers:ContainerImage::local-api"] == "container_images.api"
    assert f"virtualenv: {tmp_path / 'venv'}" in (folder / "PulumiPolicy.yaml").read_text()
    assert mandatory(strict) == ["secret-values"]
    assert resource_keys(env) == context["keys"]


def test_a_zone_short_of_headroom_is_named_with_its_free_share():
    hosts = {
        "kvm-1": {"zone": "a", "cpus": 8, "memory_mb": 8192},
        "kvm-2": {"zone": "a", "cpus": 8, "memory_mb": 8192},
        "kvm-3": {"zone": "b", "cpus": 8, "memory_mb": 8192},
    }
    instances = {
        "db": {"host": "kvm-1", "vcpus": 4, "memory_mb": 8192},
        "web": {"host": "kvm-2", "vcpus": 4, "memory_mb": 6144},
        "cache": {"host": "kvm-3", "vcpus": 1, "memory_mb": 1024},
        "new": {"host": None, "vcpus": 64, "memory_mb": 65536},  # not placed yet: nowhere
    }
    assert rules.zone_headroom(hosts, instances, 20) == [
        ("a", "zone a keeps 12 % of its 16,384 schedulable MiB of memory free, under the"
              " 20 % headroom asked for"),
    ]  # fmt: skip
    assert [zone for zone, _ in rules.zone_headroom(hosts, instances, 90)] == ["a", "a", "b", "b"]
    assert rules.zone_headroom(hosts, instances, 0) == []


def test_the_pack_s_context_has_each_host_s_schedulable_capacity_and_the_share(tmp_path):
    env = load_environment("local", root=ROOT)
    on = env.model_copy(update={"policies": {"zone-headroom": "mandatory"}})
    folder = prepare_pack(on, root=tmp_path, env_file="environments/local.yaml",
                          venv=lambda: tmp_path / "venv")  # fmt: skip
    assert folder is not None
    context = yaml.safe_load((folder / "context.json").read_text())
    host = env.hosts["localhost"]
    pool = env.host_pools[host.pool]
    assert context["headroom"] == {
        "percent": 20,
        "key": "settings.zone_headroom_percent",
        "hosts": {"localhost": {"zone": host.zone, "cpus": pool.schedulable_cpus(host),
                                "memory_mb": pool.schedulable_memory_mb(host)}},
    }  # fmt: skip


@pytest.mark.parametrize("percent", ["lots", 120, -1, True])
def test_a_headroom_that_is_not_a_percentage_is_refused_naming_the_key(tmp_path, percent):
    env = load_environment("local", root=ROOT)
    settings = {**env.settings, "zone_headroom_percent": percent}
    bad = env.model_copy(update={"policies": {"zone-headroom": "advisory"}, "settings": settings})
    with pytest.raises(ConfigError) as caught:
        prepare_pack(bad, root=tmp_path, env_file="environments/local.yaml",
                     venv=lambda: tmp_path / "venv")  # fmt: skip
    text = str(caught.value)
    assert "environments/local.yaml" in text and "settings.zone_headroom_percent" in text
    assert "a number from 0 to 100" in text
