"""Workload objects on a cluster: server-side apply, read, wait and delete, via lightkube.

The manifests arrive rendered (:func:`unkai.render.render_manifests`, what ``unkai
render`` writes); :func:`plan_objects` and :func:`secret_manifest` are pure and turn them,
and a workload's secret values, into the objects to apply. The rest talk to the API
server: every object is applied with server-side apply under the field manager
``unkai`` (forced, so unkai owns the fields it declares and a hand edit of one of them is
undone by the next apply), and no function logs or returns a secret value in an error.
"""

from __future__ import annotations

import base64
import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import yaml
from lightkube import ApiError, codecs
from lightkube.core.resource_registry import resource_registry
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace, Node, Pod
from lightkube.types import CascadeType, PatchType

from unkai.drivers.kubernetes._client import FIELD_MANAGER, kube_session
from unkai.drivers.kubernetes._nodes import POOL_LABEL
from unkai.errors import DriverError

SECRET_KINDS = frozenset({"Secret"})
"""Kinds whose content never appears in an error message."""


@dataclass(frozen=True)
class ObjectRef:
    """Which object: its API version, kind and name (in the workload's namespace)."""

    api_version: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class DeploymentState:
    """A Deployment's replica counts as its status reports them."""

    replicas: int
    available: int
    updated: int
    current: bool

    @property
    def ready(self) -> bool:
        """Whether every desired replica is updated and available, for the latest spec."""
        return self.current and self.available == self.replicas == self.updated


@dataclass(frozen=True)
class PodState:
    """One pod of a workload: where it runs and whether it is Ready."""

    name: str
    node: str
    phase: str
    ready: bool


@dataclass(frozen=True)
class WorkloadStatus:
    """A workload's Deployment as it runs: its replica counts and its pods.

    Attributes:
        namespace: The Deployment's namespace.
        name: Its name (the workload's).
        replicas: The replicas it asks for.
        ready: How many of its pods are Ready.
        updated: How many run its latest pod template.
        pods: Its pods, by name.
    """

    namespace: str
    name: str
    replicas: int
    ready: int
    updated: int
    pods: tuple[PodState, ...]


MANAGED_BY = {"app.kubernetes.io/managed-by": "unkai"}
"""The label every object of a workload carries (:func:`unkai.render.workload_labels`)."""


def ref_of(manifest: Mapping[str, Any]) -> ObjectRef:
    """The :class:`ObjectRef` of one manifest (a mapping). Pure."""
    return ObjectRef(
        api_version=str(manifest["apiVersion"]),
        kind=str(manifest["kind"]),
        name=str(manifest["metadata"]["name"]),
    )


def plan_objects(manifests: Mapping[str, str], *, namespace: str) -> tuple[dict[str, Any], ...]:
    """The objects of rendered manifests, each placed in ``namespace``. Pure.

    Args:
        manifests: File name → YAML text (one or more documents each), as rendered.
        namespace: Where the objects go (the rendered files name none).

    Returns:
        The objects in file-name order.

    Raises:
        DriverError: a file is not YAML or a document is not a Kubernetes object.
    """
    objects: list[dict[str, Any]] = []
    for file, text in sorted(manifests.items()):
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as err:
            raise DriverError(f"manifest {file} is not YAML: {err}") from err
        for document in documents:
            if not isinstance(document, dict) or not {"apiVersion", "kind", "metadata"} <= set(
                document
            ):
                raise DriverError(f"manifest {file} holds something other than a Kubernetes object")
            obj = dict(document)
            obj["metadata"] = {**document["metadata"], "namespace": namespace}
            objects.append(obj)
    return tuple(objects)


def secret_manifest(
    *, name: str, namespace: str, values: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, Any]:
    """The Opaque Secret holding ``values`` (base64 ``data``, not ``stringData``). Pure.

    ``data`` rather than ``stringData``: the API server turns ``stringData`` into ``data``,
    which leaves server-side apply's field ownership of ``data`` to nobody.
    """
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "type": "Opaque",
        "data": {
            key: base64.b64encode(value.encode("utf-8")).decode("ascii")
            for key, value in sorted(values.items())
        },
    }


def _resource(ref: ObjectRef) -> Any:
    try:
        return resource_registry.load(ref.api_version, ref.kind)
    except Exception as err:  # lightkube raises LoadResourceError or KeyError
        raise DriverError(f"unknown Kubernetes kind {ref.api_version} {ref.kind}") from err


