"""The local control plane for real: etcd, kube-apiserver, controllers, scheduler, kwok."""

from __future__ import annotations

import base64
import ssl
import stat
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from lightkube import codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node, Pod, Secret

from unkai.drivers.kubernetes import (
    COMPONENTS,
    ControlPlane,
    FakeNodePool,
    NodeTaint,
    create_fake_nodes,
    kube_client,
    list_fake_nodes,
    sync_fake_nodes,
    wait_nodes_ready,
)
from unkai.drivers.kubernetes._process import free_ports, is_running, listening
from unkai.model import Cluster, NodePool, machine_type


def pool_of(model: NodePool) -> FakeNodePool:
    """What the provider will do: a model node pool as simulated nodes."""
    shape = machine_type(model.machine_type)
    return FakeNodePool(
        name=model.name,
        size=model.size,
        cpu=str(shape.cpus),
        memory=f"{shape.memory_mb}Mi",
        machine_type=shape.name,
        labels=dict(model.labels),
        taints=tuple(NodeTaint(t.key, t.effect, t.value) for t in model.taints),
    )


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            # Never pulled: kwok plays the kubelet.
                            "name": "web",
                            "image": "registry.unkai.invalid/web@sha256:" + "0" * 64,
                            "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}},
                        }
                    ],
                    "tolerations": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}],
                },
            },
        },
    }


def readyz(cp: ControlPlane) -> str:
    pki = cp.state_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    with urllib.request.urlopen(f"{cp.endpoint}/readyz", context=context, timeout=5) as resp:
        return resp.read().decode()


@pytest.fixture
def control_plane(tmp_path: Path):
    cluster = Cluster(
        name=f"it-{uuid.uuid4().hex[:8]}",
        kubernetes_version="1.36.3",
        control_plane={"port": free_ports(1)[0]},
        node_pools=[
            NodePool(
                name="web",
                machine_type="n2-standard-4",
                size=3,
                labels={"tier": "web"},
                taints=[{"key": "dedicated", "value": "web", "effect": "NoSchedule"}],
            )
        ],
    )
    cp = ControlPlane(
        name=cluster.name,
        state_dir=tmp_path / ".unkai" / "clusters" / cluster.name,
        host=cluster.control_plane.host,
        port=cluster.control_plane.port,
        version=cluster.kubernetes_version,
    )
    try:
        yield cp, cluster
    finally:
        cp.stop()


