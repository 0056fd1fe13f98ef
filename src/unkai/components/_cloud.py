"""The whole cloud of one environment: hosts, images, networks, instances, groups.

:class:`Cloud` is what ``stacks/cloud`` builds: it places every instance with the
planner, then creates, per host, the images and libvirt networks its instances use,
and the instances themselves (group members under their :class:`InstanceGroup`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from unkai import model
from unkai.components._vms import Instance, Network, NetworkArgs, VmImage, VmImageArgs
from unkai.placement import place


@dataclass(frozen=True)
class InstanceGroupArgs:
    """Inputs of :class:`InstanceGroup`.

    Attributes:
        group: The group.
        members: Its member instances (``expand_group``), each with the host it was placed on.
        env: The environment they belong to.
        accelerators: Accelerator of each host, by host name.
        images: Volume path of each (image, host) pair's uploaded image.
    """

    group: model.InstanceGroup
    members: tuple[tuple[model.Instance, model.Host], ...]
    env: model.Environment
    accelerators: Mapping[str, pulumi.Input[str]]
    images: Mapping[tuple[str, str], pulumi.Input[str]]


class InstanceGroup(pulumi.ComponentResource):
    """N instances from one template, placed by the planner (``unkai:compute:InstanceGroup``)."""

    instances: dict[str, Instance]

    def __init__(
        self, name: str, args: InstanceGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("unkai:compute:InstanceGroup", name, None, opts)
        self.instances = {}
        for instance, host in args.members:
            self.instances[instance.name] = Instance(
                f"{name}-{instance.name.removeprefix(args.group.name + '-')}",
                instance=instance,
                env=args.env,
                host=host,
                accelerator=args.accelerators[host.name],
                image_volume_path=args.images[(instance.image, host.name)],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"size": len(self.instances)})


@dataclass(frozen=True)
class CloudArgs:
    """Inputs of :class:`Cloud`.

    Attributes:
        env: The resolved environment.
        accelerators: ``kvm`` or ``tcg`` per host name (from each host's facts).
    """

    env: model.Environment
    accelerators: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class Cloud(pulumi.ComponentResource):
    """Every VM-side resource of an environment (``unkai:index:Cloud``)."""

    instances: dict[str, Instance]

    def __init__(
        self, name: str, args: CloudArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("unkai:index:Cloud", name, None, opts)
        env = args.env
        placement = place(env)
        instances = env.all_instances()
        host_of = {i.name: env.hosts[placement.host_of(i.name)] for i in instances}
        child = pulumi.ResourceOptions(parent=self)

        images: dict[tuple[str, str], pulumi.Input[str]] = {}
        for image_name, host_name in sorted({(i.image, host_of[i.name].name) for i in instances}):
            host = env.hosts[host_name]
            image = VmImage(
                f"{name}-{image_name}-{host_name}",
                VmImageArgs.from_model(env.vm_images[image_name], host),
                child,
            )
            images[(image_name, host_name)] = image.volume_path

        networks = sorted(
            {(n, host_of[i.name].name) for i in instances for n in i.networks}
        )
        for net_name, host_name in networks:
            network = env.networks[net_name]
            if network.mode != "user":  # QEMU provides user networks per domain
                Network(
                    f"{name}-{net_name}-{host_name}",
                    NetworkArgs.from_model(network, env.hosts[host_name]),
                    child,
                )

        self.instances = {}
        for instance in instances:
            if instance.group is None:
                host = host_of[instance.name]
                self.instances[instance.name] = Instance(
                    f"{name}-{instance.name}",
                    instance=instance,
                    env=env,
                    host=host,
                    accelerator=args.accelerators[host.name],
                    image_volume_path=images[(instance.image, host.name)],
                    opts=child,
                )
        for group_name, group in sorted(env.instance_groups.items()):
            members = tuple(
                (i, host_of[i.name]) for i in instances if i.group == group_name
            )
            component = InstanceGroup(
                f"{name}-{group_name}",
                InstanceGroupArgs(group, members, env, args.accelerators, images),
                child,
            )
            self.instances.update(component.instances)

        summary: dict[str, Any] = {
            vm: pulumi.Output.all(
                host=res.host, state=res.state, ssh_port=res.ssh_port, ips=res.ip_addresses,
                accelerator=res.accelerator, boot_seconds=res.boot_seconds,
            )
            for vm, res in sorted(self.instances.items())
        }  # fmt: skip
        self.summary = summary
        self.register_outputs({"instances": summary})