def _no_answer(err: httpx2.HTTPError) -> str:
    """A connection error as a sentence: the API server did not answer, and how."""
    return f"the API server did not answer ({str(err) or 'the connection was closed'})"


def _fail(action: str, ref: ObjectRef, err: Exception) -> DriverError:
    if isinstance(err, httpx2.TransportError):
        return DriverError(f"cannot {action} {ref}: {_no_answer(err)}")
    if ref.kind in SECRET_KINDS:
        code = err.status.code if isinstance(err, ApiError) else "from the API server"
        return DriverError(f"cannot {action} {ref}: error {code}")
    return DriverError(f"cannot {action} {ref}: {err}")


def ensure_namespace(*, kubeconfig: Path, namespace: str) -> bool:
    """Create ``namespace`` when it does not exist (it is never deleted by unkai).

    Returns:
        Whether it was created.

    Raises:
        DriverError: the API server refused or did not answer.
    """
    with kube_session(kubeconfig) as client:
        try:
            client.get(Namespace, namespace)
            return False
        except ApiError as err:
            if err.status.code != 404:
                raise DriverError(f"cannot read namespace {namespace}: {err}") from err
        except httpx2.HTTPError as err:
            raise DriverError(f"cannot read namespace {namespace}: {_no_answer(err)}") from err
        try:
            client.create(Namespace(metadata=ObjectMeta(name=namespace)))
        except ApiError as err:
            if err.status.code != 409:
                raise DriverError(f"cannot create namespace {namespace}: {err}") from err
        except httpx2.HTTPError as err:
            raise DriverError(f"cannot create namespace {namespace}: {_no_answer(err)}") from err
        return True


