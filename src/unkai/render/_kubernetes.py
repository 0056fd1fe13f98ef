"""Kubernetes manifests: a workload's objects, and a node pool's NodePool object."""

from __future__ import annotations

from typing import Any

from unkai.errors import RenderError
from unkai.model import USER_NETWORK_HOST_IP, Environment, NodePool, Probe, Workload, machine_type
from unkai.render._docker import CONTAINER_GID, CONTAINER_UID, image_reference
from unkai.render._jinja import Templates, default_templates
from unkai.render.filters import canonical_json

__all__ = [
    "SECRET_REFS_ANNOTATION",
    "kubernetes_minor",
    "node_pool_file",
    "render_manifests",
    "render_node_pool",
    "secret_name",
    "secret_refs",
    "workload_labels",
]

SECRET_REFS_ANNOTATION = "unkai.dev/secret-refs"
"""Deployment annotation mapping each key of the workload's Secret to the Pulumi config
secret that supplies its value (JSON), so a reviewer sees where values come from."""

_MANIFESTS = (
    ("deployment.yaml", "kubernetes/deployment.yaml.j2"),
    ("service.yaml", "kubernetes/service.yaml.j2"),
    ("hpa.yaml", "kubernetes/hpa.yaml.j2"),
    ("pdb.yaml", "kubernetes/pdb.yaml.j2"),
)


def secret_name(workload: Workload) -> str:
    """The name of the Secret holding the workload's secret env: the workload's name.

    Args:
        workload: The workload.

    Returns:
        The Secret's name.
    """
    return workload.name


def secret_refs(workload: Workload) -> dict[str, str]:
    """Each key of the workload's Secret → the Pulumi config secret supplying its value.

    The keys are the environment variable names of ``secret_env``. The provider creates
    the Secret (named :func:`secret_name`) from these references at apply time; the
    rendered manifests only refer to it.

    Args:
        workload: The workload.

    Returns:
        The mapping, sorted by key; empty when the workload has no secret env.
    """
    return {variable: ref.name for variable, ref in workload.secret_env.items()}


def workload_labels(workload: Workload, env: Environment) -> dict[str, str]:
    """The labels of every object of a workload (and of its pods).

    Args:
        workload: The workload.
        env: Its environment.

    Returns:
        ``app.kubernetes.io/name``, ``app.kubernetes.io/managed-by: unkai``,
        ``unkai.dev/environment`` and, for an environment of a project,
        ``unkai.dev/project``: whose every object is, found by a label selector.
    """
    labels = {
        "app.kubernetes.io/managed-by": "unkai",
        "app.kubernetes.io/name": workload.name,
        "unkai.dev/environment": env.name,
    }
    if env.project is not None:
        labels["unkai.dev/project"] = env.project
    return labels


def kubernetes_minor(version: str) -> str:
    """The ``1.<minor>`` of a Kubernetes version such as ``1.31.4``.

    Args:
        version: A ``1.<minor>.<patch>`` version.

    Returns:
        ``1.<minor>``.
    """
    major, minor, *_ = version.split(".")
    return f"{major}.{minor}"


def _probe(probe: Probe | None) -> dict[str, Any] | None:
    if probe is None:
        return None
    action: dict[str, Any]
    if probe.type == "http":
        action = {"httpGet": {"path": probe.path, "port": probe.port}}
    else:
        action = {"tcpSocket": {"port": probe.port}}
    return {
        **action,
        "failureThreshold": probe.failure_threshold,
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
    }


def _resources(workload: Workload) -> dict[str, dict[str, str]]:
    resources: dict[str, dict[str, str]] = {}
    for kind, values in (
        ("requests", workload.resources.requests),
        ("limits", workload.resources.limits),
    ):
        amounts = {name: value for name in ("cpu", "memory") if (value := getattr(values, name))}
        if amounts:
            resources[kind] = amounts
    return resources


def _env(workload: Workload) -> list[dict[str, Any]]:
    plain = [{"name": name, "value": value} for name, value in workload.env.items()]
    secret = [
        {"name": name, "valueFrom": {"secretKeyRef": {"key": name, "name": secret_name(workload)}}}
        for name in workload.secret_env
    ]
    return sorted(plain + secret, key=lambda item: str(item["name"]))


def _service_ports(workload: Workload) -> list[dict[str, Any]]:
    if workload.service is None:
        return []
    ports = []
    for port in workload.service.ports:
        item: dict[str, Any] = {
            "name": port.name,
            "port": port.port,
            "protocol": port.protocol,
            "targetPort": port.port if port.target_port is None else port.target_port,
        }
        if port.node_port is not None:
            item["nodePort"] = port.node_port
        ports.append(item)
    return ports


