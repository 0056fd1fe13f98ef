"""The resource metrics API (``metrics.k8s.io``) of a cluster with VM nodes.

metrics-server runs beside the control plane, on loopback, like its other processes
(:mod:`._plan`); it scrapes each VM node's kubelet on the node network. The API server
serves its API under ``/apis/metrics.k8s.io`` by aggregation: an APIService names the
Service ``kube-system/metrics-server``, an ``ExternalName`` Service that resolves to
``localhost``, so the API server reaches metrics-server on 127.0.0.1 and nothing of it
listens anywhere else. The API server checks metrics-server's serving certificate
against the cluster CA and the Service's name (``metrics-server.kube-system.svc``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unkai.drivers.kubernetes._workloads import apply_objects

__all__ = ["METRICS_API", "apply_metrics_objects", "metrics_objects"]

METRICS_API = "v1beta1.metrics.k8s.io"
"""The APIService of the resource metrics API, which the HPA's controller reads."""

_LABELS = {"app.kubernetes.io/name": "metrics-server", "app.kubernetes.io/managed-by": "unkai"}


def metrics_objects(*, port: int, ca_pem: bytes) -> tuple[Mapping[str, Any], ...]:
    """The Service and APIService that put metrics-server behind the API server; pure.

    Args:
        port: metrics-server's secure port on loopback.
        ca_pem: The cluster CA, which signed metrics-server's serving certificate.
    """
    meta = {"name": "metrics-server", "namespace": "kube-system", "labels": _LABELS}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ExternalName",
            "externalName": "localhost",
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
    }
    api = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": METRICS_API, "labels": _LABELS},
        "spec": {
            "group": "metrics.k8s.io",
            "version": "v1beta1",
            "service": {"name": "metrics-server", "namespace": "kube-system", "port": port},
            "caBundle": base64.b64encode(ca_pem).decode("ascii"),
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
        },
    }
    return service, api


def apply_metrics_objects(*, kubeconfig: Path, port: int, ca_pem: bytes) -> tuple[str, ...]:
    """Put :func:`metrics_objects` on the cluster (server-side apply).

    Raises:
        DriverError: the API server refused an object or did not answer.
    """
    return apply_objects(kubeconfig=kubeconfig, objects=metrics_objects(port=port, ca_pem=ca_pem))
