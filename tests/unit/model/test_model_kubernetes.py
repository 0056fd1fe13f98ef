from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from unkai.model import Cluster, ControlPlane, NodePool, Resources, Workload, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("0.25", Decimal("0.25")),
        (".5", Decimal("0.5")),
        ("1Ki", Decimal(1024)),
        ("128Mi", Decimal(128 * 2**20)),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("1k", Decimal(1000)),
        ("1M", Decimal(10**6)),
        ("1e3", Decimal(1000)),
        ("100n", Decimal("1E-7")),
    ],
)
def test_parse_quantity(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "m", "1 Gi", "1GB", "1.2.3", "one"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity; allowed"):
        parse_quantity(text)


def test_requests_must_not_exceed_limits() -> None:
    ok = Resources.model_validate(
        {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1024Mi"}}
    )
    assert ok.requests.cpu == "500m"
    with pytest.raises(
        ValidationError, match=re.escape("requests.memory 2Gi is more than limits.memory 1Gi")
    ):
        Resources.model_validate({"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}})
    with pytest.raises(ValidationError, match="is negative"):
        Resources.model_validate({"requests": {"cpu": "-1"}})


def test_node_pool_and_cluster() -> None:
    cluster = Cluster.model_validate(
        {
            "name": "main",
            "kubernetes_version": "1.31.2",
            "node_pools": [
                {"name": "zz", "machine_type": "e2-small", "size": 1},
                {
                    "name": "aa",
                    "machine_type": "custom-2-4096",
                    "size": 2,
                    "max_size": 5,
                    "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
                },
            ],
        }
    )
    assert [p.name for p in cluster.node_pools] == ["aa", "zz"]
    assert (cluster.node_pools[0].min_size, cluster.node_pools[0].max_size) == (2, 5)
    assert cluster.control_plane == ControlPlane(host="127.0.0.1", port=6443)
    assert cluster.control_plane.endpoint == "https://127.0.0.1:6443"
    assert ControlPlane(host="fd00::1").endpoint == "https://[fd00::1]:6443"
    assert Cluster.model_validate(cluster.model_dump(mode="json")) == cluster


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        (
            {"kubernetes_version": "v1.31"},
            "is not a Kubernetes version; allowed: 1.<minor>.<patch>",
        ),
        ({"kubernetes_version": "2.0.0"}, "is not a Kubernetes version"),
        (
            {"node_pools": [{"name": "a", "machine_type": "e2-small", "size": 1}] * 2},
            "node pool names must be unique",
        ),
        (
            {"node_pools": [{"name": "a", "machine_type": "x1", "size": 1}]},
            "unknown machine type",
        ),
        (
            {"node_pools": [{"name": "a", "machine_type": "e2-small", "size": 3, "max_size": 2}]},
            "need min_size ≤ size ≤ max_size",
        ),
        (
            {
                "node_pools": [
                    {
                        "name": "a",
                        "machine_type": "e2-small",
                        "size": 1,
                        "taints": [{"key": "k", "effect": "Evict"}],
                    }
                ]
            },
            "'NoSchedule', 'PreferNoSchedule' or 'NoExecute'",
        ),
        ({"control_plane": {"port": 70000}}, "less than or equal to 65535"),
    ],
)
def test_bad_clusters(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        Cluster.model_validate({"name": "main", "kubernetes_version": "1.31.2", **fields})
    assert fragment in str(info.value)


def test_taint_key_rules() -> None:
    pool = NodePool.model_validate(
        {
            "name": "p",
            "machine_type": "e2-small",
            "size": 1,
            "taints": [{"key": "example.com/role", "effect": "NoExecute"}],
        }
    )
    assert pool.taints[0].value == ""
    with pytest.raises(ValidationError, match="is not a taint key"):
        NodePool.model_validate(
            {
                "name": "p",
                "machine_type": "e2-small",
                "size": 1,
                "taints": [{"key": "bad key", "effect": "NoExecute"}],
            }
        )


WORKLOAD: dict[str, Any] = {
    "name": "api",
    "cluster": "main",
    "image": "api",
    "replicas": 3,
    "resources": {"requests": {"cpu": "250m"}},
    "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}],
}


def workload(**fields: Any) -> Workload:
    return Workload.model_validate({**WORKLOAD, **fields})


def test_the_largest_int32_counts_are_accepted() -> None:
    w = workload(replicas=2**31 - 1, liveness_probe={"type": "tcp", "port": 8080,
                 "period_seconds": 2**31 - 1})  # fmt: skip
    assert w.replicas == 2**31 - 1


def test_full_workload_round_trips() -> None:
    w = workload(
        env={"B": "2", "A": "1"},
        secret_env={"DB_PASSWORD": "db-password"},
        readiness_probe={"type": "http", "port": "http"},
        liveness_probe={"type": "tcp", "port": 8080, "initial_delay_seconds": 5},
        autoscaling={"min_replicas": 2, "max_replicas": 6, "target_cpu_utilization": 70},
        service={
            "type": "NodePort",
            "ports": [{"name": "http", "port": 80, "target_port": "http", "node_port": 30080}],
        },
        pdb_min_available=2,
    )
    assert list(w.env) == ["A", "B"]
    assert w.readiness_probe is not None and w.readiness_probe.path == "/"
    assert w.liveness_probe is not None and w.liveness_probe.path is None
    assert Workload.model_validate(w.model_dump(mode="json")) == w


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"ports": [{"name": "http", "port": 1}] * 2}, "container port names must be unique"),
        (
            {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 1}]},
            "declared twice for one protocol",
        ),
        ({"ports": [{"name": "HTTP", "port": 1}]}, "is not a port name"),
        ({"ports": [{"name": "1234", "port": 1}]}, "is not a port name"),
        ({"env": {"X": "1"}, "secret_env": {"X": "x"}}, "['X'] are in both env and secret_env"),
        (
            {"readiness_probe": {"type": "http", "port": "grpc"}},
            "readiness_probe.port: unknown container port 'grpc'; defined: ['http', 'metrics']",
        ),
        ({"liveness_probe": {"type": "tcp", "port": 8080, "path": "/"}}, "only allowed for http"),
        ({"liveness_probe": {"type": "http", "port": 8080, "path": "x"}}, "starting with '/'"),
        ({"liveness_probe": {"type": "http", "port": 0}}, "port 0 is out of range"),
        (
            {"service": {"ports": [{"name": "web", "port": 80, "target_port": "web"}]}},
            "service.ports.0.target_port: unknown container port 'web'",
        ),
        (
            {"service": {"ports": [{"name": "web", "port": 80, "node_port": 30001}]}},
            "node_port is only allowed for NodePort and LoadBalancer",
        ),
        ({"service": {"ports": []}}, "at least 1 item"),
        (
            {"autoscaling": {"min_replicas": 4, "max_replicas": 6}},
            "replicas 3 is outside autoscaling 4..6",
        ),
        (
            {"resources": {}, "autoscaling": {"min_replicas": 1, "max_replicas": 6}},
            "autoscaling on CPU needs resources.requests.cpu",
        ),
        (
            {"autoscaling": {"min_replicas": 5, "max_replicas": 2}},
            "min_replicas 5 is more than max_replicas 2",
        ),
        # Kubernetes' counts and seconds are int32: refused here, not by the API server.
        ({"replicas": 2**31}, "replicas\n  Input should be less than or equal to 2147483647"),
        (
            {"autoscaling": {"min_replicas": 3, "max_replicas": 2**31}},
            "autoscaling.max_replicas\n  Input should be less than or equal to 2147483647",
        ),
        (
            {"liveness_probe": {"type": "tcp", "port": 8080, "period_seconds": 2**31}},
            "liveness_probe.period_seconds\n  Input should be less than or equal to 2147483647",
        ),
        ({"pdb_min_available": 4}, "pdb_min_available 4 is more than the 3 replicas"),
        (
            {"pdb_min_available": 3, "autoscaling": {"min_replicas": 2, "max_replicas": 6}},
            "pdb_min_available 3 is more than the 2 replicas",
        ),
    ],
)
def test_bad_workloads(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        workload(**fields)
    assert fragment in str(info.value)


def test_a_vm_node_pool_needs_a_template_and_a_simulated_one_has_none() -> None:
    from unkai.model import NodePool

    pool = NodePool(name="vms", kind="vm", template="node", machine_type="e2-small", size=2)
    assert pool.node_names("apps") == ("apps-vms-0", "apps-vms-1")
    assert NodePool(name="sim", machine_type="e2-small", size=1).kind == "simulated"
    with pytest.raises(ValidationError, match="a vm node pool needs a template"):
        NodePool(name="vms", kind="vm", machine_type="e2-small", size=1)
    with pytest.raises(ValidationError, match="a simulated node pool has no template"):
        NodePool(name="sim", template="node", machine_type="e2-small", size=1)
    # Its bounds are checked against its environment (a management cluster keeps it).
    bounded = NodePool(
        name="vms", kind="vm", template="n", machine_type="e2-small", size=1, max_size=3
    )
    assert bounded.node_names("apps") == ("apps-vms-0",)
    # The slots the operator may use: up to max_size, and one more for a rollout's surge.
    assert bounded.node_names("apps", slots=True) == tuple(f"apps-vms-{i}" for i in range(4))
