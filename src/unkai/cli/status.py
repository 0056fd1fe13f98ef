"""``unkai status <env>``: what the operator keeps, as it is now.

For each cluster of the environment: each node pool's declared size and bounds, the size
the operator aims for (the autoscaler may have moved it), its nodes and how many are
Ready, its last scale-up and recent repairs; each instance group it keeps (on the
environment's management cluster) with its members, their hosts, template digests,
health and CPU use; then the latest Events the operator posted (its decisions); then the
cluster's nodes (which are simulated) and its workloads, each with its pods and how many
are Ready. It reads the clusters only; nothing changes. ``--json`` gives the same for
scripts.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from unkai.cli._workspace import Root, resolve_root
from unkai.components import clusters_root
from unkai.drivers.kubernetes import (
    instance_group_events,
    list_instance_groups,
    list_node_pools,
    list_nodes,
    list_workloads,
    node_pool_events,
)
from unkai.environments import load_environment
from unkai.errors import DriverError

__all__ = ["cluster_status", "status"]


def cluster_status(kubeconfig: Path) -> dict[str, Any]:
    """One cluster's pools, instance groups, recent Events, nodes and workloads, as plain data.

    Returns ``{"reachable": False, "error": …}`` when the cluster does not answer, and
    ``{"deployed": False}`` when it has no kubeconfig (it was never brought up).
    """
    if not kubeconfig.is_file():
        return {"deployed": False}
    try:
        pools = list_node_pools(kubeconfig=kubeconfig)
        groups = list_instance_groups(kubeconfig=kubeconfig)
        events = [
            *node_pool_events(kubeconfig=kubeconfig, limit=10),
            *instance_group_events(kubeconfig=kubeconfig, limit=10),
        ]
        nodes = list_nodes(kubeconfig=kubeconfig)
        workloads = list_workloads(kubeconfig=kubeconfig)
    except DriverError as err:
        return {"deployed": True, "reachable": False, "error": str(err)}
    return {
        "deployed": True,
        "reachable": True,
        "pools": {
            name: {
                "size": found.spec.get("size"),
                "min_size": found.spec.get("minSize"),
                "max_size": found.spec.get("maxSize"),
                "target": found.target,
                "nodes": list(found.nodes),
                "ready": found.ready,
                "settled": found.settled,
                "last_scale_up": found.last_scale_up,
                "repairs": list(found.repairs),
            }
            for name, found in sorted(pools.items())
        },
        "groups": {
            name: {
                "size": found.spec.get("size"),
                "min_size": found.spec.get("minSize"),
                "max_size": found.spec.get("maxSize"),
                "target": found.target,
                "healthy": found.healthy,
                "updated": found.updated,
                "settled": found.settled,
                "members": [asdict(m) for m in found.members],
                "repairs": list(found.repairs),
            }
            for name, found in sorted(groups.items())
        },
        "events": [asdict(e) for e in sorted(events, key=lambda e: e.time)[-10:]],
        "nodes": [asdict(n) for n in nodes],
        "workloads": [asdict(w) for w in workloads],
    }


def status(
    env: Annotated[str, typer.Argument(help="The environment.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    root: Root = None,
) -> None:
    """Show what the operator keeps: node pools and instance groups, their health and decisions."""
    project = resolve_root(root)
    environment = load_environment(env, root=project)
    report = {
        name: cluster_status(clusters_root(project) / name / "kubeconfig" / "admin.kubeconfig")
        for name in sorted(environment.clusters)
    }
    if as_json:
        typer.echo(json.dumps({"environment": env, "clusters": report}, indent=2))
        return
    console = Console(highlight=False)
    if not report:
        console.print(f"{env} has no clusters: nothing is kept by the operator")
        return
    for name, cluster in report.items():
        if not cluster["deployed"]:
            console.print(f"cluster {name}: not deployed (run unkai up {env})")
            continue
        if not cluster["reachable"]:
            console.print(f"cluster {name}: not answering: {escape(cluster['error'])}")
            continue
        table = Table(title=f"cluster {name}: node pools", title_justify="left")
        for column in ("pool", "size", "bounds", "target", "Ready", "nodes", "last scale-up",
                       "repairs"):  # fmt: skip
            table.add_column(column)
        for pool, seen in cluster["pools"].items():
            table.add_row(
                pool,
                str(seen["size"]),
                f"{seen['min_size']}..{seen['max_size']}",
                str(seen["target"]) if seen["target"] is not None else "(not yet)",
                f"{seen['ready']}/{len(seen['nodes'])}"
                + ("" if seen["settled"] else " (settling)"),
                ", ".join(seen["nodes"]),
                seen["last_scale_up"] or "never",
                str(len(seen["repairs"])),
            )
        console.print(table)
        _show_groups(console, name, cluster["groups"])
        if cluster["events"]:
            events = Table(title=f"cluster {name}: latest decisions", title_justify="left")
            for column in ("time", "pool or group", "reason", "message"):
                events.add_column(column)
            for event in cluster["events"]:
                events.add_row(
                    event["time"],
                    event["pool"],
                    event["reason"] + (f" (x{event['count']})" if event["count"] > 1 else ""),
                    escape(event["message"]),
                )
            console.print(events)
        _show_nodes(console, name, cluster["nodes"])
        _show_workloads(console, name, cluster["workloads"])


def _show_nodes(console: Console, cluster: str, nodes: list[dict[str, Any]]) -> None:
    """A table of the cluster's nodes: pool, simulated or real, Ready."""
    table = Table(title=f"cluster {cluster}: nodes", title_justify="left")
    for column in ("node", "pool", "kind", "Ready"):
        table.add_column(column)
    for node in nodes:
        table.add_row(
            node["name"],
            node["pool"] or "-",
            "simulated (kwok)" if node["simulated"] else "real",
            "yes" if node["ready"] else "no",
        )
    console.print(table if nodes else f"cluster {cluster}: no node")


