"""Benchmark of the local control plane: cold start, 1,000 KWOK nodes, 10,000 pods.

Run:  .venv/bin/python benchmarks/bench_control_plane.py [--nodes 1000] [--pods 10000]

Prints one line per phase and a JSON summary at the end. Every wait is bounded; the
control plane is stopped and its state folder deleted at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import tempfile
import time
from pathlib import Path

from lightkube import codecs
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod

from unkai.drivers.kubernetes import (
    ControlPlane,
    FakeNodePool,
    create_fake_nodes,
    kube_client,
    wait_nodes_ready,
)
from unkai.drivers.kubernetes._process import free_ports
from unkai.model import machine_type


def deployment(replicas: int) -> dict:
    labels = {"app": "bench"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.unkai.invalid/app:1",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ]
                },
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--machine-type", default="n2-standard-4")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per phase")
    args = parser.parse_args()
    # `kill` (SIGTERM) runs the finally below, which stops the control plane.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results: dict[str, object] = {"nodes": args.nodes, "pods": args.pods}

    def note(key: str, value: object) -> None:
        results[key] = value
        print(f"{key}: {value}", flush=True)

    with tempfile.TemporaryDirectory(prefix="unkai-bench-") as tmp:
        cp = ControlPlane(name="bench", state_dir=Path(tmp) / "bench", port=free_ports(1)[0])
        marks: dict[str, float] = {}
        t0 = time.monotonic()
        try:
            cp.start(say=lambda line: marks.setdefault(line.split()[1], time.monotonic() - t0))
            note("cold_start_s", round(time.monotonic() - t0, 1))
            note("component_started_at_s", {k: round(v, 1) for k, v in marks.items()})

            shape = machine_type(args.machine_type)
            pool = FakeNodePool(
                name="bench",
                size=args.nodes,
                cpu=str(shape.cpus),
                memory=f"{shape.memory_mb}Mi",
                machine_type=shape.name,
            )
            t = time.monotonic()
            create_fake_nodes(kubeconfig=cp.kubeconfig_path, pool=pool)
            note("nodes_created_s", round(time.monotonic() - t, 1))
            wait_nodes_ready(
                kubeconfig=cp.kubeconfig_path,
                pool="bench",
                count=args.nodes,
                timeout=args.timeout,
            )
            note("nodes_ready_s", round(time.monotonic() - t, 1))

            client = kube_client(cp.kubeconfig_path, timeout=300)
            t = time.monotonic()
            client.create(codecs.from_dict(deployment(args.pods)))
            deadline = t + args.timeout
            available = 0
            last = 0.0
            while time.monotonic() < deadline:
                dep = client.get(Deployment, "bench", namespace="default")
                available = (dep.status.availableReplicas or 0) if dep.status else 0
                if available >= args.pods:
                    break
                if time.monotonic() - last > 30:
                    last = time.monotonic()
                    print(f"  {time.monotonic() - t:6.0f} s: {available} available", flush=True)
                time.sleep(2)
            note("pods_available", available)
            note("pods_available_s", round(time.monotonic() - t, 1))

            per_node: collections.Counter[str] = collections.Counter()
            phases: collections.Counter[str] = collections.Counter()
            for pod in client.list(
                Pod, namespace="default", labels={"app": "bench"}, chunk_size=2000
            ):
                phases[pod.status.phase if pod.status else "?"] += 1
                if pod.spec and pod.spec.nodeName:
                    per_node[pod.spec.nodeName] += 1
            note("pod_phases", dict(phases))
            note("pods_scheduled", sum(per_node.values()))
            note("nodes_used", len(per_node))
            if per_node:
                note("pods_per_node_min_max", [min(per_node.values()), max(per_node.values())])
        finally:
            t = time.monotonic()
            cp.stop()
            note("stop_s", round(time.monotonic() - t, 1))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
