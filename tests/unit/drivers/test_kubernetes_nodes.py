from unkai.drivers.kubernetes import FakeNodePool, NodeTaint, fake_node_manifest


def test_fake_node_carries_pool_capacity_labels_taints_and_kwok_annotation():
    pool = FakeNodePool(
        name="web",
        size=3,
        cpu="4",
        memory="16384Mi",
        machine_type="n2-standard-4",
        labels={"tier": "web"},
        taints=(NodeTaint("dedicated", "NoSchedule", "web"),),
    )
    node = fake_node_manifest(pool, 2)
    assert node["metadata"]["name"] == "web-2"
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    labels = node["metadata"]["labels"]
    assert labels["unkai.dev/node-pool"] == "web"
    assert labels["tier"] == "web"
    assert labels["node.kubernetes.io/instance-type"] == "n2-standard-4"
    assert labels["kubernetes.io/hostname"] == "web-2"
    assert node["status"]["capacity"] == {"cpu": "4", "memory": "16384Mi", "pods": "110"}
    assert node["status"]["allocatable"] == node["status"]["capacity"]
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}]


def test_untainted_pool_has_empty_spec():
    node = fake_node_manifest(FakeNodePool(name="p", size=1, cpu="1", memory="1Gi"), 0)
    assert node["spec"] == {}
    assert "node.kubernetes.io/instance-type" not in node["metadata"]["labels"]
