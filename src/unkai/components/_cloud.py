"""The whole cloud of one environment: hosts, images, networks, instances, groups, clusters.

:class:`Cloud` is what ``stacks/cloud`` builds: it places every instance with the
planner, then creates, per host, the images and libvirt networks its instances use,
and the instances themselves (group members under their :class:`InstanceGroup`); then
the container images, each Kubernetes cluster with its node pools, and the workloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi

from unkai import model, render
from unkai.components._compute import KvmHost, kvm_host_inputs
from unkai.components._containers import ContainerImage, container_image_inputs
from unkai.components._groups import InstanceGroupManager, ManagedGroupArgs, manager_inputs
from unkai.components._kubernetes import (
    Cluster,
    NodePool,
    NodeSlots,
    Workload,
    add_kubernetes,
    clusters_root,
    secret_config,
)
from unkai.components._vms import (
    ImageBuild,
    Instance,
    Network,
    VmImage,
    Volume,
    image_build_inputs,
    instance_inputs,
    network_inputs,
    vm_image_inputs,
    volume_inputs,
)
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
        secrets: Member name → its secret values (variable → Pulumi secret).
        templates: Where the domain and cloud-init templates are found (the project's).
    """

    group: model.InstanceGroup
    members: tuple[tuple[model.Instance, model.Host], ...]
    env: model.Environment
    accelerators: Mapping[str, pulumi.Input[str]]
    images: Mapping[tuple[str, str], pulumi.Input[str]]
    secrets: Mapping[str, Mapping[str, pulumi.Input[str]]] = field(default_factory=dict)
    templates: render.Templates | None = None


