"""A managed instance group's ``InstanceGroup`` object, as ``unkai render`` writes it. Pure.

The object is the group's policy: size and bounds, rolling update, autohealing and its
health check, autoscaling. ``unkai up`` applies it with the group's slots added (each
member name the group may use, the host the planner placed it on, and that member's
domain XML and cloud-init, which the tree holds under ``libvirt/domains`` and
``cloud-init``) and each host's image volume; the operator on the environment's
management cluster makes the members from it.
"""

from __future__ import annotations

from typing import Any

from unkai.model import Environment, InstanceGroup
from unkai.render._libvirt import owner
from unkai.render.filters import to_yaml

__all__ = [
    "instance_group_file",
    "instance_group_name",
    "instance_group_policy",
    "render_instance_group",
]

GROUP_API = "unkai.dev/v1alpha1"


def instance_group_name(env: Environment, group: InstanceGroup) -> str:
    """The object's name: the group's, after its environment's owner (``unkai-local-web``).

    Args:
        env: The environment.
        group: The group.

    Returns:
        The name.
    """
    return f"{owner(env)}-{group.name}"


def template_secrets(env: Environment, group: InstanceGroup) -> bool:
    """Whether the members of ``group`` get secret env (their template's ``secrets``)."""
    template = env.instance_templates.get(group.template)
    return bool(template is not None and template.secrets)


def instance_group_policy(env: Environment, group: InstanceGroup) -> dict[str, Any]:
    """The object without its slots: what ``unkai render`` writes.

    Args:
        env: The environment (its owner names the object and labels it).
        group: The group.

    Returns:
        The object as a mapping.
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
    # The members' secret env is a Secret of that name (never its values: those are the
    # stack's secrets, which ``up`` keeps there).
    secret = {"secretName": instance_group_name(env, group)} if template_secrets(env, group) else {}
    return {
        "apiVersion": GROUP_API,
        "kind": "InstanceGroup",
        "metadata": {"name": instance_group_name(env, group), "labels": labels},
        "spec": {
            "environment": owner(env),
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
            **secret,
            "slots": [],
        },
    }


def render_instance_group(env: Environment, group: InstanceGroup) -> str:
    """:func:`instance_group_policy` as YAML, headed like the tree's other manifests.

    Args:
        env: The environment.
        group: The group.

    Returns:
        The object as YAML text.
    """
    header = (
        f"# rendered by unkai for instance group {group.name} in environment {env.name};"
        " do not edit\n# up adds the slots (each member's domain XML and cloud-init, as"
        " rendered here) and each host's image volume\n"
    )
    return header + to_yaml(instance_group_policy(env, group), sort_keys=False) + "\n"


def instance_group_file(cluster: str, group: str) -> str:
    """Where :func:`render_instance_group` goes.

    Args:
        cluster: The management cluster's name.
        group: The group's name.

    Returns:
        ``kubernetes/<cluster>/instancegroup-<group>.yaml``.
    """
    return f"kubernetes/{cluster}/instancegroup-{group}.yaml"
