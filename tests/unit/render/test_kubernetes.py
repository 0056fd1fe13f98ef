from __future__ import annotations

from typing import Any

import pytest
import yaml

from unkai.errors import RenderError
from unkai.model import Environment
from unkai.render import (
    SECRET_REFS_ANNOTATION,
    image_reference,
    kubernetes_minor,
    render_manifests,
    secret_refs,
)


def _docs(manifests: dict[str, str]) -> dict[str, Any]:
    return {name: yaml.safe_load(text) for name, text in manifests.items()}


def test_api_manifests(env: Environment) -> None:
    api = env.workloads["api"]
    docs = _docs(render_manifests(api, env))
    assert list(docs) == ["deployment.yaml", "hpa.yaml", "pdb.yaml", "service.yaml"]
    deployment = docs["deployment.yaml"]
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    [container] = pod["containers"]
    assert container["image"] == image_reference(env.container_images["api"], env)
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "256Mi"},
    }
    assert container["env"] == [
        {
            "name": "DATABASE_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "api", "key": "DATABASE_PASSWORD"}},
        },
        {"name": "FEATURE_FLAG", "value": "true"},
        {"name": "LOG_LEVEL", "value": "info"},
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["tcpSocket"] == {"port": 8080}
    assert deployment["metadata"]["annotations"] == {
        SECRET_REFS_ANNOTATION: '{"DATABASE_PASSWORD":"db-password"}'
    }
    hpa = docs["hpa.yaml"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert "behavior" not in hpa["spec"]  # Kubernetes' own stabilisation
    pdb = docs["pdb.yaml"]
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["minAvailable"] == 1
    service = docs["service.yaml"]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}
    ]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_an_hpa_scales_down_after_its_stabilisation_window(
    env: Environment, sample_document: dict[str, Any]
) -> None:
    sample_document["workloads"]["api"]["autoscaling"]["scale_down_stabilization_s"] = 30
    other = Environment.model_validate(sample_document)
    hpa = _docs(render_manifests(other.workloads["api"], other))["hpa.yaml"]
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 30}}


def test_worker_has_only_a_deployment(env: Environment) -> None:
    docs = _docs(
        render_manifests(env.workloads["worker"], env, image_ref="worker@sha256:" + "a" * 64)
    )
    assert list(docs) == ["deployment.yaml"]
    deployment = docs["deployment.yaml"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "worker@sha256:" + "a" * 64
    )
    assert "annotations" not in deployment["metadata"]


def test_no_secret_object_and_no_values(env: Environment) -> None:
    api = env.workloads["api"]
    assert secret_refs(api) == {"DATABASE_PASSWORD": "db-password"}
    for text in render_manifests(api, env).values():
        assert "kind: Secret" not in text
        assert "stringData" not in text and "\ndata:" not in text


def test_foreign_workload_is_refused(env: Environment, sample_document: dict[str, Any]) -> None:
    sample_document["workloads"]["api"]["replicas"] = 3
    other = Environment.model_validate(sample_document)
    with pytest.raises(RenderError, match="not part of environment"):
        render_manifests(other.workloads["api"], env)


def test_kubernetes_minor() -> None:
    assert kubernetes_minor("1.31.4") == "1.31"


def test_every_object_names_its_environment_and_project(env: Environment) -> None:
    owned = env.model_copy(update={"project": "acme"})
    for workload in ("api", "worker"):
        for name, doc in _docs(render_manifests(owned.workloads[workload], owned)).items():
            labels = doc["metadata"]["labels"]
            assert labels["unkai.dev/environment"] == env.name, name
            assert labels["unkai.dev/project"] == "acme", name
            assert labels["app.kubernetes.io/managed-by"] == "unkai", name
    # An environment of no project (one built in code, outside any) has no project label.
    none = env.model_copy(update={"project": None})
    plain = _docs(render_manifests(none.workloads["api"], none))
    assert "unkai.dev/project" not in plain["deployment.yaml"]["metadata"]["labels"]