def apply_objects(*, kubeconfig: Path, objects: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Server-side apply each object (field manager ``unkai``, forced), in order.

    Returns:
        ``Kind/name`` of each object applied.

    Raises:
        DriverError: the API server refused an object (a Secret's error names no value).
    """
    done = []
    with kube_session(kubeconfig) as client:
        for manifest in objects:
            ref = ref_of(manifest)
            try:
                obj = codecs.from_dict(dict(manifest))
                client.apply(
                    obj,
                    namespace=manifest["metadata"].get("namespace"),
                    field_manager=FIELD_MANAGER,
                    force=True,
                )
            except (ApiError, httpx2.HTTPError, codecs.LoadResourceError) as err:
                raise _fail("apply", ref, err) from None
            done.append(str(ref))
    return tuple(done)


_NOT_DECLARED = (
    ("metadata", "managedFields"), ("metadata", "resourceVersion"), ("metadata", "generation"),
    ("metadata", "uid"), ("metadata", "creationTimestamp"), ("status",),
)  # fmt: skip
"""What the API server keeps of its own on every object: never a difference."""


def _declared(obj: Mapping[str, Any], *, followed: Sequence[tuple[str, ...]]) -> dict[str, Any]:
    """``obj`` without the server's own fields and the ``followed`` ones."""
    kept: dict[str, Any] = copy.deepcopy(dict(obj))
    for path in (*_NOT_DECLARED, *followed):
        node: Any = kept
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return kept


def changed_paths(live: Any, applied: Any, path: str = "") -> list[str]:
    """The paths (``spec.template.spec.containers[0].env``) where ``applied`` differs (pure).

    Only the paths, never the values: a Secret's data differs without being shown.
    """
    if isinstance(live, dict) and isinstance(applied, dict):
        found = []
        for key in sorted(live.keys() | applied.keys()):
            where = f"{path}.{key}" if path else key
            found += changed_paths(live.get(key), applied.get(key), where)
        return found
    if isinstance(live, list) and isinstance(applied, list) and len(live) == len(applied):
        found = []
        for index, (one, other) in enumerate(zip(live, applied, strict=True)):
            found += changed_paths(one, other, f"{path}[{index}]")
        return found
    return [] if live == applied else [path or "(the object)"]


def apply_differences(
    *,
    kubeconfig: Path,
    objects: Sequence[Mapping[str, Any]],
    live: Mapping[ObjectRef, Mapping[str, Any] | None],
    followed: Mapping[str, Sequence[tuple[str, ...]]] | None = None,
) -> dict[str, tuple[str, ...]]:
    """What a forced server-side apply of each object would set back in its live one.

    Each object that exists is applied with ``dryRun=All`` (nothing changes); where the
    result differs from the live object, a field unkai declares was changed by someone
    else (a hand edit, another controller). Fields only others set stay theirs and do
    not count, as the apply would keep them.

    Args:
        kubeconfig: The cluster's admin kubeconfig.
        objects: The objects as rendered (:func:`plan_objects`).
        live: The live object of each (:func:`read_objects`); None when missing.
        followed: Kind → paths left out of the comparison because unkai follows them
            another way (a Deployment's ``spec.replicas``, which an HPA also sets).

    Returns:
        ``Kind/name`` → the paths that differ, for each object that differs.

    Raises:
        DriverError: the API server refused or did not answer.
    """
    found: dict[str, tuple[str, ...]] = {}
    with kube_session(kubeconfig) as client:
        for manifest in objects:
            ref = ref_of(manifest)
            current = live.get(ref)
            if current is None:
                continue
            try:
                applied = client.apply(
                    codecs.from_dict(dict(manifest)),
                    namespace=manifest["metadata"].get("namespace"),
                    field_manager=FIELD_MANAGER,
                    force=True,
                    dry_run=True,
                )
            except (ApiError, httpx2.HTTPError, codecs.LoadResourceError) as err:
                raise _fail("dry-run apply", ref, err) from None
            skip = (followed or {}).get(ref.kind, ())
            paths = changed_paths(
                _declared(current, followed=skip), _declared(applied.to_dict(), followed=skip)
            )
            if paths:
                found[str(ref)] = tuple(paths)
    return found


def read_objects(
    *, kubeconfig: Path, refs: Sequence[ObjectRef], namespace: str
) -> dict[ObjectRef, dict[str, Any] | None]:
    """The live object of each ref (a plain dict), or None when it does not exist.

    Raises:
        DriverError: the API server refused or did not answer.
    """
    found: dict[ObjectRef, dict[str, Any] | None] = {}
    with kube_session(kubeconfig) as client:
        for ref in refs:
            try:
                obj = client.get(_resource(ref), ref.name, namespace=namespace)
            except ApiError as err:
                if err.status.code != 404:
                    raise _fail("read", ref, err) from None
                found[ref] = None
                continue
            except httpx2.HTTPError as err:
                raise _fail("read", ref, err) from None
            found[ref] = obj.to_dict()
    return found


def delete_objects(
    *, kubeconfig: Path, refs: Sequence[ObjectRef], namespace: str
) -> tuple[str, ...]:
    """Delete each object (foreground: a Deployment's pods go before it); gone is fine.

    Returns:
        ``Kind/name`` of the objects that existed.

    Raises:
        DriverError: the API server refused a deletion.
    """
    deleted = []
    with kube_session(kubeconfig) as client:
        for ref in refs:
            try:
                client.delete(
                    _resource(ref), ref.name, namespace=namespace, cascade=CascadeType.FOREGROUND
                )
            except ApiError as err:
                if err.status.code == 404:
                    continue
                raise _fail("delete", ref, err) from None
            except httpx2.HTTPError as err:
                raise _fail("delete", ref, err) from None
            deleted.append(str(ref))
    return tuple(deleted)


def deployment_state(*, kubeconfig: Path, name: str, namespace: str) -> DeploymentState | None:
    """The replica counts of Deployment ``name``; None when it does not exist.

    Raises:
        DriverError: the API server refused or did not answer.
    """
    with kube_session(kubeconfig) as client:
        try:
            dep = client.get(Deployment, name, namespace=namespace)
        except ApiError as err:
            if err.status.code == 404:
                return None
            raise DriverError(f"cannot read Deployment/{name}: {err}") from err
        except httpx2.HTTPError as err:
            raise DriverError(f"cannot read Deployment/{name}: {_no_answer(err)}") from err
    spec_replicas = dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1
    status = dep.status
    generation = dep.metadata.generation if dep.metadata else None
    observed = status.observedGeneration if status else None
    return DeploymentState(
        replicas=spec_replicas,
        available=(status.availableReplicas or 0) if status else 0,
        updated=(status.updatedReplicas or 0) if status else 0,
        current=generation is None or (observed is not None and observed >= generation),
    )


def wait_deployment_available(
    *,
    kubeconfig: Path,
    name: str,
    namespace: str,
    timeout: float = 300.0,
    say: Callable[[str], None] = lambda _: None,
) -> DeploymentState:
    """Wait until Deployment ``name`` has all its replicas updated and available.

    Args:
        kubeconfig: The cluster's kubeconfig.
        name: The Deployment.
        namespace: Its namespace.
        timeout: Seconds to wait.
        say: Receives a progress line whenever the available count changes.

    Raises:
        DriverError: not available within ``timeout`` (says how many were), or gone.
    """
    deadline = time.monotonic() + timeout
    last: tuple[int, int] | None = None
    state: DeploymentState | None = None
    while True:
        state = deployment_state(kubeconfig=kubeconfig, name=name, namespace=namespace)
        if state is None:
            raise DriverError(f"Deployment/{name} disappeared while waiting for it")
        if state.ready:
            return state
        if (state.available, state.replicas) != last:
            last = (state.available, state.replicas)
            say(f"Deployment/{name}: {state.available}/{state.replicas} replicas available")
        if time.monotonic() >= deadline:
            raise DriverError(
                f"Deployment/{name}: {state.available} of {state.replicas} replicas available"
                f" ({state.updated} updated) after {timeout:.0f} s"
            )
        time.sleep(0.5)


def node_metadata_patch(
    *,
    labels: Mapping[str, str],
    taints: Sequence[Mapping[str, str]],
    dropped_labels: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON merge patch giving a pool's node these labels and taints. Pure.

    ``dropped_labels`` (labels the pool had before) are removed; taints are replaced as a
    whole (a merge patch replaces lists), so the node lifecycle controller's own taints
    are re-added by it when they still apply.
    """
    patch_labels: dict[str, str | None] = {key: None for key in dropped_labels}
    patch_labels.update(labels)
    return {"metadata": {"labels": patch_labels}, "spec": {"taints": [dict(t) for t in taints]}}


def patch_pool_nodes(*, kubeconfig: Path, pool: str, patch: Mapping[str, Any]) -> tuple[str, ...]:
    """Merge-patch every node of ``pool`` (labels, taints) in place.

    Returns:
        The names of the nodes patched.

    Raises:
        DriverError: the API server refused a patch.
    """
    with kube_session(kubeconfig) as client:
        try:
            names = [
                n.metadata.name
                for n in client.list(Node, labels={POOL_LABEL: pool})
                if n.metadata and n.metadata.name
            ]
            for name in names:
                client.patch(Node, name, dict(patch), patch_type=PatchType.MERGE)
        except (ApiError, httpx2.HTTPError) as err:
            raise DriverError(f"cannot patch the nodes of pool {pool}: {err}") from err
    return tuple(sorted(names))


def list_workloads(*, kubeconfig: Path) -> tuple[WorkloadStatus, ...]:
    """Every workload unkai applied on the cluster, in every namespace, with its pods.

    A workload is a Deployment labelled as unkai's; its pods are those of its namespace
    with its ``app.kubernetes.io/name``.

    Raises:
        DriverError: the API server refused or did not answer.
    """
    try:
        with kube_session(kubeconfig) as client:
            deployments = list(client.list(Deployment, namespace="*", labels=MANAGED_BY))
            pods = list(client.list(Pod, namespace="*", labels=MANAGED_BY))
    except ApiError as err:
        raise DriverError(f"cannot list the cluster's workloads: {err}") from err
    except httpx2.HTTPError as err:
        raise DriverError(f"cannot list the cluster's workloads: {_no_answer(err)}") from err
    by_workload: dict[tuple[str, str], list[PodState]] = {}
    for pod in pods:
        meta = pod.metadata
        if meta is None:
            continue
        key = (meta.namespace or "", (meta.labels or {}).get("app.kubernetes.io/name", ""))
        conditions = (pod.status.conditions if pod.status else None) or []
        by_workload.setdefault(key, []).append(
            PodState(
                name=meta.name or "",
                node=(pod.spec.nodeName if pod.spec else None) or "",
                phase=(pod.status.phase if pod.status else None) or "Unknown",
                ready=any(c.type == "Ready" and c.status == "True" for c in conditions),
            )
        )
    found = []
    for dep in deployments:
        namespace = (dep.metadata.namespace if dep.metadata else None) or ""
        name = (dep.metadata.name if dep.metadata else None) or ""
        status = dep.status
        found.append(
            WorkloadStatus(
                namespace=namespace,
                name=name,
                replicas=dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1,
                ready=(status.readyReplicas or 0) if status else 0,
                updated=(status.updatedReplicas or 0) if status else 0,
                pods=tuple(sorted(by_workload.get((namespace, name), []), key=lambda p: p.name)),
            )
        )
    return tuple(sorted(found, key=lambda w: (w.namespace, w.name)))
