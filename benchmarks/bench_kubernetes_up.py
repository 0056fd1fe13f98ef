"""Benchmark of ``up`` for 10 workloads on a local cluster, through the real engine.

Run:  .venv/bin/python benchmarks/bench_kubernetes_up.py [--workloads 10]

Uses the stack of ``tests/integration/stacks/kubernetes`` (the local environment's
cluster, pool and images, ``api``, ``worker`` and copies of ``worker``) under a cluster
name, port and image repositories of its own. Phases: a cold ``up`` (control plane
start, node pool, images from the layer cache, every workload); the workloads alone
destroyed and created again by ``up`` on the running cluster (the time of ``up`` for N
workloads); a no-change ``up``; ``destroy``. Prints one line per phase and a JSON summary.
The stack is destroyed and removed at the end, whatever happens. The control plane's
cold start alone is measured by ``benchmarks/bench_control_plane.py``.
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
import uuid
from pathlib import Path

from pulumi import automation as auto

from unkai.cli._workspace import select_stack
from unkai.drivers.kubernetes._process import free_ports

STACK = Path(__file__).resolve().parents[1] / "tests" / "integration" / "stacks" / "kubernetes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workloads", type=int, default=10, help="workloads in all (>= 2)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    name = "bench-" + uuid.uuid4().hex[:8]
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="unkai-bench-") as state_root:
        stack = select_stack(STACK, name)
        stack.set_all_config(
            {
                "cluster": auto.ConfigValue(name),
                "port": auto.ConfigValue(str(free_ports(1)[0])),
                "stateRoot": auto.ConfigValue(state_root),
                "prefix": auto.ConfigValue(f"unkai-{name}-"),
                "copies": auto.ConfigValue(str(args.workloads - 2)),
                "db-password": auto.ConfigValue(uuid.uuid4().hex, secret=True),
            }
        )

        def phase(label: str, run) -> None:  # type: ignore[no-untyped-def]
            start = time.monotonic()
            result = run()
            results[label] = round(time.monotonic() - start, 1)
            summary = getattr(getattr(result, "summary", None), "resource_changes", None)
            print(f"{label}: {results[label]:.1f} s {summary or ''}", flush=True)

        try:
            phase("cold_up_s", stack.up)
            urns = [
                r["urn"]
                for r in stack.export_stack().deployment["resources"]
                if r["type"] == "unkai:kubernetes:Workload"
            ]
            assert len(urns) == args.workloads, urns
            phase("destroy_workloads_s", lambda: stack.destroy(target=urns))
            phase(f"up_{args.workloads}_workloads_s", stack.up)
            phase("no_change_up_s", stack.up)
            phase("destroy_s", stack.destroy)
        finally:
            stack.destroy()
            stack.workspace.remove_stack(name)
            (STACK / f"Pulumi.{name}.yaml").unlink(missing_ok=True)
    print(json.dumps({"workloads": args.workloads, **results}))


if __name__ == "__main__":
    main()
