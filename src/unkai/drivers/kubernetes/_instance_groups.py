"""InstanceGroup objects on a management cluster: apply, read, wait for and delete them.

A managed instance group is an ``InstanceGroup`` object (``instancegroups.unkai.dev``,
cluster-scoped); unkai's operator makes and keeps its members (VMs on the environment's
hosts) and writes what it did into the object's ``status``. This module only talks to
the API server about the objects; the operator (:mod:`unkai.operator`) does the rest.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from lightkube import ApiError
from lightkube.generic_resource import create_global_resource
from lightkube.resources.core_v1 import Secret

from unkai.drivers.kubernetes._client import kube_session
from unkai.drivers.kubernetes._node_pools import (
    GROUP,
    VERSION,
    MemberStatus,
    PoolEvent,
    apply_object,
    delete_object,
    list_objects,
    members_of,
    object_events,
    operator_log,
    read_object,
)
from unkai.errors import DriverError

INSTANCE_GROUPS = "instancegroups"
SECRETS_NAMESPACE = "unkai-system"
"""Where a group's members' secret env is kept: the Secret its ``secretName`` names."""

InstanceGroupObject = create_global_resource(GROUP, VERSION, "InstanceGroup", INSTANCE_GROUPS)
"""lightkube's resource type of the ``InstanceGroup`` objects."""


@dataclass(frozen=True)
class GroupStatus:
    """An InstanceGroup object as the API server has it.

    Attributes:
        spec: Its ``spec``.
        generation: Its ``metadata.generation``.
        observed_generation: The generation the operator last reconciled (0: none yet).
        target: The size the operator aims for.
        healthy: How many members pass their health check.
        updated: How many healthy members are made from their slot's current digest.
        members: The members.
        deleting: It is being deleted (the operator removes its members first).
        repairs: When each recent repair started.
    """

    spec: Mapping[str, Any]
    generation: int
    observed_generation: int
    target: int | None
    healthy: int
    updated: int
    members: tuple[MemberStatus, ...]
    deleting: bool = False
    repairs: tuple[str, ...] = ()

    @property
    def settled(self) -> bool:
        """The operator has acted on this spec; every member it aims for is healthy and new."""
        return (
            self.observed_generation >= self.generation
            and self.target is not None
            and self.healthy == self.updated == self.target == len(self.members)
        )


def _status(obj: Any) -> GroupStatus:
    body = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    return GroupStatus(
        spec=body.get("spec") or {},
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        target=status.get("targetSize"),
        healthy=int(status.get("healthyMembers") or 0),
        updated=int(status.get("updatedMembers") or 0),
        members=members_of(status),
        deleting=bool(meta.get("deletionTimestamp")),
        repairs=tuple(status.get("repairs") or ()),
    )


def apply_instance_group(*, kubeconfig: Path, obj: Mapping[str, Any]) -> GroupStatus:
    """Server-side apply one InstanceGroup object (unkai owns its ``spec``).

    Raises:
        DriverError: the cluster has no InstanceGroup kind yet (its operator never
            started) or refused the object.
    """
    what = f"instance group {obj['metadata']['name']}"
    return _status(apply_object(kubeconfig=kubeconfig, manifest=obj, what=what))


def apply_group_secret(
    *, kubeconfig: Path, name: str, values: Mapping[str, str], labels: Mapping[str, str]
) -> str:
    """Keep a group's members' secret env as the Secret ``unkai-system/<name>``.

    Its values are never in an error: only the group's name is.

    Returns:
        The Secret's ``resourceVersion``: the same after applying the same values again
        (the API server writes nothing then), a new one once a value changed.

    Raises:
        DriverError: the API server refused it or did not answer.
    """
    what = f"instance group {name}'s secret env"
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": SECRETS_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "unkai"},
        },
    }
    apply_object(kubeconfig=kubeconfig, manifest=namespace, what=f"namespace {SECRETS_NAMESPACE}")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": SECRETS_NAMESPACE, "labels": dict(labels)},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())},
    }
    applied = apply_object(kubeconfig=kubeconfig, manifest=secret, what=what)
    return str(applied.metadata.resourceVersion)


