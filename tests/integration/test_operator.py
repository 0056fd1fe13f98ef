"""The operator for real: node pools on a real control plane, reconciled by two replicas.

One control plane for the module, which runs its own operator (a component like kwok:
it applies the NodePool CRD), and a second operator process (``python -m
unkai.operator``) racing it for the Lease. The tests run in order, each from
where the last left the pool: it gets its size, scales up for unschedulable pods, scales
down without breaking a PodDisruptionBudget, repairs a node that stopped being Ready and
one deleted by hand, carries on in the standby when the leader is killed, and removes its
nodes when the pool is deleted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client, codecs
from lightkube.generic_resource import create_global_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Event, Node, Pod
from lightkube.types import PatchType

from unkai.cli.status import cluster_status
from unkai.drivers.kubernetes import ControlPlane, kube_client
from unkai.drivers.kubernetes._plan import KWOK_NODE_ANNOTATION
from unkai.drivers.kubernetes._process import free_ports
from unkai.operator import GROUP, LEASE_NAME, LEASE_NAMESPACE, VERSION
from unkai.operator._reconcile import TEMPLATE_LABEL, drain, observe

NodePoolCR = create_global_resource(GROUP, VERSION, "NodePool", "nodepools")
POOL = "web"
SMALL = {"cpu": "2", "memory": "4Gi"}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    """Poll ``check`` every half second until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Replica:
    """One operator process, its log in a file."""

    identity: str
    log: Path
    pid: int
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, kubeconfig: Path, log: Path, identity: str) -> Replica:
        """Another operator process beside the control plane's."""
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "unkai.operator", "--kubeconfig", str(kubeconfig),
                 "--interval", "1", "--lease-seconds", "6", "--identity", identity],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        return cls(identity, log, proc.pid, proc)

    @classmethod
    def of(cls, cp: ControlPlane) -> Replica:
        """The control plane's own operator."""
        (status,) = [s for s in cp.status() if s.name == "unkai-operator"]
        assert status.pid is not None
        return cls(f"unkai-operator@{cp.name}", status.log, status.pid)

    def output(self) -> str:
        return self.log.read_text()

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        if self.proc is not None:
            self.proc.wait(timeout=30)


def established(client: Client, name: str = "nodepools.unkai.dev") -> bool:
    crd = client.get(CustomResourceDefinition, name)
    conditions = (crd.status.conditions if crd.status else None) or ()
    return any(c.type == "Established" and c.status == "True" for c in conditions)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[ControlPlane, Client]]:
    state = tmp_path_factory.mktemp("operator")
    cp = ControlPlane(
        name=f"op-{uuid.uuid4().hex[:6]}",
        state_dir=state / "clusters" / "op",
        port=free_ports(1)[0],
        version="1.36.3",
    )
    try:
        cp.start()
        with contextlib.closing(kube_client(cp.kubeconfig_path)) as client:
            # The control plane's operator applies the CRD as it starts.
            wait_for("the CRD to be established", lambda: established(client))
            yield cp, client
    finally:
        cp.stop()


@pytest.fixture(scope="module")
def replicas(cluster, tmp_path_factory) -> Iterator[list[Replica]]:
    cp, _ = cluster
    logs = tmp_path_factory.mktemp("operator-logs")
    spare = Replica.start(cp.kubeconfig_path, logs / "spare.log", "spare")
    both = [Replica.of(cp), spare]
    try:
        yield both
    finally:
        spare.kill(signal.SIGTERM)
        for replica in both:
            print(f"--- operator {replica.identity} ---\n{replica.output()[-3000:]}")


def pool(client: Client) -> dict[str, Any]:
    return client.get(NodePoolCR, POOL).to_dict()  # type: ignore[attr-defined]


def nodes(client: Client) -> dict[str, Node]:
    return {n.metadata.name: n for n in client.list(Node, labels={"unkai.dev/node-pool": POOL})}


def ready(node: Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or ()))


def ready_nodes(client: Client, count: int) -> dict[str, Node]:
    found = nodes(client)
    return found if len(found) == count and all(map(ready, found.values())) else {}


