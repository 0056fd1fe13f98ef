"""A managed instance group as the ``InstanceGroup`` object its operator reconciles.

The object's ``spec`` is the group's policy (size and bounds, rolling update, health
check, autoscaling) and its slots: for each member name the group may ever use, the host
the planner placed it on and the ``Instance`` inputs rendered for it, exactly as for a
plain instance (:func:`unkai.components.slot_values`), with their digest. The
operator makes each member from those inputs (:mod:`unkai.operator._members`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import yaml

from unkai import model, render
from unkai.components._kind import KindResource
from unkai.components._vms import slot_values
from unkai.kinds import InstanceGroupManagerInputs, InstanceGroupManagerState


def slot_digest(values: Mapping[str, Any]) -> str:
    """What a member of a slot is made from, as a short digest (pure).

    Any change of the slot's values (domain XML, cloud-init, host) is a new digest; the
    operator adds the host's image volume, so a new image is one too. Members of an old
    digest are rolled.
    """
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def group_object_name(env: model.Environment, group: model.InstanceGroup) -> str:
    """The ``InstanceGroup`` object's name: the group's, after its environment's owner."""
    return render.instance_group_name(env, group)


def instance_group_object(
    env: model.Environment,
    group: model.InstanceGroup,
    slots: Sequence[tuple[str, Mapping[str, Any]]],
) -> dict[str, Any]:
    """The ``InstanceGroup`` object of ``group``, with its slots: (member name, values).

    The object ``unkai render`` writes (:func:`unkai.render.instance_group_policy`), with
    each slot's values: :func:`unkai.components.slot_values` of that member on the host the
    planner placed it on.
    """
    obj = render.instance_group_policy(env, group)
    obj["spec"]["slots"] = slot_entries(slots)
    return obj


def slot_entries(slots: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """An object's ``slots``: each (VM name, values) with its host and digest (pure).

    The shape both an ``InstanceGroup`` and a ``vm`` pool's ``NodePool`` carry.
    """
    return [
        {"name": name, "host": values["host"], "digest": slot_digest(values), "inputs": values}
        for name, values in slots
    ]


def rendered_slots(
    slots: Sequence[tuple[model.Instance, model.Host]],
    *,
    env: model.Environment,
    accelerators: Mapping[str, str],
    templates: render.Templates | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Each slot's (VM name, :func:`slot_values` on its host, with that host's accelerator)."""
    return [
        (
            instance.name,
            slot_values(
                instance,
                env=env,
                host=host,
                accelerator=accelerators[host.name],
                templates=templates,
            ),
        )
        for instance, host in slots
    ]


def slot_image_volumes(
    slots: Sequence[tuple[model.Instance, model.Host]],
    images: Mapping[tuple[str, str], pulumi.Input[str]],
) -> dict[str, pulumi.Input[str]]:
    """Host → the image volume its slots' boot disks are layered over."""
    return {
        host: images[(image, host)] for image, host in sorted({(i.image, h.name) for i, h in slots})
    }


@dataclass(frozen=True)
class ManagedGroupArgs:
    """Inputs of :class:`ManagedGroup`.

    Attributes:
        group: The group.
        slots: Each slot's instance (``expand_group(..., slots=True)``) and its host.
        env: The environment.
        cluster: The management cluster's name.
        kubeconfig: Its ``kubeconfig`` output.
        cluster_ca: Its ``ca_fingerprint`` output.
        accelerators: Accelerator of each host, by host name (the KvmHosts' outputs).
        images: Volume path of each (image, host) pair's uploaded image.
        templates: Where the domain and cloud-init templates are found (the project's).
        secrets: The template's secret env: variable → Pulumi secret (one per entry of
            its ``secrets``).
    """

    group: model.InstanceGroup
    slots: tuple[tuple[model.Instance, model.Host], ...]
    env: model.Environment
    cluster: str
    kubeconfig: pulumi.Input[str]
    cluster_ca: pulumi.Input[str]
    accelerators: Mapping[str, pulumi.Input[str]]
    images: Mapping[tuple[str, str], pulumi.Input[str]]
    templates: render.Templates | None = None
    secrets: Mapping[str, pulumi.Input[str]] | None = None


class InstanceGroupManager(KindResource):
    """A managed group's object on its management cluster.

    ``unkai:compute:InstanceGroupManager``.
    """

    target: pulumi.Output[int]
    healthy: pulumi.Output[int]
    updated: pulumi.Output[int]
    members: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        args: InstanceGroupManagerInputs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, args, InstanceGroupManagerState, opts)


def manager_inputs(args: ManagedGroupArgs) -> InstanceGroupManagerInputs:
    """The group's object, rendered once every slot host's accelerator is known.

    The template's secret env goes as a Pulumi secret, which the provider keeps in the
    management cluster for the operator (never in the object, the state or a log).
    """
    group, env = args.group, args.env
    hosts = sorted({host.name for _, host in args.slots})

    def manifest(accelerators: list[str]) -> str:
        by_host = dict(zip(hosts, accelerators, strict=True))
        slots = rendered_slots(args.slots, env=env, accelerators=by_host, templates=args.templates)
        obj = instance_group_object(env, group, slots)
        return yaml.safe_dump(obj, sort_keys=False, width=1000)

    image_volumes = slot_image_volumes(args.slots, args.images)
    return InstanceGroupManagerInputs.model_construct(
        cluster=args.cluster,
        kubeconfig=args.kubeconfig,  # type: ignore[arg-type]  # an Output
        cluster_ca=args.cluster_ca,  # type: ignore[arg-type]  # an Output
        name=group_object_name(env, group),
        size=group.size,
        min_size=group.min_size,
        max_size=group.max_size,
        manifest=pulumi.Output.all(*(args.accelerators[h] for h in hosts)).apply(manifest),  # type: ignore[arg-type]
        image_volumes=image_volumes,  # type: ignore[arg-type]  # Outputs
        secret_env=(
            pulumi.Output.secret(dict(sorted(args.secrets.items()))) if args.secrets else None  # type: ignore[arg-type]
        ),
        timeout=1800,
    )