def _show_workloads(console: Console, cluster: str, workloads: list[dict[str, Any]]) -> None:
    """A table of the cluster's workloads, a row per pod."""
    if not workloads:
        console.print(f"cluster {cluster}: no workload")
        return
    table = Table(title=f"cluster {cluster}: workloads", title_justify="left")
    for column in ("workload", "namespace", "Ready", "updated", "pod", "node", "phase"):
        table.add_column(column)
    for workload in workloads:
        head = [
            workload["name"],
            workload["namespace"],
            f"{workload['ready']}/{workload['replicas']}",
            str(workload["updated"]),
        ]
        for pod in workload["pods"] or [{}]:
            ready = " (not Ready)" if pod and not pod["ready"] else ""
            table.add_row(
                *head, pod.get("name", "(none)"), pod.get("node", ""), pod.get("phase", "") + ready
            )
            head = [""] * len(head)
    console.print(table)


def _show_groups(console: Console, cluster: str, groups: dict[str, Any]) -> None:
    """A table of the instance groups the cluster's operator keeps, a row per member."""
    if not groups:
        return
    table = Table(title=f"cluster {cluster}: instance groups", title_justify="left")
    for column in ("group", "size", "bounds", "target", "healthy", "updated", "member",
                   "host", "phase", "template", "CPU"):  # fmt: skip
        table.add_column(column)
    for group, seen in groups.items():
        settling = "" if seen["settled"] else " (settling)"
        head = [
            group,
            str(seen["size"]),
            f"{seen['min_size']}..{seen['max_size']}",
            str(seen["target"]) if seen["target"] is not None else "(not yet)",
            f"{seen['healthy']}{settling}",
            str(seen["updated"]),
        ]
        for member in seen["members"] or [{}]:
            cpu = member.get("cpu_percent")
            table.add_row(
                *head,
                member.get("name", "(none)"),
                member.get("host", ""),
                member.get("phase", ""),
                member.get("digest", ""),
                f"{cpu} %" if cpu is not None else "",
            )
            head = [""] * len(head)
    console.print(table)