def reasons(client: Client) -> list[str]:
    """The reasons of the Events posted on the pool, oldest first."""
    events = [
        e for e in client.list(Event, namespace="*")
        if e.involvedObject.kind == "NodePool" and e.involvedObject.name == POOL
    ]  # fmt: skip
    events.sort(key=lambda e: e.lastTimestamp or e.eventTime or e.metadata.creationTimestamp)
    return [e.reason for e in events]


def patch_pool(client: Client, spec: dict[str, Any]) -> None:
    client.patch(NodePoolCR, POOL, {"spec": spec}, patch_type=PatchType.MERGE)


def deployment(name: str, replicas: int, cpu: str) -> dict[str, Any]:
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
                            "name": "main",
                            # Never pulled: kwok plays the kubelet.
                            "image": "registry.unkai.invalid/app@sha256:" + "0" * 64,
                            "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}},
                        }
                    ],
                },
            },
        },
    }


def running_pods(client: Client, app: str) -> list[Pod]:
    return [
        p for p in client.list(Pod, namespace="default", labels={"app": app})
        if p.status.phase == "Running" and p.metadata.deletionTimestamp is None
    ]  # fmt: skip


def test_one_replica_holds_the_lease_and_a_new_pool_gets_its_size(cluster, replicas):
    _, client = cluster
    holder = wait_for(
        "a replica to hold the Lease",
        lambda: client.get(Lease, LEASE_NAME, namespace=LEASE_NAMESPACE).spec.holderIdentity,
        timeout=30,
    )  # fmt: skip
    assert holder in [r.identity for r in replicas]
    client.create(
        codecs.from_dict(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "NodePool",
                "metadata": {"name": POOL},
                "spec": {
                    "cluster": "op",
                    "size": 1,
                    "minSize": 1,
                    "maxSize": 3,
                    **SMALL,
                    "repairAfterSeconds": 5,
                    "scaleDownUnneededSeconds": 4,
                    "scaleDownDelayAfterAddSeconds": 4,
                    "scaleDownUtilizationPercent": 60,
                },
            }
        )
    )
    wait_for("one Ready node", lambda: ready_nodes(client, 1))
    status = wait_for("the pool's status", lambda: pool(client).get("status", {}).get("readyNodes"))
    assert status == 1 and pool(client)["status"]["targetSize"] == 1
    assert "NodesCreated" in reasons(client)
    # Only the holder acts; the other one waits.
    standby = next(r for r in replicas if r.identity != holder)
    assert "holds the Lease" not in standby.output()


def test_unschedulable_pods_scale_the_pool_up(cluster, replicas):
    _, client = cluster
    # Three pods of 1.1 CPUs on nodes of 2: one node each.
    client.create(codecs.from_dict(deployment("burst", 3, "1100m")))
    t0 = time.monotonic()
    wait_for("three pods running", lambda: len(running_pods(client, "burst")) == 3, timeout=120)
    print(f"scale-up reaction, pods pending to all running: {time.monotonic() - t0:.1f} s")
    assert len(nodes(client)) == 3
    assert pool(client)["status"]["targetSize"] == 3
    assert "ScaleUp" in reasons(client)
    assert pool(client)["status"]["lastScaleUp"]


