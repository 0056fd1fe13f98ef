"""What a server-side apply would set back: the paths where two objects differ (pure)."""

from __future__ import annotations

from unkai.drivers.kubernetes import changed_paths
from unkai.drivers.kubernetes._workloads import _declared


def test_changed_paths_name_each_leaf_and_list_item_never_a_value():
    def deployment(image: str, value: str) -> dict:
        container = {"name": "api", "image": image, "env": [{"name": "A", "value": value}]}
        return {"spec": {"replicas": 3, "template": {"spec": {"containers": [container]}}}}

    live, applied = deployment("edited:1", "s3cret"), deployment("api:1", "other")
    assert changed_paths(live, applied) == [
        "spec.template.spec.containers[0].env[0].value",
        "spec.template.spec.containers[0].image",
    ]
    assert changed_paths({"a": [1, 2]}, {"a": [1]}) == ["a"]  # a list that grew or shrank
    assert changed_paths({"a": 1}, {"a": 1, "b": None}) == []
    assert changed_paths(live, live) == []


def test_the_server_s_own_fields_and_followed_ones_are_not_compared():
    obj = {"metadata": {"name": "api", "resourceVersion": "7", "generation": 2,
                        "managedFields": [{"manager": "unkai"}], "labels": {"a": "b"}},
           "spec": {"replicas": 2, "paused": False}, "status": {"replicas": 2}}  # fmt: skip
    kept = _declared(obj, followed=(("spec", "replicas"),))
    assert kept == {"metadata": {"name": "api", "labels": {"a": "b"}}, "spec": {"paused": False}}
    assert obj["spec"]["replicas"] == 2 and "status" in obj  # the original is left alone
