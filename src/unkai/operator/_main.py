"""The operator process: a kopf operator that acts only while it holds the Lease.

``python -m unkai.operator --kubeconfig FILE [--health-port PORT]`` runs until SIGTERM or
SIGINT. It answers ``ok`` on ``http://127.0.0.1:PORT/healthz`` from the moment it runs
(leading or on standby), puts its CustomResourceDefinitions on the cluster (server-side
apply: the same bytes are no change), waits for the Lease (:mod:`unkai.operator._lease`),
then runs kopf with the node-pool timer below and renews the Lease every third of its
duration; a renewal that fails stops kopf at once and the process goes back to waiting.
Nothing lives in the process: each round reads the pool's object and its nodes, and
writes what it keeps into the object's status, so a restarted (or another) replica
carries on where the last one stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import kopf
import yaml
from aiohttp import web
from lightkube import Client, codecs
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from unkai.drivers.kubernetes import (
    SECRETS_NAMESPACE,
    InstanceGroupObject,
    NodePoolObject,
    kube_client,
    read_group_secret,
)
from unkai.drivers.kubernetes._nodes import POOL_LABEL
from unkai.errors import DriverError
from unkai.operator import _members as members
from unkai.operator import _vm_pools as vm_pools
from unkai.operator._crds import (
    GROUP,
    INSTANCE_GROUPS,
    NODE_POOLS,
    VERSION,
    instance_group_crd,
    node_pool_crd,
)
from unkai.operator._groups import decide as decide_group
from unkai.operator._lease import LeaderLease
from unkai.operator._pools import decide
from unkai.operator._reconcile import act, memory_of, observe, pool_spec, status_of

log = logging.getLogger("unkai.operator")


def _connection(kubeconfig: Path) -> kopf.ConnectionInfo:
    """The credentials kopf needs, from one of unkai's kubeconfigs (certificates embedded)."""
    doc = yaml.safe_load(kubeconfig.read_text())
    contexts = {c["name"]: c["context"] for c in doc["contexts"]}
    context = contexts[doc["current-context"]]
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in doc["users"] if u["name"] == context["user"])
    return kopf.ConnectionInfo(
        server=cluster["server"],
        ca_data=base64.b64decode(cluster["certificate-authority-data"]),
        certificate_data=base64.b64decode(user["client-certificate-data"]),
        private_key_data=base64.b64decode(user["client-key-data"]),
        default_namespace="default",
    )


