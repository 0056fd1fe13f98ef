"""NodePool objects on a cluster: apply, read, wait for and delete them.

A node pool is a ``NodePool`` object (``nodepools.unkai.dev``, cluster-scoped); unkai's
operator, a component of the control plane, makes and keeps its nodes and writes what
it did into the object's ``status``. This module only talks to the API server about the
objects; the operator (:mod:`unkai.operator`) does the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import yaml
from lightkube import ApiError, codecs
from lightkube.generic_resource import create_global_resource

from unkai.drivers.kubernetes._client import kube_session
from unkai.errors import DriverError

GROUP = "unkai.dev"
VERSION = "v1alpha1"
NODE_POOLS = "nodepools"
FIELD_MANAGER = "unkai"

NodePoolObject = create_global_resource(GROUP, VERSION, "NodePool", NODE_POOLS)
"""lightkube's resource type of the ``NodePool`` objects."""


@dataclass(frozen=True)
class MemberStatus:
    """One VM the operator made (a group's member, a ``vm`` pool's node), as it reports it."""

    name: str
    host: str
    phase: str
    digest: str
    created: str
    cpu_percent: int | None = None
    address: str | None = None
    host_keys: tuple[str, ...] = ()


def members_of(status: Mapping[str, Any]) -> tuple[MemberStatus, ...]:
    """The VMs an object's ``status`` records (``members``)."""
    return tuple(
        MemberStatus(
            name=m.get("name", ""),
            host=m.get("host", ""),
            phase=m.get("phase", ""),
            digest=m.get("digest", ""),
            created=m.get("created", ""),
            cpu_percent=m.get("cpuPercent"),
            address=m.get("address"),
            host_keys=tuple(m.get("hostKeys") or ()),
        )
        for m in status.get("members") or ()
    )


@dataclass(frozen=True)
class PoolStatus:
    """A NodePool object as the API server has it.

    Attributes:
        spec: Its ``spec``.
        generation: Its ``metadata.generation``.
        observed_generation: The generation the operator last reconciled (0: none yet).
        target: The size the operator aims for.
        ready: How many of its nodes are Ready.
        nodes: Its nodes' names.
        deleting: It is being deleted (the operator removes its nodes first).
        updated: How many nodes are of the spec's template (``None``: not reported).
        last_scale_up: When the operator last added nodes for pending pods.
        repairs: When each recent repair started.
        members: A ``vm`` pool's VMs, as the operator recorded them.
    """

    spec: Mapping[str, Any]
    generation: int
    observed_generation: int
    target: int | None
    ready: int
    nodes: tuple[str, ...]
    deleting: bool = False
    last_scale_up: str | None = None
    repairs: tuple[str, ...] = ()
    updated: int | None = None
    members: tuple[MemberStatus, ...] = ()

    @property
    def settled(self) -> bool:
        """The operator has acted on this spec and every node it aims for is Ready."""
        return (
            self.observed_generation >= self.generation
            and self.target is not None
            and self.ready == self.target == len(self.nodes)
            # A rollout counts only where the operator rolls (autoUpgrade).
            and (self.updated in (None, self.target) or not self.spec.get("autoUpgrade", True))
        )


def operator_log(kubeconfig: Path) -> Path:
    """Where the operator of the cluster of ``kubeconfig`` (``<state>/kubeconfig/…``) logs."""
    return kubeconfig.parent.parent / "logs" / "unkai-operator.log"


def _status(obj: Any) -> PoolStatus:
    body = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    return PoolStatus(
        spec=body.get("spec") or {},
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        target=status.get("targetSize"),
        ready=int(status.get("readyNodes") or 0),
        nodes=tuple(n["name"] for n in status.get("nodes") or ()),
        deleting=bool(meta.get("deletionTimestamp")),
        last_scale_up=status.get("lastScaleUp"),
        repairs=tuple(status.get("repairs") or ()),
        updated=status.get("updatedNodes"),
        members=members_of(status),
    )


