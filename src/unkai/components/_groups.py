"""A managed instance group as the ``InstanceGroup`` object its operator reconciles.

The object's ``spec`` is the group's policy (size and bounds, rolling update, health
check, autoscaling) and its slots: for each member name the group may ever use, the host
the planner placed it on and the ``Instance`` inputs rendered for it, exactly as for a
plain instance (:func:`unkai.components.known_instance_inputs`), with their digest. The
operator makes each member from those inputs (:mod:`unkai.operator._members`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from unkai import model, render
from unkai.kinds import InstanceInputs

GROUP_API = "unkai.dev/v1alpha1"


def slot_digest(inputs: InstanceInputs) -> str:
    """What a member of a slot is made from, as a short digest (pure).

    Any change of the rendered inputs (domain XML, cloud-init, image volume, host) is a
    new digest, and members of the old one are rolled.
    """
    text = json.dumps(inputs.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def group_object_name(env: model.Environment, group: model.InstanceGroup) -> str:
    """The ``InstanceGroup`` object's name: the group's, after its environment's owner."""
    return f"{render.owner(env)}-{group.name}"


def instance_group_object(
    env: model.Environment,
    group: model.InstanceGroup,
    slots: Sequence[tuple[str, InstanceInputs]],
) -> dict[str, Any]:
    """The ``InstanceGroup`` object of ``group`` with its ``slots`` (member name, inputs).

    Raises:
        ValueError: a slot's inputs carry secret env (a member gets none from its slot).
    """
    labels = {
        "app.kubernetes.io/managed-by": "unkai",
        "unkai.dev/environment": env.name,
        **({"unkai.dev/project": env.project} if env.project else {}),
    }
    health = group.health_check
    check: dict[str, Any] = {
        "type": health.type,
        "path": health.path,
        "initialDelaySeconds": round(health.initial_delay_s),
        "intervalSeconds": max(1, round(health.interval_s)),
        "unhealthyThreshold": health.unhealthy_threshold,
    }
    if health.port is not None:
        check["port"] = health.port
    scaling = group.autoscaling
    items = []
    for name, inputs in slots:
        if inputs.secret_env:
            raise ValueError(f"slot {name}: a slot's inputs carry no secret env")
        items.append(
            {
                "name": name,
                "host": inputs.host,
                "digest": slot_digest(inputs),
                "inputs": inputs.model_dump(mode="json", exclude={"secret_env"}),
            }
        )
    return {
        "apiVersion": GROUP_API,
        "kind": "InstanceGroup",
        "metadata": {"name": group_object_name(env, group), "labels": labels},
        "spec": {
            "environment": render.owner(env),
            "size": group.size,
            "minSize": group.min_size,
            "maxSize": group.max_size,
            "maxSurge": group.update_policy.max_surge,
            "maxUnavailable": group.update_policy.max_unavailable,
            "autoHealing": group.auto_healing,
            "healthCheck": check,
            "autoscaling": {
                "targetCpuPercent": max(1, round(scaling.target_cpu_utilization * 100)),
                "windowSeconds": max(1, round(scaling.window_s)),
                "scaleInStabilizationSeconds": round(scaling.scale_in_stabilization_s),
                "initializationSeconds": round(scaling.initialization_s),
            },
            "slots": items,
        },
    }