def registry(kubeconfig: Path, *, interval: float) -> kopf.OperatorRegistry:
    """The handlers: node pools and instance groups reconciled every ``interval`` seconds."""
    handlers = kopf.OperatorRegistry()

    @kopf.on.startup(registry=handlers)
    def _configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Only the decisions' own Events (and warnings) are posted, not every log line.
        settings.posting.level = logging.WARNING
        settings.persistence.finalizer = "unkai.dev/operator"
        settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="unkai.dev", key="last-handled"
        )
        settings.watching.server_timeout = 60

    @kopf.on.login(registry=handlers)
    def _login(**_: Any) -> kopf.ConnectionInfo:
        return _connection(kubeconfig)

    client = kube_client(kubeconfig)
    vm_workers: dict[str, members.GroupWorker] = {}

    def _reconcile_vm_pool(
        name: str, spec: Mapping[str, Any], status: Mapping[str, Any], body: Any, patch: Any
    ) -> None:
        worker = vm_workers.setdefault(name, members.GroupWorker(name))
        now = time.time()
        records = members.recorded(status)
        finished = members.collect(worker, records, now=now, said=vm_pools.NODE_SAID)
        pool = vm_pools.vm_pool_spec(name, spec)
        # Pods always: a node leaves drained, through the eviction API.
        observed = observe(client, name, with_pods=True)
        views = vm_pools.node_views(worker, spec, name, observed.nodes, records)
        seen = replace(observed, nodes=views)
        present = {v.name for v in views}
        records = {n: r for n, r in records.items() if r.phase == "booting" or n in present}
        decision = decide(pool, memory_of(status), views, observed.pods, now=now)
        join = vm_pools.Join.of(name, spec, kubeconfig)
        decision, extra, records = vm_pools.act(
            worker, client, join, spec, decision, seen, records, now=now
        )
        for event in members.fresh(worker, (*finished, *decision.events, *extra)):
            log.info("%s %s: %s", name, event.reason, event.message)
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        generation = int(body.get("metadata", {}).get("generation") or 0)
        patch.status.update(
            {
                **status_of(decision, seen, generation=generation, template=vm_pools.CURRENT),
                "members": vm_pools.members_status(records, views, spec),
            }
        )

    @kopf.timer(GROUP, VERSION, NODE_POOLS, interval=interval, registry=handlers)
    def _reconcile_pool(
        name: str, spec: Mapping[str, Any], status: Mapping[str, Any], body: Any, patch: Any,
        **_: Any,
    ) -> None:  # fmt: skip
        if spec.get("nodes") == "vm":
            _reconcile_vm_pool(name, spec, status, body, patch)
            return
        pool = pool_spec(name, spec)
        observed = observe(client, name, with_pods=pool.autoscaled)
        decision = decide(pool, memory_of(status), observed.nodes, observed.pods, now=time.time())
        decision, extra = act(client, name, spec, decision, observed)
        for event in decision.events + extra:
            log.info("%s %s: %s", name, event.reason, event.message)
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        generation = int(body.get("metadata", {}).get("generation") or 0)
        patch.status.update(
            status_of(decision, observed, generation=generation, template=pool.template)
        )

    workers: dict[str, members.GroupWorker] = {}

    def _secret_env(name: str, spec: Mapping[str, Any]) -> Callable[[], dict[str, str]] | None:
        """How to read the members' secret env, when the group has one (read when needed)."""
        secret = spec.get("secretName")
        if not secret:
            return None

        def read() -> dict[str, str]:
            found = read_group_secret(kubeconfig=kubeconfig, name=str(secret))
            if found is None:
                raise DriverError(
                    f"instance group {name}: its members' secret env, the Secret"
                    f" {SECRETS_NAMESPACE}/{secret}, is missing (unkai up keeps it)"
                )
            return found

        return read

    @kopf.timer(GROUP, VERSION, INSTANCE_GROUPS, interval=interval, registry=handlers)
    def _reconcile_group(
        name: str, spec: Mapping[str, Any], status: Mapping[str, Any], body: Any, patch: Any,
        **_: Any,
    ) -> None:  # fmt: skip
        worker = workers.setdefault(name, members.GroupWorker(name))
        now = time.time()
        records = members.recorded(status)
        finished = members.collect(worker, records, now=now)
        observed = members.observe(worker, spec, records, now=now)
        group = members.group_spec(name, spec)
        decision = decide_group(
            group, members.memory_of(status), observed.members, now=now, down=observed.down
        )
        records = members.act(
            worker, spec, decision, observed, now=now, secret_env=_secret_env(name, spec)
        )
        events = (*finished, *observed.events, *decision.events)
        for event in members.fresh(worker, events):
            log.info("%s %s: %s", name, event.reason, event.message)
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        generation = int(body.get("metadata", {}).get("generation") or 0)
        patch.status.update(
            members.status_of(decision, observed, records, spec, generation=generation)
        )

    @kopf.on.delete(GROUP, VERSION, INSTANCE_GROUPS, registry=handlers)
    def _remove_group(name: str, spec: Mapping[str, Any], **_: Any) -> None:
        worker = workers.pop(name, None) or members.GroupWorker(name)
        removed = members.remove_all(worker, spec)
        members.wait_made(worker, timeout=1800)
        log.info("%s: deleted with its members %s", name, ", ".join(removed) or "(none)")

    @kopf.on.delete(GROUP, VERSION, NODE_POOLS, registry=handlers)
    def _remove_pool(name: str, spec: Mapping[str, Any], body: Any, **_: Any) -> None:
        from lightkube.resources.core_v1 import Node

        if spec.get("nodes") == "vm":
            worker = vm_workers.pop(name, None) or members.GroupWorker(name)
            removed = vm_pools.remove_all(worker, client, spec)
            members.wait_made(worker, timeout=1800)
            log.info("%s: deleted with its nodes %s", name, ", ".join(removed) or "(none)")
            return
        nodes = client.list(Node, labels={POOL_LABEL: name})
        gone = [n.metadata.name for n in nodes if n.metadata and n.metadata.name]
        for node in gone:
            client.delete(Node, node)
        log.info("%s: deleted with its nodes %s", name, ", ".join(gone) or "(none)")

    return handlers


FIELD_MANAGER = "unkai-operator"


def ensure_crds(client: Client) -> None:
    """Apply the operator's CustomResourceDefinitions (server-side apply, forced)."""
    for manifest in (node_pool_crd(), instance_group_crd()):
        client.apply(codecs.from_dict(manifest), field_manager=FIELD_MANAGER, force=True)


