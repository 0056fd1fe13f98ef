"""The custom resources of unkai's management plane, as manifests. Pure.

Both are cluster-scoped, in the API group ``unkai.dev``, version ``v1alpha1``:

- ``NodePool`` (``nodepools``): one node pool of the cluster the operator watches. Its
  objects are rendered from the model by :func:`unkai.render.render_node_pool`.
- ``InstanceGroup`` (``instancegroups``): one managed instance group of an environment,
  its members VMs on the environment's hosts. Its ``slots`` are the members it may have
  (``max_size + max_surge``), each with the host the planner chose and the instance's
  inputs rendered for that name and host, as ``unkai render`` writes them.

``unkai up`` owns each object's ``spec``; the operator owns its ``status`` (through the
status subresource, so neither overwrites the other). The schemas are structural, as the
API server requires: every field typed, unknown fields pruned (but a slot's rendered
inputs, which the operator validates with the ``Instance`` kind's own model), bounds
checked by the API server before the operator sees a value.
"""

from __future__ import annotations

from typing import Any

from unkai.drivers.kubernetes._node_pools import GROUP, NODE_POOLS, VERSION

__all__ = [
    "GROUP",
    "INSTANCE_GROUPS",
    "NODE_POOLS",
    "VERSION",
    "instance_group_crd",
    "node_pool_crd",
]

INSTANCE_GROUPS = "instancegroups"

_QUANTITY = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"}
_SECONDS = {"type": "integer", "minimum": 0}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}

_SLOT = {
    "type": "object",
    "required": ["name", "host", "digest", "inputs"],
    "properties": {
        "name": {"type": "string", "description": "The VM's name (a member's, a node's)."},
        "host": {"type": "string", "description": "The host the planner placed it on."},
        "digest": {"type": "string", "description": "Digest of its rendered inputs."},
        "inputs": {
            "type": "object",
            "description": "The Instance kind's inputs, as unkai render writes them.",
            "x-kubernetes-preserve-unknown-fields": True,
        },
    },
}
"""One slot of a group or a vm pool: a VM it may have, placed and rendered ahead."""

_MEMBER = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "host": {"type": "string"},
        "digest": {"type": "string"},
        "phase": {"type": "string"},
        "created": {"type": "string", "format": "date-time"},
        "ready": {"type": "string", "format": "date-time"},
        "address": {"type": "string"},
        "hostKeys": {"type": "array", "items": {"type": "string"}},
        "cpuPercent": {"type": "integer"},
    },
}
"""A VM the operator made, as its status records it."""