def test_scale_down_empties_underused_nodes_and_never_breaks_a_budget(cluster, replicas):
    _, client = cluster
    client.create(
        codecs.from_dict(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "burst", "namespace": "default"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "burst"}}},
            }
        )
    )
    client.patch(
        Deployment, "burst", {"spec": {"replicas": 1}}, namespace="default",
        patch_type=PatchType.MERGE,
    )  # fmt: skip
    wait_for(
        "one burst pod", lambda: len(list(client.list(Pod, namespace="default"))) == 1, timeout=60
    )
    (survivor,) = running_pods(client, "burst")
    # The eviction API refuses the last pod of the budget: a drain says so and uncordons.
    wait_for("the budget to count", lambda: observe(client, POOL).pods[0].disruptable is False)
    refused = drain(client, survivor.spec.nodeName, observe(client, POOL).pods)
    assert refused and "PodDisruptionBudget" in refused
    assert not client.get(Node, survivor.spec.nodeName).spec.unschedulable
    # Every node is underused now (the survivor's at 55 %, under 60 %), and the survivor's
    # pod would fit on any other: only its budget keeps its node. The two empty ones go,
    # the guarded pod is never evicted.
    wait_for("one node left", lambda: len(nodes(client)) == 1, timeout=90)
    assert list(nodes(client)) == [survivor.spec.nodeName]
    (still,) = running_pods(client, "burst")
    assert still.metadata.uid == survivor.metadata.uid
    assert reasons(client).count("ScaleDown") == 2
    assert wait_for("target 1", lambda: pool(client)["status"]["targetSize"] == 1)


def test_a_node_that_stops_being_ready_is_replaced(cluster, replicas):
    _, client = cluster
    (name,) = nodes(client)
    before = client.get(Node, name).metadata.uid
    # Take the node away from kwok (its kubelet "dies"), and report it NotReady.
    client.patch(
        Node, name, [{"op": "remove", "path": "/metadata/annotations/"
                      + KWOK_NODE_ANNOTATION.replace("/", "~1")}],
        patch_type=PatchType.JSON,
    )  # fmt: skip
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    down = {"type": "Ready", "status": "False", "reason": "KubeletDown",
            "lastHeartbeatTime": now, "lastTransitionTime": now}  # fmt: skip
    client.patch(
        Node.Status, name, {"status": {"conditions": [down]}}, patch_type=PatchType.STRATEGIC
    )
    assert not ready(client.get(Node, name))
    t0 = time.monotonic()
    wait_for(
        "a new Ready node under the same name",
        lambda: (n := nodes(client).get(name)) is not None
        and n.metadata.uid != before and ready(n),
        timeout=120,
    )  # fmt: skip
    print(f"node repair, NotReady to a Ready replacement: {time.monotonic() - t0:.1f} s")
    assert "NodeRepair" in reasons(client)
    assert len(pool(client)["status"]["repairs"]) == 1


def test_status_reports_each_pool_and_the_operators_decisions(cluster, replicas):
    cp, _ = cluster
    wait_for(
        "the pool settled", lambda: cluster_status(cp.kubeconfig_path)["pools"][POOL]["settled"]
    )
    report = cluster_status(cp.kubeconfig_path)
    seen = report["pools"][POOL]
    assert (seen["size"], seen["min_size"], seen["max_size"], seen["target"]) == (1, 1, 3, 1)
    assert seen["ready"] == 1 and len(seen["nodes"]) == 1 and len(seen["repairs"]) == 1
    assert seen["last_scale_up"]
    decisions = [e["reason"] for e in report["events"]]
    assert {"ScaleUp", "ScaleDown", "NodeRepair"} <= set(decisions)


def test_the_standby_takes_over_from_a_killed_leader_and_keeps_the_memory(cluster, replicas):
    _, client = cluster
    holder = client.get(Lease, LEASE_NAME, namespace=LEASE_NAMESPACE).spec.holderIdentity
    leader = next(r for r in replicas if r.identity == holder)
    kept = pool(client)["status"]
    leader.kill()
    # A node deleted by hand is created again, by the standby once the Lease has expired.
    (name,) = nodes(client)
    client.delete(Node, name)
    t0 = time.monotonic()
    wait_for("the node back", lambda: ready_nodes(client, 1), timeout=60)
    print(f"take-over and re-creation after the leader was killed: {time.monotonic() - t0:.1f} s")
    new_holder = client.get(Lease, LEASE_NAME, namespace=LEASE_NAMESPACE).spec.holderIdentity
    assert new_holder != holder
    status = pool(client)["status"]
    # What the pool remembered survived the leader: nothing was repeated or forgotten.
    assert status["repairs"] == kept["repairs"]
    assert status["lastScaleUp"] == kept["lastScaleUp"]