async def serve_health(port: int) -> web.AppRunner:
    """Answer ``ok`` on ``127.0.0.1:port/healthz`` while the process runs."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def prepare(kubeconfig: Path, *, stop: asyncio.Event) -> None:
    """Apply the CRDs, retrying until the API server takes them, and wait until served."""
    client = kube_client(kubeconfig)
    while not stop.is_set():
        try:
            await asyncio.to_thread(ensure_crds, client)
            if await asyncio.to_thread(crds_established, client):
                return
        except Exception as err:
            log.warning("cannot apply the CustomResourceDefinitions yet: %s", err)
        await _sleep(stop, 1.0)


def crds_established(client: Client) -> bool:
    """Whether the API server serves every CRD of the operator."""
    for plural in (NODE_POOLS, INSTANCE_GROUPS):
        crd = client.get(CustomResourceDefinition, f"{plural}.{GROUP}")
        conditions = (crd.status.conditions if crd.status else None) or ()
        if not any(c.type == "Established" and c.status == "True" for c in conditions):
            return False
    return True


def resources_served(client: Client) -> bool:
    """Whether the API server serves the operator's resources now: a list of each answers.

    Right after an API server (re)starts, its CRDs are established in etcd but their
    storage is still initializing; kopf started then finds the resources unserved and
    never watches them, so the operator must not start it before this holds.
    """
    for plural, resource in ((NODE_POOLS, NodePoolObject), (INSTANCE_GROUPS, InstanceGroupObject)):
        try:
            next(iter(client.list(resource, chunk_size=1)), None)
        except Exception as err:  # lightkube's ApiError, or httpx's connection errors
            log.info("the API server does not serve %s yet: %s", plural, err)
            return False
    return True


async def lead(
    kubeconfig: Path,
    *,
    identity: str,
    interval: float,
    stop: asyncio.Event,
    lease_seconds: int = 15,
) -> None:
    """Wait for the Lease, run kopf while holding it, until ``stop`` is set."""
    client = kube_client(kubeconfig)
    lease = LeaderLease(client, identity=identity, duration=lease_seconds)
    while not stop.is_set():
        try:
            held = await asyncio.to_thread(lease.acquire)
        except Exception as err:
            log.warning("cannot reach the API server for the Lease: %s", err)
            held = False
        if not held or not await asyncio.to_thread(resources_served, client):
            await _sleep(stop, 2.0)
            continue
        log.info("%s holds the Lease: acting", identity)
        halt = asyncio.Event()
        kopf_task = asyncio.create_task(
            kopf.operator(
                registry=registry(kubeconfig, interval=interval),
                clusterwide=True,
                standalone=True,
                stop_flag=halt,
            )
        )
        lost = False
        try:
            while not stop.is_set() and not kopf_task.done():
                await _sleep(stop, lease_seconds / 3)
                if stop.is_set():
                    break
                try:
                    held = await asyncio.to_thread(lease.acquire)
                except Exception as err:
                    log.warning("renewing the Lease failed: %s", err)
                    held = False
                if not held:
                    log.warning("%s lost the Lease: stopping until it holds it again", identity)
                    lost = True
                    break
        finally:
            halt.set()
            await kopf_task
        if not lost:
            # kopf took over SIGTERM and SIGINT while it ran: it ended for one of them.
            stop.set()
    await asyncio.to_thread(lease.release)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def main(argv: list[str] | None = None) -> None:
    """``python -m unkai.operator``: run the operator until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m unkai.operator", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    parser.add_argument("--lease-seconds", type=int, default=15)
    parser.add_argument("--identity", default=f"{socket.gethostname()}-{os.getpid()}")
    parser.add_argument("--health-port", type=int, help="answer ok on 127.0.0.1:PORT/healthz")
    parser.add_argument("--code", help="the digest of this code (a restart marker; unused)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Every request and every round would be a line: only what unkai decides, and trouble.
    for chatty in ("httpx2", "httpcore2", "kopf"):
        logging.getLogger(chatty).setLevel(logging.WARNING)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # Healthy once the CRDs are served: unkai up applies NodePool objects right after.
        await prepare(args.kubeconfig, stop=stop)
        health = await serve_health(args.health_port) if args.health_port else None
        try:
            await lead(
                args.kubeconfig,
                identity=args.identity,
                interval=args.interval,
                stop=stop,
                lease_seconds=args.lease_seconds,
            )
        finally:
            if health is not None:
                await health.cleanup()

    asyncio.run(run())
