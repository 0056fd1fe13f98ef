"""Benchmark of the operator: how fast a node pool gets its nodes, scales out, is repaired
and rolls to a new version, on a real control plane (its own operator, default rounds).

Run:  .venv/bin/python benchmarks/bench_operator.py [--nodes 10]

Phases, each timed from the change to the state it waits for:

- create: a NodePool of ``--nodes`` nodes applied → every node Ready, status settled;
- scale-out: a Deployment whose pods need ``--nodes`` more nodes → every pod running
  (the pool's ``maxSize`` is twice ``--nodes``);
- repair: one node taken from kwok and reported NotReady → a Ready node under its name
  (``repairAfterSeconds`` 10);
- upgrade: a new ``version`` → every node of the new template and Ready (surge 1);

Prints one line per phase and a JSON summary. The control plane is stopped and its state
deleted at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import PatchType

from unkai.drivers.kubernetes import ControlPlane, NodePoolObject, kube_client
from unkai.drivers.kubernetes._plan import KWOK_NODE_ANNOTATION
from unkai.drivers.kubernetes._process import free_ports
from unkai.operator._reconcile import TEMPLATE_LABEL

POOL = "bench"


def wait(what: str, check: Callable[[], Any], timeout: float = 900) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - start


def nodes(client: Client) -> list[Node]:
    return list(client.list(Node, labels={"unkai.dev/node-pool": POOL}))


def ready(node: Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or ())


def settled(client: Client) -> bool:
    status = client.get(NodePoolObject, POOL).to_dict().get("status") or {}
    return status.get("readyNodes") == status.get("targetSize") == len(status.get("nodes") or [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10)
    args = parser.parse_args()
    n = args.nodes
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as state:
        cp = ControlPlane(
            name="bench-op", state_dir=Path(state) / "bench-op", port=free_ports(1)[0]
        )
        try:
            started = time.monotonic()
            cp.start()
            results["control_plane_start_s"] = round(time.monotonic() - started, 1)
            client = kube_client(cp.kubeconfig_path)
            pool = {
                "apiVersion": "unkai.dev/v1alpha1",
                "kind": "NodePool",
                "metadata": {"name": POOL},
                "spec": {
                    "cluster": "bench-op", "size": n, "minSize": n, "maxSize": 2 * n,
                    "cpu": "2", "memory": "4Gi", "version": "1.36.3",
                    "repairAfterSeconds": 10,
                },
            }  # fmt: skip
            client.create(codecs.from_dict(pool))

            def created() -> bool:
                found = nodes(client)
                return len(found) == n and all(map(ready, found)) and settled(client)

            results["create_s"] = wait(f"{n} Ready nodes", created)
            print(f"create {n} nodes: {results['create_s']:.1f} s", flush=True)

            burst = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "burst", "namespace": "default"},
                "spec": {
                    "replicas": 2 * n,
                    "selector": {"matchLabels": {"app": "burst"}},
                    "template": {
                        "metadata": {"labels": {"app": "burst"}},
                        "spec": {"containers": [{
                            "name": "main", "image": "registry.unkai.invalid/app:1",
                            "resources": {"requests": {"cpu": "1500m", "memory": "256Mi"}},
                        }]},
                    },
                },
            }  # fmt: skip
            client.create(codecs.from_dict(burst))

            def all_running() -> bool:
                pods = client.list(Pod, namespace="default", labels={"app": "burst"})
                return sum(p.status.phase == "Running" for p in pods) == 2 * n

            results["scale_out_s"] = wait(f"{2 * n} pods running", all_running)
            print(f"scale-out to {2 * n} nodes: {results['scale_out_s']:.1f} s", flush=True)
            client.delete(Deployment, "burst", namespace="default")
            client.patch(
                NodePoolObject, POOL, {"spec": {"size": n, "maxSize": n}},
                patch_type=PatchType.MERGE,
            )  # fmt: skip
            wait(f"back to {n} nodes", lambda: len(nodes(client)) == n and settled(client))

            victim = sorted(x.metadata.name for x in nodes(client))[0]
            uid = client.get(Node, victim).metadata.uid
            annotation = KWOK_NODE_ANNOTATION.replace("/", "~1")
            client.patch(
                Node, victim, [{"op": "remove", "path": f"/metadata/annotations/{annotation}"}],
                patch_type=PatchType.JSON,
            )  # fmt: skip
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            down = {"type": "Ready", "status": "False", "reason": "KubeletDown",
                    "lastHeartbeatTime": now, "lastTransitionTime": now}  # fmt: skip
            client.patch(
                Node.Status, victim, {"status": {"conditions": [down]}},
                patch_type=PatchType.STRATEGIC,
            )  # fmt: skip

            def repaired() -> bool:
                found = {x.metadata.name: x for x in nodes(client)}
                node = found.get(victim)
                return node is not None and node.metadata.uid != uid and ready(node)

            results["repair_s"] = wait("the repaired node", repaired)
            print(f"repair (10 s delay included): {results['repair_s']:.1f} s", flush=True)

            old = {x.metadata.labels[TEMPLATE_LABEL] for x in nodes(client)}
            client.patch(
                NodePoolObject, POOL, {"spec": {"version": "1.36.3-next"}},
                patch_type=PatchType.MERGE,
            )  # fmt: skip

            def upgraded() -> bool:
                found = nodes(client)
                return (
                    len(found) == n
                    and all(map(ready, found))
                    and not old & {x.metadata.labels[TEMPLATE_LABEL] for x in found}
                )

            results["upgrade_s"] = wait(f"{n} upgraded nodes", upgraded)
            print(f"upgrade of {n} nodes (surge 1): {results['upgrade_s']:.1f} s", flush=True)
            client.close()
        finally:
            cp.stop()
    print(json.dumps({k: round(v, 1) for k, v in results.items()}))


if __name__ == "__main__":
    main()