def apply_object(*, kubeconfig: Path, manifest: str | Mapping[str, Any], what: str) -> Any:
    """Server-side apply one of unkai's objects (unkai owns its ``spec``); the live object.

    ``what`` names it in errors (``node pool web``).

    Raises:
        DriverError: the cluster has no such kind yet (its operator never started) or
            refused the object.
    """
    doc = yaml.safe_load(manifest) if isinstance(manifest, str) else dict(manifest)
    try:
        with kube_session(kubeconfig) as client:
            return client.apply(codecs.from_dict(doc), field_manager=FIELD_MANAGER, force=True)  # type: ignore[call-overload]
    except ApiError as err:
        if err.status.code == 404:
            raise DriverError(
                f"{what}: the cluster has no {doc['kind']} kind: its operator has not"
                f" started (see {operator_log(kubeconfig)})"
            ) from err
        raise DriverError(f"{what}: the API server refused it: {err.status.message}") from err
    except httpx2.HTTPError as err:
        raise DriverError(f"{what}: the API server did not answer: {err}") from err


def read_object(*, kubeconfig: Path, kind: Any, name: str, what: str) -> Any | None:
    """The object ``name`` of ``kind`` (``None``: there is none).

    Raises:
        DriverError: the API server failed or did not answer.
    """
    try:
        with kube_session(kubeconfig) as client:
            return client.get(kind, name)
    except ApiError as err:
        if err.status.code == 404:
            return None
        raise DriverError(f"cannot read {what}: {err.status.message}") from err
    except httpx2.HTTPError as err:
        raise DriverError(f"cannot read {what}: {err}") from err


def delete_object(
    *, kubeconfig: Path, kind: Any, name: str, what: str, timeout: float, removes: str
) -> None:
    """Delete an object and wait until its operator has removed what it made (``removes``).

    Raises:
        DriverError: the API server refused, or the object outlived ``timeout`` (its
            operator is not running).
    """
    try:
        with kube_session(kubeconfig) as client:
            client.delete(kind, name)
    except ApiError as err:
        if err.status.code == 404:
            return
        raise DriverError(f"cannot delete {what}: {err.status.message}") from err
    except httpx2.HTTPError as err:
        raise DriverError(f"cannot delete {what}: {err}") from err
    deadline = time.monotonic() + timeout
    while read_object(kubeconfig=kubeconfig, kind=kind, name=name, what=what) is not None:
        if time.monotonic() >= deadline:
            raise DriverError(
                f"{what} is still being deleted after {timeout:.0f} s: its operator removes"
                f" {removes} first (see {operator_log(kubeconfig)})"
            )
        time.sleep(0.5)


def list_objects(*, kubeconfig: Path, kind: Any, what: str) -> list[Any]:
    """Every object of ``kind`` (empty: none, or no such kind).

    Raises:
        DriverError: the API server failed or did not answer.
    """
    try:
        with kube_session(kubeconfig) as client:
            return [
                obj for obj in client.list(kind) if obj.metadata is not None and obj.metadata.name
            ]
    except ApiError as err:
        if err.status.code == 404:
            return []
        raise DriverError(f"cannot list the {what}: {err.status.message}") from err
    except httpx2.HTTPError as err:
        raise DriverError(f"cannot list the {what}: the API server did not answer: {err}") from err


def apply_node_pool(*, kubeconfig: Path, manifest: str | Mapping[str, Any]) -> PoolStatus:
    """Server-side apply one rendered NodePool object (unkai owns its ``spec``).

    Raises:
        DriverError: the cluster has no NodePool kind yet (its operator never started)
            or refused the object.
    """
    doc = yaml.safe_load(manifest) if isinstance(manifest, str) else manifest
    name = doc["metadata"]["name"]
    obj = apply_object(kubeconfig=kubeconfig, manifest=manifest, what=f"node pool {name}")
    return _status(obj)