class InstanceGroup(pulumi.ComponentResource):
    """N instances from one template, placed by the planner (``unkai:compute:InstanceGroup``)."""

    instances: dict[str, Instance]

    def __init__(
        self, name: str, args: InstanceGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("unkai:compute:InstanceGroup", name, None, opts)
        self.instances = {}
        for instance, host in args.members:
            member = f"{name}-{instance.name.removeprefix(args.group.name + '-')}"
            volumes = [
                Volume(f"{member}-{disk}", volume, pulumi.ResourceOptions(parent=self))
                for disk, volume in volume_inputs(
                    instance, host, environment=render.owner(args.env)
                ).items()
            ]
            self.instances[instance.name] = Instance(
                member,
                instance_inputs(
                    instance,
                    env=args.env,
                    host=host,
                    accelerator=args.accelerators[host.name],
                    image_volume_path=args.images[(instance.image, host.name)],
                    secret_values=args.secrets.get(instance.name),
                    templates=args.templates,
                ),
                pulumi.ResourceOptions(parent=self, depends_on=volumes),
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
        secrets: SecretRef name → value (Pulumi secrets) for the workloads' secret env
            and the instances' secrets; default: each read from the stack's config as a
            secret.
        placement: Where each instance ran after the last ``up`` (instance → host):
            placement is sticky (:func:`unkai.placement.place`).
        unavailable: Hosts that take no instance now (down, unreachable): theirs move.
        root: The project (default: the one around the current directory): its
            ``templates/`` override the built-ins and its ``playbooks/`` hold the images'
            playbooks, for deploy as for ``unkai render``.
    """

    env: model.Environment
    accelerator: Literal["auto", "kvm", "tcg"] = "auto"
    ssh_keys: tuple[str, ...] = ()
    clusters_root: Path | None = None
    secrets: Mapping[str, pulumi.Input[str]] | None = None
    placement: Mapping[str, str] | None = None
    unavailable: tuple[str, ...] = ()
    root: Path | None = None


class Cloud(pulumi.ComponentResource):
    """Every resource of an environment (``unkai:index:Cloud``).

    Built layer by layer, each by a method of its own: hosts (Ansible), then per host
    the images and libvirt networks its instances use, the instances (group members
    under their :class:`InstanceGroup`), the container images, and Kubernetes.

    Raises:
        pulumi.ConfigMissingError: a workload's secret is not in the stack's config.
    """

    hosts: dict[str, KvmHost]
    instances: dict[str, Instance]
    container_images: dict[str, ContainerImage]
    clusters: dict[str, Cluster]
    node_pools: dict[tuple[str, str], NodePool]
    workloads: dict[str, Workload]

    def __init__(
        self, name: str, args: CloudArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("unkai:index:Cloud", name, None, opts)
        self._name, self._env, self._secret_values = name, args.env, args.secrets
        self._root = args.root or project_root()
        self._templates = render.Templates(self._root)
        placement = place(args.env, previous=args.placement, unavailable=args.unavailable)
        for problem in placement.stranded:
            where = placement.host_of(problem.instance)
            pulumi.log.warn(
                f"{problem.instance} stays on {where}, which takes no instance now:"
                f" {problem.detail}"
            )
        instances = [render.with_keys(i, args.ssh_keys) for i in args.env.all_instances()]
        host_of = {i.name: args.env.hosts[placement.host_of(i.name)] for i in instances}

        self.hosts = self._hosts(sorted({h.name for h in host_of.values()}), args.accelerator)
        images = self._vm_images(instances, host_of)
        self._networks(instances, host_of)
        self.instances = self._instances(instances, host_of, images)
        self.container_images = self._container_images()
        kube = add_kubernetes(
            name,
            args.env,
            images=self.container_images,
            state_root=args.clusters_root or clusters_root(self._root),
            secrets=args.secrets,
            parent=self,
            templates=self._templates,
            vms=self.instances,
            node_slots=self._node_slots(instances, host_of, images),
        )
        self.clusters, self.node_pools, self.workloads = (
            kube.clusters, kube.node_pools, kube.workloads,
        )  # fmt: skip
        self.clusters_summary = kube.clusters_summary
        self.workloads_summary = kube.workloads_summary
        self.groups = self._managed_groups(instances, host_of, images)
        self._summarise()

    def _on_host(self, host_name: str) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=[self.hosts[host_name]])

    def _hosts(
        self, names: list[str], accelerator: Literal["auto", "kvm", "tcg"]
    ) -> dict[str, KvmHost]:
        """Every host that runs an instance, configured first by Ansible.

        Packages, libvirtd, the storage pool; its facts say which accelerator its VMs use.
        """
        return {
            host_name: KvmHost(
                f"{self._name}-host-{host_name}",
                kvm_host_inputs(
                    self._env.hosts[host_name],
                    env=self._env,
                    accelerator=accelerator,
                    templates=self._templates,
                ),
                pulumi.ResourceOptions(parent=self),
            )
            for host_name in names
        }

    def _vm_images(
        self, instances: list[model.Instance], host_of: Mapping[str, model.Host]
    ) -> dict[tuple[str, str], pulumi.Input[str]]:
        """Each image on each host that boots it: (image, host) → its volume's path.

        An image is built once (its ImageBuild needs no host, so it runs while the hosts
        are configured), then uploaded to each host once that host is ready.
        """
        builds = {
            image_name: ImageBuild(
                f"{self._name}-{image_name}-build",
                image_build_inputs(self._env.vm_images[image_name], root=self._root),
                pulumi.ResourceOptions(parent=self),
            )
            for image_name in sorted({i.image for i in instances})
        }
        images: dict[tuple[str, str], pulumi.Input[str]] = {}
        for image_name, host_name in sorted({(i.image, host_of[i.name].name) for i in instances}):
            image = VmImage(
                f"{self._name}-{image_name}-{host_name}",
                vm_image_inputs(
                    self._env.vm_images[image_name], self._env.hosts[host_name],
                    environment=render.owner(self._env), root=self._root,
                ),
                pulumi.ResourceOptions(
                    parent=self, depends_on=[self.hosts[host_name], builds[image_name]]
                ),
            )  # fmt: skip
            images[(image_name, host_name)] = image.volume_path
        return images

    def _networks(self, instances: list[model.Instance], host_of: Mapping[str, model.Host]) -> None:
        """The libvirt networks the instances use, on each of their hosts."""
        for net_name, host_name in sorted(
            {(n, host_of[i.name].name) for i in instances for n in i.networks}
        ):
            network = self._env.networks[net_name]
            if network.mode != "user":  # QEMU provides user networks per domain
                Network(
                    f"{self._name}-{net_name}-{host_name}",
                    network_inputs(
                        network,
                        self._env.hosts[host_name],
                        environment=render.owner(self._env),
                        templates=self._templates,
                    ),
                    self._on_host(host_name),
                )

    def _instances(
        self,
        instances: list[model.Instance],
        host_of: Mapping[str, model.Host],
        images: Mapping[tuple[str, str], pulumi.Input[str]],
    ) -> dict[str, Instance]:
        """Lone instances directly, group members under their InstanceGroup."""
        accelerators = {h: res.accelerator for h, res in self.hosts.items()}
        found: dict[str, Instance] = {}
        kept = self._env.kept_nodes()  # the operator makes them (:meth:`_node_slots`)
        for instance in instances:
            if instance.group is None and instance.name not in kept:
                host = host_of[instance.name]
                volumes = [
                    Volume(f"{self._name}-{instance.name}-{disk}", volume, self._on_host(host.name))
                    for disk, volume in volume_inputs(
                        instance, host, environment=render.owner(self._env)
                    ).items()
                ]
                found[instance.name] = Instance(
                    f"{self._name}-{instance.name}",
                    instance_inputs(
                        instance,
                        env=self._env,
                        host=host,
                        accelerator=accelerators[host.name],
                        image_volume_path=images[(instance.image, host.name)],
                        secret_values=self._secrets(instance),
                        templates=self._templates,
                    ),
                    pulumi.ResourceOptions(
                        parent=self, depends_on=[self.hosts[host.name], *volumes]
                    ),
                )
        if self._env.management_cluster is not None:
            return found  # the operator makes the members (:meth:`_managed_groups`)
        for group_name, group in sorted(self._env.instance_groups.items()):
            members = tuple((i, host_of[i.name]) for i in instances if i.group == group_name)
            component = InstanceGroup(
                f"{self._name}-{group_name}",
                InstanceGroupArgs(
                    group,
                    members,
                    self._env,
                    accelerators,
                    images,
                    secrets={i.name: self._secrets(i) for i, _ in members},
                    templates=self._templates,
                ),
                pulumi.ResourceOptions(parent=self),
            )
            found.update(component.instances)
        return found

    def _node_slots(
        self,
        instances: list[model.Instance],
        host_of: Mapping[str, model.Host],
        images: Mapping[tuple[str, str], pulumi.Input[str]],
    ) -> dict[tuple[str, str], NodeSlots]:
        """The slots of each ``vm`` pool the operator keeps, by ``(cluster, pool)``."""
        if self._env.management_cluster is None:
            return {}
        accelerators = {h: res.accelerator for h, res in self.hosts.items()}
        by_name = {i.name: i for i in instances}
        found = {}
        for cluster_name, cluster in sorted(self._env.clusters.items()):
            for pool in cluster.node_pools:
                if pool.kind != "vm":
                    continue
                names = self._env.pool_nodes(cluster_name, pool)
                found[(cluster_name, pool.name)] = NodeSlots(
                    slots=tuple((by_name[n], host_of[n]) for n in names),
                    accelerators=accelerators,
                    images=images,
                )
        return found

    def _managed_groups(
        self,
        instances: list[model.Instance],
        host_of: Mapping[str, model.Host],
        images: Mapping[tuple[str, str], pulumi.Input[str]],
    ) -> dict[str, InstanceGroupManager]:
        """Each group's object on the management cluster, whose operator makes its members.

        It follows the hosts and images of its slots and the cluster; the operator then
        makes the members there.
        """
        cluster_name = self._env.management_cluster
        if cluster_name is None:
            return {}
        cluster = self.clusters[cluster_name]
        accelerators = {h: res.accelerator for h, res in self.hosts.items()}
        found = {}
        for group_name, group in sorted(self._env.instance_groups.items()):
            slots = tuple((i, host_of[i.name]) for i in instances if i.group == group_name)
            hosts = sorted({host.name for _, host in slots})
            found[group_name] = InstanceGroupManager(
                f"{self._name}-{group_name}",
                manager_inputs(
                    ManagedGroupArgs(
                        group=group,
                        slots=slots,
                        env=self._env,
                        cluster=cluster_name,
                        kubeconfig=cluster.kubeconfig,
                        cluster_ca=cluster.ca_fingerprint,
                        accelerators=accelerators,
                        images=images,
                        templates=self._templates,
                        secrets=self._secrets(slots[0][0]) if slots else None,
                    )
                ),
                pulumi.ResourceOptions(
                    parent=self, depends_on=[cluster, *(self.hosts[h] for h in hosts)]
                ),
            )
        return found

    def _secrets(self, instance: model.Instance) -> dict[str, pulumi.Input[str]]:
        """The values of an instance's secrets (variable → Pulumi secret)."""
        given = self._secret_values or {}
        return {
            variable: given.get(ref.name) or secret_config(ref.name)
            for variable, ref in instance.secrets.items()
        }

    def _container_images(self) -> dict[str, ContainerImage]:
        return {
            image_name: ContainerImage(
                f"{self._name}-{image_name}",
                container_image_inputs(image, self._env, templates=self._templates),
                pulumi.ResourceOptions(parent=self),
            )
            for image_name, image in sorted(self._env.container_images.items())
        }

    def _summarise(self) -> None:
        """The outputs ``unkai up`` prints: per layer, what came up."""
        self.images_summary: dict[str, Any] = {
            image_name: pulumi.Output.all(
                reference=res.reference, image_id=res.image_id, size_bytes=res.size_bytes,
                build_seconds=res.build_seconds,
            )
            for image_name, res in self.container_images.items()
        }  # fmt: skip
        self.summary: dict[str, Any] = {
            vm: pulumi.Output.all(
                host=res.host, state=res.state, ssh_port=res.ssh_port, ips=res.ip_addresses,
                accelerator=res.accelerator, boot_seconds=res.boot_seconds,
                host_keys=res.ssh_host_keys,
            )
            for vm, res in sorted(self.instances.items())
        }  # fmt: skip
        self.hosts_summary: dict[str, Any] = {
            h: pulumi.Output.all(
                accelerator=res.accelerator, reason=res.accelerator_reason,
                cpus=res.cpus, memory_mb=res.memory_mb,
            )
            for h, res in self.hosts.items()
        }  # fmt: skip
        self.groups_summary: dict[str, Any] = {
            name: pulumi.Output.all(
                target=res.target, healthy=res.healthy, updated=res.updated, members=res.members
            )
            for name, res in self.groups.items()
        }
        self.register_outputs(
            {
                "hosts": self.hosts_summary,
                "instances": self.summary,
                "instance_groups": self.groups_summary,
                "container_images": self.images_summary,
                "clusters": self.clusters_summary,
                "workloads": self.workloads_summary,
            }
        )