def render_manifests(
    workload: Workload,
    env: Environment,
    *,
    image_ref: str | None = None,
    templates: Templates | None = None,
) -> dict[str, str]:
    """Render the Kubernetes manifests of a workload, one YAML document per object.

    - ``deployment.yaml``: always. Pods run with a restricted security context
      (non-root user 10001, no privilege escalation, read-only root filesystem with an
      ``emptyDir`` on ``/tmp``, all capabilities dropped, seccomp ``RuntimeDefault``), no
      service account token, the workload's requests/limits and probes. ``replicas`` is
      left out when an HPA owns it. Secret env comes from ``secretKeyRef`` of the
      Secret named after the workload (:func:`secret_name`); its values come from Pulumi
      secrets at apply time and never appear here, only :func:`secret_refs` as an
      annotation.
    - ``service.yaml``: when the workload has a ``service``.
    - ``hpa.yaml``: ``autoscaling/v2`` on CPU utilisation, when ``autoscaling`` is set.
    - ``pdb.yaml``: ``policy/v1`` with ``minAvailable``, when ``pdb_min_available`` is set.

    Args:
        workload: The workload.
        env: Its environment.
        image_ref: The image to run (a digest reference at apply time); default: the
            content-hash reference of the workload's container image
            (:func:`unkai.render.image_reference`).
        templates: Where templates come from (default: the built-ins).

    Returns:
        File name → manifest text, in file-name order.

    Raises:
        RenderError: A template failed, or the workload is not part of ``env``.
    """
    if env.workloads.get(workload.name) != workload:
        raise RenderError(f"workload {workload.name!r} is not part of environment {env.name!r}")
    templates = templates or default_templates()
    if image_ref is None:
        image = env.container_images[workload.image]
        image_ref = image_reference(image, env, templates=templates)
    refs = secret_refs(workload)
    context = {
        "workload": workload,
        "environment": env.name,
        "labels": workload_labels(workload, env),
        "selector": {"app.kubernetes.io/name": workload.name},
        "annotations": {SECRET_REFS_ANNOTATION: canonical_json(refs)} if refs else {},
        "image": image_ref,
        "replicas": None if workload.autoscaling is not None else workload.replicas,
        "ports": [
            {"containerPort": port.port, "name": port.name, "protocol": port.protocol}
            for port in workload.ports
        ],
        "env": _env(workload),
        "resources": _resources(workload),
        "readiness_probe": _probe(workload.readiness_probe),
        "liveness_probe": _probe(workload.liveness_probe),
        "service_ports": _service_ports(workload),
        "uid": CONTAINER_UID,
        "gid": CONTAINER_GID,
    }
    wanted = {
        "deployment.yaml": True,
        "service.yaml": workload.service is not None,
        "hpa.yaml": workload.autoscaling is not None,
        "pdb.yaml": workload.pdb_min_available is not None,
    }
    return {
        file: templates.render(template, context)
        for file, template in sorted(_MANIFESTS)
        if wanted[file]
    }


def node_pool_file(cluster: str, pool: str) -> str:
    """Where :func:`render_node_pool` goes in the tree.

    Args:
        cluster: The cluster's name.
        pool: The pool's name.

    Returns:
        ``kubernetes/<cluster>/nodepool-<pool>.yaml``.
    """
    return f"kubernetes/{cluster}/nodepool-{pool}.yaml"


def render_node_pool(
    cluster: str, pool: NodePool, env: Environment, *, templates: Templates | None = None
) -> str:
    """The ``NodePool`` object of ``pool`` of ``cluster``: what ``unkai up`` applies.

    Its ``spec`` is the pool as declared (size, bounds, each node's capacity from the
    machine type, labels, taints, auto-repair); unkai's operator on the cluster makes the
    nodes and keeps them, and writes what it did into the object's ``status``.

    Args:
        cluster: The cluster's name.
        pool: One of its node pools.
        env: The environment (for the owner labels).
        templates: Where templates come from (default: the built-ins).

    Returns:
        The object as YAML text.

    Raises:
        RenderError: the template failed.
    """
    labels = {
        "app.kubernetes.io/managed-by": "unkai",
        "unkai.dev/cluster": cluster,
        "unkai.dev/environment": env.name,
    }
    if env.project is not None:
        labels["unkai.dev/project"] = env.project
    taints = [
        {"key": t.key, "value": t.value, "effect": t.effect}
        if t.value
        else {"key": t.key, "effect": t.effect}
        for t in pool.taints
    ]
    port = env.clusters[cluster].control_plane.port
    context = {
        "cluster": cluster,
        "pool": pool,
        "shape": machine_type(pool.machine_type),
        "version": env.clusters[cluster].kubernetes_version,
        "environment": env.name,
        "labels": labels,
        "taints": taints,
        # A VM node reaches the API server through QEMU user networking's address of
        # this machine.
        "endpoint": f"{USER_NETWORK_HOST_IP}:{port}" if pool.kind == "vm" else None,
    }
    return (templates or default_templates()).render("kubernetes/nodepool.yaml.j2", context)