def test_a_new_version_rolls_the_pool_and_no_budget_is_broken(cluster, replicas):
    _, client = cluster
    patch_pool(client, {"size": 2, "minSize": 2})
    wait_for("two Ready nodes", lambda: ready_nodes(client, 2))
    client.patch(
        Deployment, "burst", {"spec": {"replicas": 2}}, namespace="default",
        patch_type=PatchType.MERGE,
    )  # fmt: skip
    wait_for("two burst pods running", lambda: len(running_pods(client, "burst")) == 2)
    before = {n.metadata.name: n.metadata.labels[TEMPLATE_LABEL] for n in nodes(client).values()}
    # Sample, four times a second, the running pods (the budget keeps 1 of 2) and the nodes
    # (2, and 1 surge) all through the rollout.
    samples: list[tuple[int, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((len(running_pods(client, "burst")), len(nodes(client))))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.monotonic()
    try:
        patch_pool(client, {"version": "1.36.3-next"})
        wait_for(
            "every node of the new template",
            lambda: (found := ready_nodes(client, 2))
            and not set(before.values())
            & {n.metadata.labels[TEMPLATE_LABEL] for n in found.values()},
            timeout=240,
        )  # fmt: skip
        print(f"rollout of 2 nodes: {time.monotonic() - t0:.1f} s")
        wait_for("two burst pods running", lambda: len(running_pods(client, "burst")) == 2)
    finally:
        done.set()
        sampler.join()
    assert min(running for running, _ in samples) >= 1, samples
    assert max(count for _, count in samples) <= 3, samples
    assert {"UpgradeSurge", "UpgradeDrain"} <= set(reasons(client))
    assert pool(client)["status"]["updatedNodes"] == 2


def test_a_deleted_pool_takes_its_nodes_with_it(cluster, replicas):
    _, client = cluster
    client.delete(Deployment, "burst", namespace="default")
    client.delete(NodePoolCR, POOL)
    wait_for("the nodes gone", lambda: not nodes(client), timeout=60)

    def gone() -> bool:
        try:
            client.get(NodePoolCR, POOL)
        except ApiError as err:
            return err.status.code == 404
        return False

    wait_for("the pool gone", gone, timeout=30)


InstanceGroupCR = create_global_resource(GROUP, VERSION, "InstanceGroup", "instancegroups")


def test_the_api_server_serves_instance_groups_and_checks_them(cluster):
    _, client = cluster
    wait_for("its CRD", lambda: established(client, "instancegroups.unkai.dev"))
    slots = [
        {"name": f"web-{i}", "host": "localhost", "digest": "d", "inputs": {"name": f"web-{i}"}}
        for i in range(3)
    ]
    spec = {"environment": "unkai-op", "size": 2, "minSize": 1, "maxSize": 2, "slots": slots}

    def group(name: str, **changes: Any) -> Any:
        return codecs.from_dict({
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "InstanceGroup",
            "metadata": {"name": name}, "spec": {**spec, **changes},
        })  # fmt: skip

    created = client.create(group("web", healthCheck={"type": "tcp", "port": 80})).to_dict()
    try:
        # The schema's defaults are filled in; the rendered inputs are kept as they are.
        assert created["spec"]["maxSurge"] == 1 and created["spec"]["autoHealing"] is True
        assert created["spec"]["healthCheck"]["initialDelaySeconds"] == 300
        assert created["spec"]["slots"][2]["inputs"] == {"name": "web-2"}
    finally:
        client.delete(InstanceGroupCR, "web")
    refused = {
        "need a slot for every member up to maxSize": {"maxSize": 4},
        "need minSize <= size <= maxSize": {"minSize": 3},
        "a tcp or http health check needs a port": {"healthCheck": {"type": "http"}},
        "maxSurge and maxUnavailable cannot both be 0": {"maxSurge": 0},
    }
    for message, changes in refused.items():
        with pytest.raises(ApiError) as err:
            client.create(group("bad", **changes))
        assert err.value.status.code == 422 and message in (err.value.status.message or "")
