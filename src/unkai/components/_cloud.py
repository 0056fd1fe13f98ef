"""The whole cloud of one environment: hosts, images, networks, instances, groups, clusters.

:class:`Cloud` is what ``stacks/cloud`` builds: it places every instance with the
planner, then creates, per host, the images and libvirt networks its instances use,
and the instances themselves (group members under their :class:`InstanceGroup`); then
the container images, each Kubernetes cluster with its node pools, and the workloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pulumi

from unkai import model
from unkai.components._compute import KvmHost, KvmHostArgs
from unkai.components._containers import ContainerImage, ContainerImageArgs
from unkai.components._kubernetes import Cluster, NodePool, Workload, add_kubernetes, clusters_root
from unkai.components._vms import Instance, Network, NetworkArgs, VmImage, VmImageArgs
from unkai.placement import place
from unkai.toolchain import project_root


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
        accelerator: ``auto``, ``kvm`` or ``tcg``: what each host's playbook should
            use (``unkai up`` passes what the KVM probe found). The accelerator each
            host reports decides its domains' type.
        ssh_keys: Public keys authorised on every instance besides its own (a stack's
            operator key, kept out of the environment files).
        clusters_root: Where local clusters keep their state (default:
            ``<project>/.unkai/clusters``).
        secrets: SecretRef name → value (Pulumi secrets) for the workloads' secret env;
            default: each read from the stack's config as a secret.
    """

    env: model.Environment
    accelerator: Literal["auto", "kvm", "tcg"] = "auto"
    ssh_keys: tuple[str, ...] = ()
    clusters_root: Path | None = None
    secrets: Mapping[str, pulumi.Input[str]] | None = None


class Cloud(pulumi.ComponentResource):
    """Every resource of an environment (``unkai:index:Cloud``).

    Raises:
        pulumi.ConfigMissingError: a workload's secret is not in the stack's config.
    """

    instances: dict[str, Instance]
    container_images: dict[str, ContainerImage]
    clusters: dict[str, Cluster]
    node_pools: dict[tuple[str, str], NodePool]
    workloads: dict[str, Workload]

    def __init__(
        self, name: str, args: CloudArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("unkai:index:Cloud", name, None, opts)
        env = args.env
        placement = place(env)
        instances = [
            i.model_copy(update={"ssh_keys": (*i.ssh_keys, *args.ssh_keys)})
            for i in env.all_instances()
        ]
        host_of = {i.name: env.hosts[placement.host_of(i.name)] for i in instances}
        child = pulumi.ResourceOptions(parent=self)

        # Every host that runs an instance is configured first (Ansible): packages,
        # libvirtd, the storage pool; its facts say which accelerator its VMs use.
        self.hosts: dict[str, KvmHost] = {}
        for host_name in sorted({h.name for h in host_of.values()}):
            self.hosts[host_name] = KvmHost(
                f"{name}-host-{host_name}",
                KvmHostArgs.from_host(env.hosts[host_name], accelerator=args.accelerator),
                child,
            )
        accelerators = {h: res.accelerator for h, res in self.hosts.items()}

        def on_host(host_name: str) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=[self.hosts[host_name]])

        images: dict[tuple[str, str], pulumi.Input[str]] = {}
        for image_name, host_name in sorted({(i.image, host_of[i.name].name) for i in instances}):
            host = env.hosts[host_name]
            image = VmImage(
                f"{name}-{image_name}-{host_name}",
                VmImageArgs.from_model(env.vm_images[image_name], host, root=project_root()),
                on_host(host_name),
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
                    on_host(host_name),
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
                    accelerator=accelerators[host.name],
                    image_volume_path=images[(instance.image, host.name)],
                    opts=on_host(host.name),
                )
        for group_name, group in sorted(env.instance_groups.items()):
            members = tuple(
                (i, host_of[i.name]) for i in instances if i.group == group_name
            )
            component = InstanceGroup(
                f"{name}-{group_name}",
                InstanceGroupArgs(group, members, env, accelerators, images),
                child,
            )
            self.instances.update(component.instances)

        self.container_images = {
            image_name: ContainerImage(
                f"{name}-{image_name}", ContainerImageArgs.from_model(image, env), child
            )
            for image_name, image in sorted(env.container_images.items())
        }
        images_summary: dict[str, Any] = {
            image_name: pulumi.Output.all(
                reference=res.reference, image_id=res.image_id, size_bytes=res.size_bytes,
                build_seconds=res.build_seconds,
            )
            for image_name, res in self.container_images.items()
        }  # fmt: skip
        self.images_summary = images_summary

        # Clusters (control plane, then node pools) and the workloads on them, each
        # pinned to the image its ContainerImage built.
        kube = add_kubernetes(
            name,
            env,
            images=self.container_images,
            state_root=args.clusters_root or clusters_root(project_root()),
            secrets=args.secrets,
            parent=self,
        )
        self.clusters, self.node_pools, self.workloads = (
            kube.clusters, kube.node_pools, kube.workloads,
        )  # fmt: skip
        self.clusters_summary = kube.clusters_summary
        self.workloads_summary = kube.workloads_summary

        summary: dict[str, Any] = {
            vm: pulumi.Output.all(
                host=res.host, state=res.state, ssh_port=res.ssh_port, ips=res.ip_addresses,
                accelerator=res.accelerator, boot_seconds=res.boot_seconds,
            )
            for vm, res in sorted(self.instances.items())
        }  # fmt: skip
        self.summary = summary
        self.hosts_summary: dict[str, Any] = {
            h: pulumi.Output.all(
                accelerator=res.accelerator, reason=res.accelerator_reason,
                cpus=res.cpus, memory_mb=res.memory_mb,
            )
            for h, res in self.hosts.items()
        }  # fmt: skip
        self.register_outputs(
            {
                "hosts": self.hosts_summary,
                "instances": summary,
                "container_images": images_summary,
                "clusters": self.clusters_summary,
                "workloads": self.workloads_summary,
            }
        )
