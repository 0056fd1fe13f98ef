"""The NodePool custom resource, its status round trip and the Lease rule. Pure."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jsonschema
import pytest
import yaml

from unkai.environments import load_environment
from unkai.model import NodePool
from unkai.operator import Holder, Memory, instance_group_crd, may_take, node_pool_crd
from unkai.operator._pools import Decision
from unkai.operator._reconcile import Observed, memory_of, pool_spec, status_of
from unkai.render import render_node_pool

T0 = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
LOCAL = load_environment("local", root=Path(__file__).resolve().parents[3])


def node_pool_resource(cluster: str, pool: NodePool) -> dict:
    return yaml.safe_load(render_node_pool(cluster, pool, LOCAL))


def schema() -> dict:
    (version,) = node_pool_crd()["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def test_the_crd_serves_one_version_with_status_and_printer_columns():
    crd = node_pool_crd()
    assert crd["metadata"]["name"] == "nodepools.unkai.dev"
    (version,) = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Cluster", "Size", "Min", "Max", "Target", "Ready", "Updated", "Age"]


def test_a_model_pool_becomes_an_object_the_schema_accepts():
    model = NodePool(
        name="web",
        machine_type="n2-standard-4",
        size=2,
        max_size=5,
        labels={"tier": "web"},
        taints=[{"key": "dedicated", "value": "web", "effect": "NoSchedule"}],
    )
    obj = node_pool_resource("apps", model)
    jsonschema.validate(obj, schema())
    assert obj["spec"]["cpu"] == "4" and obj["spec"]["memory"] == "16384Mi"
    assert (obj["spec"]["minSize"], obj["spec"]["size"], obj["spec"]["maxSize"]) == (2, 2, 5)
    view = pool_spec("web", obj["spec"])
    assert (view.shape.allocatable.cpu, view.shape.allocatable.memory) == (4000, 16 * 1024**3)
    assert view.autoscaled and view.shape.taints[0].key == "dedicated"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("size", -1),
        ("cpu", "four"),
        ("nodes", "container"),
        ("taints", [{"key": "k", "effect": "Evict"}]),
    ],
)
def test_the_schema_refuses_bad_values(key, value):
    obj = node_pool_resource("apps", NodePool(name="web", machine_type="e2-small", size=1))
    obj["spec"][key] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, schema())


def test_what_a_round_keeps_in_status_reads_back_the_same():
    memory = Memory(
        target=3,
        observed_size=2,
        last_scale_up=T0.timestamp(),
        unneeded_since={"web-1": T0.timestamp() - 30},
        repairs=(T0.timestamp() - 5,),
    )
    status = status_of(Decision(target=3, memory=memory), Observed(nodes=(), pods=()))
    assert status["lastScaleUp"] == "2026-12-05T12:00:00Z"
    assert memory_of(status) == memory
    assert memory_of({}) == Memory()


def test_a_lease_is_taken_when_free_expired_or_already_ours():
    held = Holder(identity="a", renewed=T0, duration=15)
    assert may_take(held, "a", T0)
    assert not may_take(held, "b", T0 + dt.timedelta(seconds=14))
    assert may_take(held, "b", T0 + dt.timedelta(seconds=15))
    assert may_take(Holder(identity=None, renewed=None, duration=15), "b", T0)


def group_schema() -> dict:
    (version,) = instance_group_crd()["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def instance_group(**spec: object) -> dict:
    slots = [
        {"name": f"web-{i}", "host": "localhost", "digest": "d", "inputs": {"name": f"web-{i}"}}
        for i in range(3)
    ]
    return {
        "apiVersion": "unkai.dev/v1alpha1",
        "kind": "InstanceGroup",
        "metadata": {"name": "unkai-local-local-web"},
        "spec": {
            "environment": "unkai-local-local",
            "size": 2,
            "minSize": 1,
            "maxSize": 2,
            "healthCheck": {"type": "tcp", "port": 80},
            "autoscaling": {"targetCpuPercent": 60},
            "slots": slots,
            **spec,
        },
    }


def test_the_instance_group_crd_serves_one_version_with_status_and_printer_columns():
    crd = instance_group_crd()
    assert crd["metadata"]["name"] == "instancegroups.unkai.dev"
    (version,) = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == [
        "Environment", "Size", "Min", "Max", "Target", "Healthy", "Updated", "Age",
    ]  # fmt: skip
    jsonschema.validate(instance_group(), group_schema())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("size", -1),
        ("healthCheck", {"type": "icmp"}),
        ("autoscaling", {"targetCpuPercent": 0}),
        ("slots", [{"name": "web-0", "host": "localhost"}]),
    ],
)
def test_the_instance_group_schema_refuses_bad_values(key, value):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(instance_group(**{key: value}), group_schema())