def read_group_secret(*, kubeconfig: Path, name: str) -> dict[str, str] | None:
    """The secret env kept for a group's members (``None``: there is none).

    Raises:
        DriverError: the API server failed or did not answer.
    """
    try:
        with kube_session(kubeconfig) as client:
            found = client.get(Secret, name, namespace=SECRETS_NAMESPACE)
    except ApiError as err:
        if err.status.code == 404:
            return None
        raise DriverError(
            f"cannot read instance group {name}'s secret env: {err.status.message}"
        ) from err
    except httpx2.HTTPError as err:
        raise DriverError(f"cannot read instance group {name}'s secret env: {err}") from err
    return {k: base64.b64decode(v).decode() for k, v in sorted((found.data or {}).items())}


def delete_group_secret(*, kubeconfig: Path, name: str) -> None:
    """Delete a group's Secret (nothing when there is none).

    Raises:
        DriverError: the API server refused or did not answer.
    """
    try:
        with kube_session(kubeconfig) as client:
            client.delete(Secret, name, namespace=SECRETS_NAMESPACE)
    except ApiError as err:
        if err.status.code != 404:
            raise DriverError(
                f"cannot delete instance group {name}'s secret env: {err.status.message}"
            ) from err
    except httpx2.HTTPError as err:
        raise DriverError(f"cannot delete instance group {name}'s secret env: {err}") from err


def read_instance_group(*, kubeconfig: Path, name: str) -> GroupStatus | None:
    """The InstanceGroup object ``name`` (``None``: there is none).

    Raises:
        DriverError: the API server failed or did not answer.
    """
    obj = read_object(
        kubeconfig=kubeconfig, kind=InstanceGroupObject, name=name, what=f"instance group {name}"
    )
    return None if obj is None else _status(obj)


def wait_instance_group(
    *,
    kubeconfig: Path,
    name: str,
    timeout: float,
    say: Callable[[str], None] = lambda _: None,
) -> GroupStatus:
    """Wait until the operator has acted on the group's spec and its members are up.

    Says each new count of healthy and updated members (a rollout's progress).

    Raises:
        DriverError: the object is gone, or not settled within ``timeout`` seconds (the
            error names the operator's log).
    """
    deadline = time.monotonic() + timeout
    shown: tuple[int, int, int | None] | None = None
    while True:
        status = read_instance_group(kubeconfig=kubeconfig, name=name)
        if status is None:
            raise DriverError(f"instance group {name} was deleted while unkai waited for it")
        if status.settled:
            return status
        now = (status.healthy, status.updated, status.target)
        if now != shown and status.target is not None:
            shown = now
            say(
                f"instance group {name}: {status.healthy}/{status.target} members healthy,"
                f" {status.updated} on the current template"
            )
        if time.monotonic() >= deadline:
            seen = (
                "the operator has not acted on it"
                if status.observed_generation < status.generation
                else f"{status.healthy} of {status.target} members healthy,"
                f" {status.updated} on the current template"
            )
            raise DriverError(
                f"instance group {name} did not settle within {timeout:.0f} s: {seen}"
                f" (see {operator_log(kubeconfig)})"
            )
        time.sleep(1.0)


def delete_instance_group(*, kubeconfig: Path, name: str, timeout: float) -> None:
    """Delete the InstanceGroup object ``name`` and wait until its members are removed.

    Raises:
        DriverError: the API server refused, or the object outlived ``timeout``.
    """
    delete_object(
        kubeconfig=kubeconfig, kind=InstanceGroupObject, name=name,
        what=f"instance group {name}", timeout=timeout, removes="its members",
    )  # fmt: skip


def list_instance_groups(*, kubeconfig: Path) -> dict[str, GroupStatus]:
    """Every InstanceGroup object of the cluster, by name (empty: none, or no such kind).

    Raises:
        DriverError: the API server failed or did not answer.
    """
    found = list_objects(kubeconfig=kubeconfig, kind=InstanceGroupObject, what="instance groups")
    return {obj.metadata.name: _status(obj) for obj in found}


def instance_group_events(*, kubeconfig: Path, limit: int = 10) -> tuple[PoolEvent, ...]:
    """The latest ``limit`` Events on the cluster's instance groups, newest last.

    Raises:
        DriverError: the API server failed or did not answer.
    """
    return object_events(kubeconfig=kubeconfig, kind="InstanceGroup", limit=limit)
