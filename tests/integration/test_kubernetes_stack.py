"""Kubernetes through the real engine: a cluster, node pools, images and workloads.

One stack of ``tests/integration/stacks/kubernetes`` (the local environment's cluster,
pool, ``api`` and ``worker`` images and workloads, no VMs) under a cluster name, port,
state folder and image repositories of its own, so a deployed ``local`` is never touched.
The steps build on each other, so they are one test: up, no-change preview, drift by
hand seen by refresh, scaling a pool and a workload (only those change), no secret in
state, rendered files or output, and destroy leaving no process or port behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node, Pod, Secret
from pulumi import automation as auto

from unkai.cli._workspace import select_stack
from unkai.drivers import docker as d
from unkai.drivers.kubernetes import ControlPlane, kube_client
from unkai.drivers.kubernetes._process import free_ports, is_running, listening
from unkai.toolchain import kubernetes_version, state_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STACK = Path(__file__).resolve().parent / "stacks" / "kubernetes"
BIN = Path(sys.executable).parent
SECRET = "it-" + uuid.uuid4().hex + "-never-on-disk"


class Run:
    """The stack under test and everything the engine printed."""

    def __init__(self, stack: auto.Stack, name: str, state_root: Path, port: int) -> None:
        self.stack, self.name, self.port = stack, name, port
        self.control_plane = ControlPlane(
            name=name, state_dir=state_root / name, port=port, version=kubernetes_version()
        )
        self.output: list[str] = []

    def up(self) -> auto.UpResult:
        return self.stack.up(on_output=self.output.append)

    def preview_steps(self) -> dict[str, str]:
        """URN type and name → operation of each resource the preview would change."""
        steps: dict[str, str] = {}

        def on_event(event: auto.EngineEvent) -> None:
            pre = event.resource_pre_event
            if pre is not None and pre.metadata.op != auto.OpType.SAME:
                urn = pre.metadata.urn
                steps[f"{pre.metadata.type}::{urn.rsplit('::', 1)[-1]}"] = str(pre.metadata.op)

        self.stack.preview(on_output=self.output.append, on_event=on_event)
        return steps


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    name = "it-" + uuid.uuid4().hex[:8]
    state_root = tmp_path_factory.mktemp("clusters")
    port = free_ports(1)[0]
    stack = select_stack(STACK, name)
    stack.set_all_config(
        {
            "cluster": auto.ConfigValue(name),
            "port": auto.ConfigValue(str(port)),
            "stateRoot": auto.ConfigValue(str(state_root)),
            "prefix": auto.ConfigValue(f"unkai-{name}-"),
            "db-password": auto.ConfigValue(SECRET, secret=True),
        }
    )
    it = Run(stack, name, state_root, port)
    try:
        yield it
    finally:
        try:
            stack.destroy(on_output=it.output.append)
            stack.workspace.remove_stack(name)
        finally:
            # A no-op after a clean destroy; after a failed one, its processes go anyway.
            (STACK / f"Pulumi.{name}.yaml").unlink(missing_ok=True)
            it.control_plane.remove()


def available(client, name: str) -> int:
    dep = client.get(Deployment, name, namespace="default")
    return (dep.status.availableReplicas or 0) if dep.status else 0


def test_up_no_change_drift_scale_secrets_destroy(run, tmp_path):
    start = time.monotonic()
    up = run.up()
    print(f"\nup (cold control plane, 2 images, 2 workloads): {time.monotonic() - start:.1f} s")
    assert up.summary.resource_changes == {"create": 7}
    out = {k: v.value for k, v in up.outputs.items()}
    assert out["clusters"][run.name]["pools"] == {"default": 1}
    assert {w: (s["available"], s["replicas"]) for w, s in out["workloads"].items()} == {
        "api": (1, 1),
        "worker": (1, 1),
    }
    kubeconfig = Path(out["kubeconfig"])
    client = kube_client(kubeconfig)
    try:
        # The Deployments run on the simulated nodes, their pods Running per kwok.
        assert [n.metadata.name for n in client.list(Node)] == ["default-0"]
        pods = list(client.list(Pod, namespace="default"))
        assert sorted(p.metadata.labels["app.kubernetes.io/name"] for p in pods) == [
            "api",
            "worker",
        ]
        assert {(p.status.phase, p.spec.nodeName) for p in pods} == {("Running", "default-0")}
        secret = client.get(Secret, "api", namespace="default")
        assert secret.data is not None and set(secret.data) == {"DB_PASSWORD"}
        live = client.get(Deployment, "api", namespace="default")
        assert (
            live.spec.template.spec.containers[0].image
            == out["image_refs"][f"unkai-{run.name}-api"]
        )

        # The applied manifests are unkai render's files, but for the image reference.
        rendered = tmp_path / "rendered"
        proc = subprocess.run(
            [str(BIN / "unkai"), "render", "local", "--out", str(rendered)],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for workload in ("api", "worker"):
            files = sorted((rendered / "kubernetes" / "apps" / workload).iterdir())
            ours = out["manifests"][workload]
            assert [f.name for f in files] == sorted(ours)
            for file in files:
                text = file.read_text()
                local_ref = re.search(r'image: "?([^"\s]+)', text)
                if local_ref is not None:
                    text = text.replace(
                        local_ref[1], out["image_refs"][f"unkai-{run.name}-{workload}"]
                    )
                assert ours[file.name] == text, file

        # A second up changes nothing.
        assert run.stack.preview(on_output=run.output.append).change_summary == {"same": 7}
        again = run.up()
        assert again.summary.resource_changes == {"same": 7}

        # A replica count changed by hand is drift: refresh sees it, up puts it back
        # (worker's: api's are its HPA's).
        client.patch(Deployment, "worker", {"spec": {"replicas": 3}}, namespace="default")
        run.stack.refresh(on_output=run.output.append)
        assert run.preview_steps() == {"unkai:kubernetes:Workload::it-worker": "OpType.UPDATE"}
        run.up()
        assert client.get(Deployment, "worker", namespace="default").spec.replicas == 1

        # A field unkai declares, changed by another manager (the container's image):
        # refresh finds it with a server-side apply's dry run, up sets it back.
        declared_image = client.get(Deployment, "api", namespace="default").spec.template.spec
        declared_image = declared_image.containers[0].image
        edit = {"spec": {"template": {"spec": {"containers": [
            {"name": "api", "image": "example.invalid/edited:1"}]}}}}  # fmt: skip
        client.patch(Deployment, "api", edit, namespace="default", field_manager="by-hand")
        run.stack.refresh(on_output=run.output.append)
        resources = run.stack.export_stack().deployment["resources"]
        (state,) = [r for r in resources if r["type"] == "unkai:kubernetes:Workload"
                    and r["urn"].endswith("::it-api")]  # fmt: skip
        assert state["outputs"]["drift"] == [
            "Deployment/api: spec.template.spec.containers[0].image"
        ], state["outputs"]["drift"]
        assert run.preview_steps() == {"unkai:kubernetes:Workload::it-api": "OpType.UPDATE"}
        run.up()
        live = client.get(Deployment, "api", namespace="default").spec.template.spec
        assert live.containers[0].image == declared_image
        run.stack.refresh(on_output=run.output.append)
        assert run.preview_steps() == {}

        # Scaling the pool and the worker workload: only those two resources change.
        run.stack.set_config("poolSize", auto.ConfigValue("2"))
        run.stack.set_config("workerReplicas", auto.ConfigValue("2"))
        assert run.preview_steps() == {
            f"unkai:kubernetes:NodePool::it-{run.name}-default": "OpType.UPDATE",
            "unkai:kubernetes:Workload::it-worker": "OpType.UPDATE",
        }
        start = time.monotonic()
        scaled = run.up()
        print(f"scale pool 1→2 and worker 1→2: {time.monotonic() - start:.1f} s")
        assert scaled.summary.resource_changes == {"same": 5, "update": 2}
        assert [n.metadata.name for n in client.list(Node)] == ["default-0", "default-1"]
        assert available(client, "worker") == 2
        assert scaled.outputs["clusters"].value[run.name]["pools"] == {"default": 2}

        # A node deleted by hand comes back by itself (the cluster's operator keeps the
        # pool), and is no change for Pulumi: it owns the pool's spec, not its nodes.
        client.delete(Node, "default-1")
        deadline = time.monotonic() + 60
        while len(list(client.list(Node))) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [n.metadata.name for n in client.list(Node)] == ["default-0", "default-1"]
        run.stack.refresh(on_output=run.output.append)
        assert run.preview_steps() == {}
        # The API server killed while a workload is applied: the up fails naming the
        # workload and the fault, and once the API server runs again the next up
        # converges. The nodes are cordoned first, so that the new replica stays Pending
        # and the apply is surely still waiting for it when the API server goes.
        for node in ("default-0", "default-1"):
            client.patch(Node, node, {"spec": {"unschedulable": True}})
        run.stack.set_config("workerReplicas", auto.ConfigValue("3"))
        apiserver = next(c.pid for c in run.control_plane.status() if c.name == "kube-apiserver")
        assert apiserver is not None
        failed: list[auto.CommandError] = []

        def up_and_keep_error() -> None:
            try:
                run.up()
            except auto.CommandError as err:
                failed.append(err)

        upping = threading.Thread(target=up_and_keep_error)
        upping.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any(
            "Deployment/worker: 2/3 replicas available" in line for line in run.output
        ):
            time.sleep(0.05)
        os.kill(apiserver, signal.SIGKILL)
        upping.join(600)
        assert failed, "the up went through while its API server was killed"
        said = str(failed[0])
        assert "it-worker" in said and "the API server did not answer" in said, said[-3000:]
        assert "Traceback" not in said and "Unexpected <class" not in said
        run.control_plane.start()  # the fault is gone
        for node in ("default-0", "default-1"):
            client.patch(Node, node, {"spec": {"unschedulable": False}})
        recovered = run.up()
        assert recovered.summary.resource_changes == {"same": 6, "update": 1}  # worker
        assert available(client, "worker") == 3
        assert run.stack.preview(on_output=run.output.append).change_summary == {"same": 7}

        pids = {s.name: s.pid for s in run.control_plane.status()}
        ports = [s.port for s in run.control_plane.status()]
    finally:
        client.close()
    assert all(pids.values()), pids

    # The secret is nowhere: raw state files (history and backups too), rendered files,
    # anything the engine printed, the control plane's files (its logs, and etcd's data,
    # where the Secret is sealed with the cluster's key).
    state_files = [p for p in state_dir(ROOT).rglob("*") if p.is_file()]
    assert any(run.name in p.name for p in state_files)
    for path in (*state_files, *rendered.rglob("*")):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in "\n".join(run.output)
    sealed = []
    for path in run.control_plane.state_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, path
            sealed += [path] if b"k8s:enc:secretbox:v1:" in data else []
    assert any(run.control_plane.state_dir / "etcd" in p.parents for p in sealed), sealed

    # Destroy: the workloads and nodes first (while the API server can say so), then the
    # control plane: its processes, ports and state are gone.
    prefix = f"urn:pulumi:{run.name}::unkai-it-kubernetes::unkai:kubernetes:"
    start = time.monotonic()
    run.stack.destroy(
        on_output=run.output.append,
        target=[
            f"{prefix}Workload::it-api",
            f"{prefix}Workload::it-worker",
            f"{prefix}NodePool::it-{run.name}-default",
        ],
    )
    client = kube_client(kubeconfig)
    try:
        assert list(client.list(Deployment, namespace="default")) == []
        assert (
            list(client.list(Secret, namespace="default", labels={"app.kubernetes.io/name": "api"}))
            == []
        )
        assert list(client.list(Node)) == []
    finally:
        client.close()
    run.stack.destroy(on_output=run.output.append)
    print(f"destroy: {time.monotonic() - start:.1f} s")
    for component, pid in pids.items():
        assert not is_running(pid), component
    for port in ports:
        assert not listening(port), port
    assert not run.control_plane.state_dir.exists()
    engine = d.connect()
    try:
        assert d.image_state(engine, out["image_refs"][f"unkai-{run.name}-api"]) is None
    finally:
        engine.close()