def test_control_plane_runs_a_deployment_on_kwok_nodes(control_plane, request):
    cp, cluster = control_plane
    t0 = time.monotonic()
    plan = cp.start()
    print(f"cold start to readyz: {time.monotonic() - t0:.1f} s")
    assert readyz(cp) == "ok"
    status = cp.status()
    # kwok's nodes have no kubelet to scrape: no metrics-server (the last component).
    assert [s.name for s in status] == list(COMPONENTS[:-1])
    assert all(s.running and s.healthy for s in status), status
    ports = [c.port for c in plan.components]

    # A second start finds everything healthy and does nothing.
    pids = {s.name: s.pid for s in status}
    cp.start()
    assert {s.name: s.pid for s in cp.status()} == pids

    pool = pool_of(cluster.node_pools[0])
    assert len(create_fake_nodes(kubeconfig=cp.kubeconfig_path, pool=pool)) == 3
    assert create_fake_nodes(kubeconfig=cp.kubeconfig_path, pool=pool) == ()
    wait_nodes_ready(kubeconfig=cp.kubeconfig_path, pool="web", count=3, timeout=120)
    client = kube_client(cp.kubeconfig_path)
    request.addfinalizer(client.close)
    node = client.get(Node, "web-0")
    # The API server canonicalises quantities: 16384Mi is 16Gi.
    assert node.status.capacity == {"cpu": "4", "memory": "16Gi", "pods": "110"}
    assert node.metadata.labels["tier"] == "web"
    assert node.metadata.labels["node.kubernetes.io/instance-type"] == "n2-standard-4"
    # The node lifecycle controller may still hold its own not-ready taint for a moment.
    assert ("dedicated", "web", "NoSchedule") in [
        (t.key, t.value, t.effect) for t in node.spec.taints
    ]

    client.create(codecs.from_dict(deployment("web", 3)))
    deadline = time.monotonic() + 180
    available = 0
    while time.monotonic() < deadline:
        dep = client.get(Deployment, "web", namespace="default")
        available = (dep.status.availableReplicas or 0) if dep.status else 0
        if available == 3:
            break
        time.sleep(0.5)
    assert available == 3
    pods = list(client.list(Pod, namespace="default", labels={"app": "web"}))
    assert len(pods) == 3
    assert all(p.status.phase == "Running" for p in pods)
    assert {p.spec.nodeName for p in pods} <= {"web-0", "web-1", "web-2"}
    assert all(p.status.podIP for p in pods)

    # Scaling the pool down deletes the highest-numbered node only.
    smaller = FakeNodePool(**{**pool.__dict__, "size": 2})
    assert sync_fake_nodes(kubeconfig=cp.kubeconfig_path, pool=smaller) == ((), ("web-2",))
    assert [n.name for n in list_fake_nodes(kubeconfig=cp.kubeconfig_path, pool="web")] == [
        "web-0",
        "web-1",
    ]

    stopped = cp.stop()
    assert stopped == COMPONENTS[:-1]
    for name, pid in pids.items():
        assert pid is not None and not is_running(pid), name
    for port in ports:
        assert not listening(port), port
    assert not any(s.running for s in cp.status())
    assert cp.stop() == ()


def etcd_files_holding(cp: ControlPlane, *needles: bytes) -> dict[bytes, list[str]]:
    """Which of etcd's files (WAL, snapshots, the database) hold each of ``needles``."""
    found: dict[bytes, list[str]] = {needle: [] for needle in needles}
    for path in sorted((cp.state_dir / "etcd").rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                if needle in data:
                    found[needle].append(str(path.relative_to(cp.state_dir)))
    return found


def test_start_again_after_stop_keeps_the_data_and_secrets_are_encrypted_in_etcd(
    control_plane,
):
    cp, _ = control_plane
    cp.start()
    pool = FakeNodePool(name="keep", size=1, cpu="2", memory="8Gi")
    create_fake_nodes(kubeconfig=cp.kubeconfig_path, pool=pool)
    canary = f"CANARY-{uuid.uuid4().hex}"
    client = kube_client(cp.kubeconfig_path)
    try:
        client.create(
            Secret(metadata=ObjectMeta(name="db-password"), stringData={"password": canary}),
            namespace="default",
        )
    finally:
        client.close()
    ca = (cp.state_dir / "pki" / "ca.crt").read_bytes()
    key_file = cp.state_dir / "pki" / "encryption-config.yaml"
    key = key_file.read_bytes()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    cp.stop()
    found = etcd_files_holding(
        cp,
        canary.encode(),
        base64.b64encode(canary.encode()),
        b"/registry/secrets/default/db-password",
        b"k8s:enc:secretbox:v1:unkai-1:",
    )
    assert found[canary.encode()] == [] and found[base64.b64encode(canary.encode())] == []
    # The search does find what is there: the Secret's key, and its value sealed.
    assert found[b"/registry/secrets/default/db-password"]
    assert found[b"k8s:enc:secretbox:v1:unkai-1:"]
    cp.start()
    assert (cp.state_dir / "pki" / "ca.crt").read_bytes() == ca
    assert key_file.read_bytes() == key  # the same key after a restart
    client = kube_client(cp.kubeconfig_path)
    try:
        assert client.get(Node, "keep-0").metadata.name == "keep-0"
        secret = client.get(Secret, "db-password", namespace="default")
        assert base64.b64decode(secret.data["password"]).decode() == canary
    finally:
        client.close()
    cp.remove()
    assert not cp.state_dir.exists()
    assert not any(s.running for s in cp.status())
