"""Benchmark: how long pods take to start on a VM node, p50 and p99.

Run:  .venv/bin/unkai up local && .venv/bin/python benchmarks/bench_pod_start.py [--pods 20]

Against the cluster (``--cluster``, default ``local``'s ``apps``) of this project, with a VM node:
``--pods`` pods of the ``api`` workload's image (already on the node: its Deployment runs
it, so no pull is timed) are created at once in a namespace of their own, and a watch
notes when each first reports Ready (its container started and its readiness probe
passed, run by the kubelet). A pod's start time is from its create call returning to
that moment, on this machine's clock. Prints one line per pod, then a JSON summary;
the namespace is deleted at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path

from lightkube import Client
from lightkube.models.core_v1 import (
    Container,
    ContainerPort,
    HTTPGetAction,
    PodSpec,
    Probe,
    ResourceRequirements,
    SecurityContext,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace, Pod

from unkai.drivers.kubernetes import kube_client

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (``share`` in 0..1)."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def pod(name: str, namespace: str, image: str) -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec=PodSpec(
            containers=[
                Container(
                    name="api",
                    image=image,
                    ports=[ContainerPort(name="http", containerPort=8080)],
                    readinessProbe=Probe(
                        httpGet=HTTPGetAction(path="/healthz", port="http"), periodSeconds=1
                    ),
                    resources=ResourceRequirements(
                        requests={"cpu": "10m", "memory": "16Mi"},
                        limits={"cpu": "100m", "memory": "64Mi"},
                    ),
                    securityContext=SecurityContext(
                        runAsNonRoot=True, runAsUser=10001, allowPrivilegeEscalation=False
                    ),
                )
            ]
        ),
    )


def ready(obj: Pod) -> bool:
    conditions = (obj.status.conditions if obj.status else None) or ()
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cluster", default="apps")
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    kubeconfig = ROOT / ".unkai" / "clusters" / args.cluster / "kubeconfig" / "admin.kubeconfig"
    client: Client = kube_client(kubeconfig)
    api = client.get(Deployment, "api", namespace="default")
    image = api.spec.template.spec.containers[0].image  # type: ignore[union-attr]
    namespace = "bench-" + uuid.uuid4().hex[:6]
    client.create(Namespace(metadata=ObjectMeta(name=namespace)))
    created: dict[str, float] = {}
    started: dict[str, float] = {}
    try:
        for i in range(args.pods):
            name = f"start-{i:02d}"
            client.create(pod(name, namespace, str(image)))
            created[name] = time.monotonic()
        deadline = time.monotonic() + args.timeout
        while len(started) < len(created) and time.monotonic() < deadline:
            for obj in client.list(Pod, namespace=namespace):
                name = obj.metadata.name  # type: ignore[union-attr]
                if name not in started and ready(obj):
                    started[name] = time.monotonic()
                    print(f"{name}: {started[name] - created[name]:.1f} s", flush=True)
            time.sleep(0.25)
    finally:
        client.delete(Namespace, namespace)
        client.close()
    if len(started) < len(created):
        raise SystemExit(f"{len(created) - len(started)} pods not Ready in {args.timeout:.0f} s")
    seconds = [started[n] - created[n] for n in created]
    print(
        json.dumps(
            {
                "pods": args.pods,
                "image": image,
                "p50_s": round(statistics.median(seconds), 1),
                "p99_s": round(percentile(seconds, 0.99), 1),
                "max_s": round(max(seconds), 1),
                "all_ready_s": round(max(started.values()) - min(created.values()), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