def read_node_pool(*, kubeconfig: Path, name: str) -> PoolStatus | None:
    """The NodePool object ``name`` (``None``: there is none).

    Raises:
        DriverError: the API server failed or did not answer.
    """
    obj = read_object(
        kubeconfig=kubeconfig, kind=NodePoolObject, name=name, what=f"node pool {name}"
    )
    return None if obj is None else _status(obj)


def wait_node_pool(
    *,
    kubeconfig: Path,
    name: str,
    timeout: float,
    say: Callable[[str], None] = lambda _: None,
) -> PoolStatus:
    """Wait until the operator has acted on the pool's spec and its nodes are Ready.

    Says each new count of Ready nodes.

    Raises:
        DriverError: the object is gone, or not settled within ``timeout`` seconds (the
            error names the operator's log).
    """
    deadline = time.monotonic() + timeout
    shown: tuple[int, int | None] | None = None
    status = None
    while True:
        status = read_node_pool(kubeconfig=kubeconfig, name=name)
        if status is None:
            raise DriverError(f"node pool {name} was deleted while unkai waited for it")
        if status.settled:
            return status
        if (status.ready, status.target) != shown and status.target is not None:
            shown = (status.ready, status.target)
            say(f"node pool {name}: {status.ready}/{status.target} nodes Ready")
        if time.monotonic() >= deadline:
            seen = (
                "the operator has not acted on it"
                if status.observed_generation < status.generation
                else f"{status.ready} of {status.target} nodes Ready"
            )
            raise DriverError(
                f"node pool {name} did not settle within {timeout:.0f} s: {seen}"
                f" (see {operator_log(kubeconfig)})"
            )
        time.sleep(0.5)


def delete_node_pool(*, kubeconfig: Path, name: str, timeout: float) -> None:
    """Delete the NodePool object ``name`` and wait until the operator removed its nodes.

    Raises:
        DriverError: the API server refused, or the object outlived ``timeout`` (its
            operator is not running).
    """
    delete_object(
        kubeconfig=kubeconfig, kind=NodePoolObject, name=name, what=f"node pool {name}",
        timeout=timeout, removes="the nodes",
    )  # fmt: skip


@dataclass(frozen=True)
class PoolEvent:
    """An Event the operator posted on a node pool."""

    pool: str
    type: str
    reason: str
    message: str
    time: str
    count: int = 1


def list_node_pools(*, kubeconfig: Path) -> dict[str, PoolStatus]:
    """Every NodePool object of the cluster, by name (empty: none, or no NodePool kind).

    Raises:
        DriverError: the API server failed or did not answer.
    """
    found = list_objects(kubeconfig=kubeconfig, kind=NodePoolObject, what="node pools")
    return {obj.metadata.name: _status(obj) for obj in found}


def object_events(*, kubeconfig: Path, kind: str, limit: int = 10) -> tuple[PoolEvent, ...]:
    """The latest ``limit`` Events on the cluster's objects of ``kind``, newest last.

    Raises:
        DriverError: the API server failed or did not answer.
    """
    from lightkube.resources.core_v1 import Event

    try:
        with kube_session(kubeconfig) as client:
            events = list(client.list(Event, namespace="*", fields={"involvedObject.kind": kind}))
    except (ApiError, httpx2.HTTPError) as err:
        raise DriverError(f"cannot list the events of the {kind} objects: {err}") from err

    def when(event: Any) -> str:
        stamp = event.lastTimestamp or event.eventTime or event.metadata.creationTimestamp
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp else ""

    found = [
        PoolEvent(
            pool=e.involvedObject.name or "",
            type=e.type or "",
            reason=e.reason or "",
            message=e.message or "",
            time=when(e),
            count=e.count or 1,
        )
        for e in events
    ]
    return tuple(sorted(found, key=lambda e: e.time)[-limit:])


def node_pool_events(*, kubeconfig: Path, limit: int = 10) -> tuple[PoolEvent, ...]:
    """The latest ``limit`` Events on the cluster's node pools, newest last.

    Raises:
        DriverError: the API server failed or did not answer.
    """
    return object_events(kubeconfig=kubeconfig, kind="NodePool", limit=limit)