def _node_pool_schema() -> dict[str, Any]:
    spec = {
        "type": "object",
        "required": ["cluster", "size", "minSize", "maxSize", "cpu", "memory"],
        "properties": {
            "cluster": {"type": "string", "description": "The cluster the pool belongs to."},
            "nodes": {
                "type": "string",
                "enum": ["simulated", "vm"],
                "default": "simulated",
                "description": (
                    "What a node is: simulated (a Node kwok plays the kubelet of) or vm (a VM"
                    " of its slot, joined with kubeadm)."
                ),
            },
            "endpoint": {
                "type": "string",
                "description": "Where a vm pool's nodes reach the API server (host:port).",
            },
            "sshClient": {
                "type": "string",
                "description": "The SSH client the operator joins a vm pool's nodes with.",
            },
            "imageVolumes": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Host → the image volume its nodes' boot disks are layered over.",
            },
            "slots": {"type": "array", "items": _SLOT},
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
            "nodeStartupSeconds": {**_SECONDS, "default": 600},
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
            {
                "rule": (
                    "self.nodes != 'vm' || (has(self.endpoint) && has(self.slots)"
                    " && size(self.slots) >= self.maxSize + self.maxSurge)"
                ),
                "message": (
                    "a vm pool needs its endpoint and a slot for every node up to maxSize +"
                    " maxSurge"
                ),
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
            "members": {"type": "array", "items": _MEMBER},
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


def _instance_group_schema() -> dict[str, Any]:
    health = {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["cloud-init", "tcp", "http"]},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "path": {"type": "string", "default": "/"},
            "initialDelaySeconds": {**_SECONDS, "default": 300},
            "intervalSeconds": {"type": "integer", "minimum": 1, "default": 10},
            "unhealthyThreshold": {"type": "integer", "minimum": 1, "default": 3},
        },
        "x-kubernetes-validations": [
            {
                "rule": "self.type == 'cloud-init' || has(self.port)",
                "message": "a tcp or http health check needs a port",
            }
        ],
    }
    autoscaling = {
        "type": "object",
        "properties": {
            "targetCpuPercent": {"type": "integer", "minimum": 1, "maximum": 100},
            "windowSeconds": {"type": "integer", "minimum": 1, "default": 60},
            "scaleInStabilizationSeconds": {**_SECONDS, "default": 600},
            "initializationSeconds": {**_SECONDS, "default": 120},
        },
    }
    spec = {
        "type": "object",
        "required": ["environment", "size", "minSize", "maxSize", "slots"],
        "properties": {
            "environment": {"type": "string", "description": "Its owner: project-stack-env."},
            "size": {"type": "integer", "minimum": 0, "description": "The size asked for."},
            "minSize": {"type": "integer", "minimum": 0, "description": "Autoscaling floor."},
            "maxSize": {"type": "integer", "minimum": 0, "description": "Autoscaling ceiling."},
            "maxSurge": {"type": "integer", "minimum": 0, "default": 1},
            "maxUnavailable": {"type": "integer", "minimum": 0, "default": 0},
            "autoHealing": {"type": "boolean", "default": True},
            "healthCheck": health,
            "autoscaling": autoscaling,
            "maxRepairs": {"type": "integer", "minimum": 1, "default": 3},
            "repairWindowSeconds": {**_SECONDS, "default": 600},
            "secretName": {
                "type": "string",
                "description": "The Secret (namespace unkai-system) with the members' secret env.",
            },
            "secretVersion": {
                "type": "string",
                "description": "That Secret's resourceVersion (set by up): a new one rolls.",
            },
            "imageVolumes": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Host → the image volume its members' boot disks are layered over.",
            },
            "slots": {"type": "array", "items": _SLOT},
        },
        "x-kubernetes-validations": [
            {
                "rule": "self.minSize <= self.size && self.size <= self.maxSize",
                "message": "need minSize <= size <= maxSize",
            },
            {
                "rule": "self.maxSurge + self.maxUnavailable > 0",
                "message": "maxSurge and maxUnavailable cannot both be 0: no update could run",
            },
            {
                "rule": "size(self.slots) >= self.maxSize",
                "message": "need a slot for every member up to maxSize",
            },
        ],
    }
    status = {
        "type": "object",
        "properties": {
            "observedGeneration": {"type": "integer"},
            "targetSize": {"type": "integer"},
            "observedSize": {"type": "integer"},
            "healthyMembers": {"type": "integer"},
            "updatedMembers": {"type": "integer"},
            "members": {"type": "array", "items": _MEMBER},
            "recommendations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "time": {"type": "string", "format": "date-time"},
                        "size": {"type": "integer"},
                    },
                },
            },
            "repairs": {"type": "array", "items": {"type": "string", "format": "date-time"}},
        },
        "x-kubernetes-preserve-unknown-fields": True,
    }
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {"spec": spec, "status": status},
    }


def _column(name: str, kind: str, path: str) -> dict[str, str]:
    return {"name": name, "type": kind, "jsonPath": path}


def _crd(
    plural: str,
    kind: str,
    short: str,
    schema: dict[str, Any],
    columns: list[dict[str, str]],
) -> dict[str, Any]:
    """A cluster-scoped CustomResourceDefinition of unkai's API group, with status."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "shortNames": [short],
                "categories": ["unkai"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        *columns,
                        _column("Age", "date", ".metadata.creationTimestamp"),
                    ],
                }
            ],
        },
    }


def node_pool_crd() -> dict[str, Any]:
    """The ``nodepools.unkai.dev`` CustomResourceDefinition."""
    return _crd(
        NODE_POOLS,
        "NodePool",
        "np",
        _node_pool_schema(),
        [
            _column("Cluster", "string", ".spec.cluster"),
            _column("Size", "integer", ".spec.size"),
            _column("Min", "integer", ".spec.minSize"),
            _column("Max", "integer", ".spec.maxSize"),
            _column("Target", "integer", ".status.targetSize"),
            _column("Ready", "integer", ".status.readyNodes"),
            _column("Updated", "integer", ".status.updatedNodes"),
        ],
    )


def instance_group_crd() -> dict[str, Any]:
    """The ``instancegroups.unkai.dev`` CustomResourceDefinition."""
    return _crd(
        INSTANCE_GROUPS,
        "InstanceGroup",
        "ig",
        _instance_group_schema(),
        [
            _column("Environment", "string", ".spec.environment"),
            _column("Size", "integer", ".spec.size"),
            _column("Min", "integer", ".spec.minSize"),
            _column("Max", "integer", ".spec.maxSize"),
            _column("Target", "integer", ".status.targetSize"),
            _column("Healthy", "integer", ".status.healthyMembers"),
            _column("Updated", "integer", ".status.updatedMembers"),
        ],
    )
