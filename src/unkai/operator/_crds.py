"""The custom resources of unkai's management plane, as manifests. Pure.

``NodePool`` (``nodepools.unkai.dev``, cluster-scoped, version ``v1alpha1``): one node
pool of the cluster the operator watches. ``unkai up`` owns its ``spec``; the operator
owns its ``status`` (through the status subresource, so neither overwrites the other).
Its objects are rendered from the model by :func:`unkai.render.render_node_pool`. The
schema is structural, as the API server requires: every field typed, unknown fields
refused, bounds checked by the API server before the operator sees a value.
"""

from __future__ import annotations

from typing import Any

from unkai.drivers.kubernetes._node_pools import GROUP, NODE_POOLS, VERSION

__all__ = ["GROUP", "NODE_POOLS", "VERSION", "node_pool_crd"]

_QUANTITY = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"}
_SECONDS = {"type": "integer", "minimum": 0}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}


def _node_pool_schema() -> dict[str, Any]:
    spec = {
        "type": "object",
        "required": ["cluster", "size", "minSize", "maxSize", "cpu", "memory"],
        "properties": {
            "cluster": {"type": "string", "description": "The cluster the pool belongs to."},
            "nodes": {
                "type": "string",
                "enum": ["simulated"],
                "default": "simulated",
                "description": "What a node is: simulated (a Node kwok plays the kubelet of).",
            },
            "machineType": {"type": "string", "description": "The nodes' machine type."},
            "size": {"type": "integer", "minimum": 0, "description": "The size asked for."},
            "minSize": {"type": "integer", "minimum": 0, "description": "Autoscaling floor."},
            "maxSize": {"type": "integer", "minimum": 0, "description": "Autoscaling ceiling."},
            "cpu": {**_QUANTITY, "description": "Each node's CPU capacity (a quantity)."},
            "memory": {**_QUANTITY, "description": "Each node's memory capacity (a quantity)."},
            "pods": {"type": "integer", "minimum": 1, "default": 110},
            "labels": {**_LABELS, "description": "The nodes' labels."},
            "taints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "effect"],
                    "properties": {
                        "key": {"type": "string"},
                        "value": {"type": "string"},
                        "effect": {
                            "type": "string",
                            "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"],
                        },
                    },
                },
            },
            "version": {"type": "string", "description": "The nodes' Kubernetes version."},
            "autoUpgrade": {"type": "boolean", "default": True},
            "maxSurge": {"type": "integer", "minimum": 0, "default": 1},
            "maxUnavailable": {"type": "integer", "minimum": 0, "default": 0},
            "autoRepair": {"type": "boolean", "default": True},
            "repairAfterSeconds": {**_SECONDS, "default": 60},
            "maxRepairs": {"type": "integer", "minimum": 1, "default": 3},
            "repairWindowSeconds": {**_SECONDS, "default": 600},
            "scaleDownUnneededSeconds": {**_SECONDS, "default": 600},
            "scaleDownDelayAfterAddSeconds": {**_SECONDS, "default": 600},
            "scaleDownUtilizationPercent": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100,
                "default": 50,
            },
        },
        "x-kubernetes-validations": [
            {
                "rule": "self.minSize <= self.size && self.size <= self.maxSize",
                "message": "need minSize <= size <= maxSize",
            },
            {
                "rule": "self.maxSurge + self.maxUnavailable > 0",
                "message": "maxSurge and maxUnavailable cannot both be 0: no rollout could run",
            },
        ],
    }
    status = {
        "type": "object",
        "properties": {
            "observedGeneration": {"type": "integer"},
            "targetSize": {"type": "integer"},
            "observedSize": {"type": "integer"},
            "readyNodes": {"type": "integer"},
            "updatedNodes": {"type": "integer"},
            "nodes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
                },
            },
            "lastScaleUp": {"type": "string", "format": "date-time"},
            "unneededSince": {
                "type": "object",
                "additionalProperties": {"type": "string", "format": "date-time"},
            },
            "repairs": {"type": "array", "items": {"type": "string", "format": "date-time"}},
        },
        # kopf keeps its own bookkeeping under status too.
        "x-kubernetes-preserve-unknown-fields": True,
    }
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {"spec": spec, "status": status},
    }


def node_pool_crd() -> dict[str, Any]:
    """The ``nodepools.unkai.dev`` CustomResourceDefinition."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{NODE_POOLS}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "plural": NODE_POOLS,
                "singular": "nodepool",
                "kind": "NodePool",
                "shortNames": ["np"],
                "categories": ["unkai"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": _node_pool_schema()},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Cluster", "type": "string", "jsonPath": ".spec.cluster"},
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                        {"name": "Min", "type": "integer", "jsonPath": ".spec.minSize"},
                        {"name": "Max", "type": "integer", "jsonPath": ".spec.maxSize"},
                        {"name": "Target", "type": "integer", "jsonPath": ".status.targetSize"},
                        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyNodes"},
                        {
                            "name": "Updated",
                            "type": "integer",
                            "jsonPath": ".status.updatedNodes",
                        },
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        },
                    ],
                }
            ],
        },
    }
