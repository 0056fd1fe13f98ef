"""unkai's built-in CrossGuard policy pack, run by the engine in the policy venv.

``context.json`` beside this file is written by unkai for one run: the environment, its
file, each policy's level there, and the environment key each resource comes from, so
that a violation names the file and key to change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rules

CONTEXT = json.loads((Path(__file__).resolve().parent / "context.json").read_text())
LEVELS = {
    "advisory": EnforcementLevel.ADVISORY,
    "mandatory": EnforcementLevel.MANDATORY,
    "disabled": EnforcementLevel.DISABLED,
}


def where(resource_type: str, name: str) -> str:
    """`` (environments/prod.yaml: instances.db)``: what to change for a resource."""
    key = CONTEXT["keys"].get(f"{resource_type}::{name}")
    return f" ({CONTEXT['file']}: {key})" if key else f" ({CONTEXT['file']})"


def level(policy: str) -> EnforcementLevel:
    """The level the environment gives ``policy`` (disabled when it does not name it)."""
    return LEVELS[CONTEXT["levels"].get(policy, "disabled")]


def resource_policy(name: str, rule) -> ResourceValidationPolicy:
    """CrossGuard's policy ``name`` of one resource, checked by ``rule``."""

    def validate(args, report_violation) -> None:
        for reason in rule(args.resource_type, args.props):
            report_violation(reason + where(args.resource_type, args.name))

    return ResourceValidationPolicy(
        name=name,
        description=rule.__doc__.strip().splitlines()[0],
        enforcement_level=level(name),
        validate=validate,
    )


def anti_affinity(args, report_violation) -> None:
    """Members of one instance group on one host, from the whole stack's resources."""
    members: dict[str, dict[str, str]] = {}
    urns: dict[str, str] = {}
    for resource in args.resources:
        parent = resource.parent
        if resource.resource_type != "unkai:compute:Instance" or parent is None:
            continue
        if parent.resource_type == "unkai:compute:InstanceGroup":
            members.setdefault(parent.name, {})[resource.name] = str(resource.props.get("host"))
            urns[resource.name] = resource.urn
    for member, reason in rules.group_anti_affinity(members):
        report_violation(reason + where("unkai:compute:Instance", member), urns[member])


def zone_headroom(args, report_violation) -> None:
    """Zones short of headroom, from where the stack places every instance."""
    instances = {
        resource.name: {key: resource.props.get(key) for key in ("host", "vcpus", "memory_mb")}
        for resource in args.resources
        if resource.resource_type == "unkai:compute:Instance"
    }
    headroom = CONTEXT["headroom"]
    for _, reason in rules.zone_headroom(headroom["hosts"], instances, headroom["percent"]):
        report_violation(f"{reason} ({CONTEXT['file']}: {headroom['key']})")


PolicyPack(
    name="unkai-builtin",
    policies=[
        *(resource_policy(name, rule) for name, rule in rules.RESOURCE_RULES.items()),
        StackValidationPolicy(
            name="group-anti-affinity",
            description="No two members of an instance group share a host.",
            enforcement_level=level("group-anti-affinity"),
            validate=anti_affinity,
        ),
        StackValidationPolicy(
            name="zone-headroom",
            description="Each zone keeps a share of its vCPUs and memory free.",
            enforcement_level=level("zone-headroom"),
            validate=zone_headroom,
        ),
    ],
)
