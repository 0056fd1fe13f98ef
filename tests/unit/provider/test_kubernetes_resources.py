"""Kubernetes resources of the provider: checked inputs, diffs, and the pure plans."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from unkai.drivers.kubernetes import node_metadata_patch, plan_objects, ref_of, secret_manifest
from unkai.environments import load_environment
from unkai.errors import ConfigError
from unkai.provider import UNKNOWN, Props
from unkai.provider.resources import Cluster, NodePool, Workload
from unkai.render import render_manifests
from unkai.toolchain import kubernetes_version

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def local():
    return load_environment("local", root=ROOT)


def cluster_inputs(**changes):
    return {
        "name": "apps", "version": kubernetes_version(), "host": "127.0.0.1", "port": 6443,
        "state_dir": "/srv/unkai/.unkai/clusters/apps", **changes,
    }  # fmt: skip


@pytest.fixture(scope="module")
def steady(local):
    """``local`` with a fixed replica count for api (local gives it an HPA)."""
    api = local.workloads["api"].model_copy(update={"autoscaling": None})
    return local.model_copy(update={"workloads": {**local.workloads, "api": api}})


def workload_inputs(env, **changes):
    return {
        "kubeconfig": "/k", "cluster_ca": "sha256:ca", "namespace": "default", "name": "api",
        "manifests": render_manifests(env.workloads["api"], env), "replicas": 1,
        "image_id": "sha256:1", "secret_name": "api", "secret_values": {"DB_PASSWORD": "x"},
        **changes,
    }  # fmt: skip


def test_cluster_version_must_be_the_pinned_one():
    with pytest.raises(ConfigError) as err:
        Cluster().check(Props(cluster_inputs(version="1.31.4")))
    assert err.value.key_path == "version"
    assert err.value.allowed == kubernetes_version()
    assert kubernetes_version() in err.value.message
    assert str(err.value).endswith(f"(got '1.31.4'); allowed: {kubernetes_version()}")
    with pytest.raises(ConfigError, match="loopback") as err:
        Cluster().check(Props(cluster_inputs(host="10.0.0.1")))
    assert err.value.key_path == "host"
    assert str(err.value).endswith("(got '10.0.0.1'); allowed: 127.0.0.1, ::1 or localhost")
    with pytest.raises(ConfigError, match="absolute path") as err:
        Cluster().check(Props(cluster_inputs(state_dir="clusters/apps")))
    assert err.value.key_path == "state_dir"
    assert Cluster().check(Props(cluster_inputs()))["healthy"] is True


def test_cluster_endpoint_or_version_change_replaces_with_a_reason():
    olds = Props({**cluster_inputs(), "healthy": True})
    diff = Cluster().diff(olds, Props({**cluster_inputs(port=6444), "healthy": True}))
    assert diff.replaces == ("port",)
    assert "certificates" in (diff.reasons or {})["port"]


def test_node_pool_scaling_and_capacity_are_in_place_a_new_cluster_replaces():
    base = {
        "cluster": "apps", "kubeconfig": "/k", "cluster_ca": "sha256:ca", "name": "default",
        "size": 1, "cpu": "2", "memory": "2048Mi", "machine_type": "e2-small",
    }  # fmt: skip
    olds = Props(NodePool().check(Props(base)))
    scaled = NodePool().diff(olds, Props(NodePool().check(Props({**base, "size": 3}))))
    assert scaled.changed == ("size",) and scaled.replaces == ()
    # A new capacity rolls the nodes (the operator), the pool stays.
    bigger = NodePool().diff(olds, Props(NodePool().check(Props({**base, "cpu": "4"}))))
    assert bigger.changed == ("cpu",) and bigger.replaces == ()
    with pytest.raises(ConfigError, match="need min_size ≤ size ≤ max_size") as err:
        NodePool().check(Props({**base, "size": 3, "max_size": 2}))
    assert err.value.key_path == "size"
    new_cluster = NodePool().diff(olds, Props({**olds.values, "cluster_ca": UNKNOWN}))
    assert new_cluster.replaces == ("cluster_ca",)
    with pytest.raises(ConfigError) as err:
        NodePool().check(Props({**base, "taints": [{"key": "a", "effect": "Never"}]}))
    assert err.value.key_path == "taints.0.effect"
    assert "'NoSchedule', 'PreferNoSchedule' or 'NoExecute' (got 'Never')" in str(err.value)
    with pytest.raises(ConfigError) as err:
        NodePool().check(Props({**base, "taints": [{"key": "a", "efect": "NoSchedule"}]}))
    assert {p.key_path for p in err.value.problems} == {"taints.0.efect", "taints.0.effect"}
    assert "taints.0.efect: unknown key (did you mean 'effect'?)" in str(err.value)


def test_workload_secret_values_must_arrive_secret(steady):
    with pytest.raises(ConfigError, match="Pulumi secret") as err:
        Workload().check(Props(workload_inputs(steady)))
    assert err.value.key_path == "secret_values"
    checked = Workload().check(Props(workload_inputs(steady), frozenset({"secret_values"})))
    assert checked["manifests"] == render_manifests(steady.workloads["api"], steady)


def test_workload_errors_never_echo_a_secret_value(steady):
    inputs = workload_inputs(steady, secret_values={"DB_PASSWORD": 987654321})
    with pytest.raises(ConfigError) as err:
        Workload().check(Props(inputs, frozenset({"secret_values"})))
    assert err.value.key_path == "secret_values.DB_PASSWORD"
    assert "987654321" not in str(err.value)


def test_workload_replicas_must_match_the_manifests(steady):
    with pytest.raises(ConfigError) as err:
        Workload().check(Props(workload_inputs(steady, replicas=3), frozenset({"secret_values"})))
    assert err.value.key_path == "replicas"
    assert str(err.value).endswith("(got 3); allowed: 1")
    with pytest.raises(ConfigError) as err:
        Workload().check(Props(workload_inputs(steady, name="web"), frozenset({"secret_values"})))
    assert err.value.key_path == "manifests" and "named web" in err.value.message


def test_plan_objects_places_the_rendered_objects_and_secret_is_base64(local):
    objects = plan_objects(render_manifests(local.workloads["api"], local), namespace="team")
    assert [str(ref_of(o)) for o in objects] == [
        "Deployment/api", "HorizontalPodAutoscaler/api", "PodDisruptionBudget/api",
        "Service/api",
    ]  # fmt: skip
    assert {o["metadata"]["namespace"] for o in objects} == {"team"}
    secret = secret_manifest(name="api", namespace="team", values={"K": "v"}, labels={})
    assert secret["data"] == {"K": base64.b64encode(b"v").decode()}
    assert "stringData" not in secret


def test_node_metadata_patch_drops_old_labels_and_replaces_taints():
    patch = node_metadata_patch(labels={"a": "1"}, taints=[], dropped_labels=["b"])
    assert patch == {"metadata": {"labels": {"b": None, "a": "1"}}, "spec": {"taints": []}}
