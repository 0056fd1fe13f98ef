"""The environment: every noun of one deployment, keyed by name and cross-checked."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import AfterValidator, Field, JsonValue, model_validator

from unkai.errors import ConfigError
from unkai.model._base import DnsLabel, UnkaiModel, sorted_mapping
from unkai.model._compute import (
    Instance,
    InstanceGroup,
    InstanceTemplate,
    expand_group,
    instances_of,
)
from unkai.model._hosts import Host, HostPool, Zone
from unkai.model._images import LEAN_USER_DATA_KEYS, ContainerImage, VmImage
from unkai.model._kubernetes import Cluster, NodePool, Workload
from unkai.model._network import Network

__all__ = ["COLLECTIONS", "CrossReferenceError", "Environment", "ReferenceProblem"]

_Spec = TypeVar("_Spec", Instance, InstanceTemplate)

PolicyName = Literal[
    "secret-values", "non-root-with-limits", "pinned-images", "no-bridged-nic",
    "group-anti-affinity", "zone-headroom",
]  # fmt: skip
"""The policies of unkai's built-in pack (``unkai.policies``)."""

PolicyLevel = Literal["advisory", "mandatory", "disabled"]
"""How a policy's violation counts: reported, stops the command, or not checked."""

_PROJECT_POLICY = re.compile(r"[a-z0-9][a-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")


def _policy_key(value: str) -> str:
    if value in get_args(PolicyName) or _PROJECT_POLICY.fullmatch(value):
        return value
    raise ValueError(
        f"no policy {value!r}; allowed: {', '.join(get_args(PolicyName))}, or <pack>/<policy>"
        " for a policy of a pack in the project's policies/<pack>/ folder"
    )


PolicyKey = Annotated[str, AfterValidator(_policy_key)]
"""A policy an environment sets the level of: a built-in one (:data:`PolicyName`), or
``<pack>/<policy>`` for a policy of the project's pack in ``policies/<pack>/``."""

COLLECTIONS: tuple[str, ...] = (
    "zones",
    "host_pools",
    "hosts",
    "networks",
    "vm_images",
    "container_images",
    "instances",
    "instance_templates",
    "instance_groups",
    "clusters",
    "workloads",
)
"""The fields of :class:`Environment` that map names to named values, in field order."""


@dataclass(frozen=True)
class ReferenceProblem:
    """One inconsistency between the parts of an environment.

    Attributes:
        key_path: Dotted path of the offending key (``instance_groups.web.template``).
        message: What is wrong, in a phrase (``unknown instance template``).
        value: The offending value, if any.
        allowed: What would have been accepted (the defined names, for example).
    """

    key_path: str
    message: str
    value: str | None = None
    allowed: str | None = None

    def __str__(self) -> str:
        return str(self.to_config_error())

    def to_config_error(self, file: str | None = None) -> ConfigError:
        """Return the problem as a :class:`~unkai.errors.ConfigError` about ``file``.

        Args:
            file: The file the environment came from, if any.

        Returns:
            The error (not raised).
        """
        return ConfigError(
            self.message,
            file=file,
            key_path=self.key_path,
            value=self.value,
            allowed=self.allowed,
        )


class CrossReferenceError(ValueError):
    """The parts of an environment do not fit together.

    Raised inside :class:`Environment` validation, so callers see it wrapped in a
    ``pydantic.ValidationError`` whose entry has ``ctx["error"]`` set to this exception;
    :attr:`problems` then lists every problem found, not only the first. The message has
    one line per problem: ``<key path>: <message> (got '<value>'); allowed: <allowed>``.

    Args:
        problems: Every problem found, in a deterministic order.
    """

    def __init__(self, problems: Iterable[ReferenceProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def _sorted_collection(value: Mapping[str, Any]) -> dict[str, Any]:
    return sorted_mapping(value)


class Environment(UnkaiModel):
    """One deployment of the cloud (``local``, ``dev``, ``prod``): all its nouns.

    Every collection is a mapping from name to value, sorted by name, so validation errors
    have key paths such as ``instance_groups.web.machine_type``. A value's ``name`` is
    taken from its key: input may leave ``name`` out (as the YAML files do); when it is
    given it must equal the key. For Python callers a collection may also be given as a
    list or tuple of values, keyed by their names.

    Validation checks every reference between parts (machine types, images, networks,
    zones, hosts, pools, templates, clusters, container images) and raises
    :class:`CrossReferenceError` listing all problems at once.

    ``extends:`` is not part of the model: the environment loader resolves it before
    building this value. Secrets appear only as :class:`SecretRef` references.
    """

    name: DnsLabel = Field(description="Environment name, such as ``prod``.")
    project: DnsLabel | None = Field(
        default=None,
        description=(
            "The project it belongs to (``unkai.toml``'s name), set by the loader, never by"
            " a file: with the environment's name it prefixes the name of everything unkai"
            " makes, so two projects' ``local`` never meet."
        ),
    )
    description: str = Field(default="", description="What the environment is for.")
    zones: Annotated[Mapping[str, Zone], AfterValidator(_sorted_collection)] = Field(
        default_factory=dict, description="Zones by name."
    )
    host_pools: Annotated[Mapping[str, HostPool], AfterValidator(_sorted_collection)] = Field(
        default_factory=dict, description="Host pools by name."
    )
    hosts: Annotated[Mapping[str, Host], AfterValidator(_sorted_collection)] = Field(
        default_factory=dict, description="Hypervisor hosts by name."
    )
    networks: Annotated[Mapping[str, Network], AfterValidator(_sorted_collection)] = Field(
        default_factory=dict, description="Networks by name."
    )
    vm_images: Annotated[Mapping[str, VmImage], AfterValidator(_sorted_collection)] = Field(
        default_factory=dict, description="VM images by family name."
    )
    container_images: Annotated[
        Mapping[str, ContainerImage], AfterValidator(_sorted_collection)
    ] = Field(default_factory=dict, description="Container images by name.")
    instances: Annotated[Mapping[str, Instance], AfterValidator(_sorted_collection)] = Field(
        default_factory=dict, description="Standalone instances by name."
    )
    instance_templates: Annotated[
        Mapping[str, InstanceTemplate], AfterValidator(_sorted_collection)
    ] = Field(default_factory=dict, description="Instance templates by name.")
    instance_groups: Annotated[Mapping[str, InstanceGroup], AfterValidator(_sorted_collection)] = (
        Field(default_factory=dict, description="Instance groups by name.")
    )
    clusters: Annotated[Mapping[str, Cluster], AfterValidator(_sorted_collection)] = Field(
        default_factory=dict, description="Kubernetes clusters by name."
    )
    workloads: Annotated[Mapping[str, Workload], AfterValidator(_sorted_collection)] = Field(
        default_factory=dict, description="Kubernetes workloads by name."
    )
    settings: Annotated[Mapping[str, JsonValue], AfterValidator(_sorted_collection)] = Field(
        default_factory=dict, description="Free per-environment values, such as ``domain``."
    )
    policies: Annotated[Mapping[PolicyKey, PolicyLevel], AfterValidator(_sorted_collection)] = (
        Field(
            default_factory=dict,
            description=(
                "Policies and their level here (advisory: reported; mandatory: stops preview"
                " and up; disabled): the built-in pack's by name (none listed: it does not"
                " run), a project pack's as <pack>/<policy> (unlisted: the pack's own level)."
            ),
        )
    )

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        for field in COLLECTIONS:
            items = data.get(field)
            if isinstance(items, Mapping):
                data[field] = {
                    key: _named(field, key, item)
                    for key, item in sorted(items.items(), key=lambda kv: str(kv[0]))
                }
            elif isinstance(items, list | tuple):
                data[field] = _keyed(field, items)
        return data

    @model_validator(mode="after")
    def _check_references(self) -> Environment:
        problems = _References(self).check()
        if problems:
            raise CrossReferenceError(problems)
        return self

    @property
    def management_cluster(self) -> str | None:
        """The cluster whose operator keeps this environment's instance groups, if any.

        ``settings.management_cluster``. With one, each group is an ``InstanceGroup``
        object there and its members are the operator's (every slot placed and rendered
        ahead); without, ``unkai up`` makes the members and nothing acts on them between
        runs.
        """
        value = self.settings.get("management_cluster")
        return value if isinstance(value, str) else None

    def all_instances(self) -> tuple[Instance, ...]:
        """Every concrete instance: standalone ones and the members of every group.

        The members of a group the operator manages are its slots.

        Disks without ``size_gb`` get their backing image's ``disk_gb``, so every returned
        instance has concrete disk sizes. Pure: computed afresh on each call.

        Returns:
            The instances, sorted by name.
        """
        instances = [self._resolve_disks(instance) for instance in self.instances.values()]
        managed = self.management_cluster is not None
        for group in self.instance_groups.values():
            # Resolve once per template, not once per member: groups can be large.
            template = self._resolve_disks(self.instance_templates[group.template])
            instances.extend(expand_group(group, template, slots=managed))
        instances.extend(self.node_instances())
        return tuple(sorted(instances, key=lambda instance: instance.name))

    def node_instances(self) -> tuple[Instance, ...]:
        """The VMs of every ``vm`` node pool, named as their nodes, sorted by name.

        Those of a pool the operator keeps are its slots (:meth:`pool_nodes`).
        """
        nodes: list[Instance] = []
        for cluster_name, cluster in self.clusters.items():
            for pool in cluster.node_pools:
                if pool.template is None or pool.template not in self.instance_templates:
                    continue
                template = self._resolve_disks(self.instance_templates[pool.template])
                nodes.extend(instances_of(template, self.pool_nodes(cluster_name, pool)))
        return tuple(sorted(nodes, key=lambda instance: instance.name))

    def pool_nodes(self, cluster: str, pool: NodePool) -> tuple[str, ...]:
        """The node (and VM) names of a ``vm`` pool: its slots when the operator keeps it.

        With a management cluster, the operator makes, repairs, rolls and scales a ``vm``
        pool's nodes (as it keeps instance groups), so every name it may use is placed
        and rendered ahead; without one, ``unkai up`` makes ``size`` of them.
        """
        return pool.node_names(cluster, slots=self.management_cluster is not None)

    def kept_nodes(self) -> frozenset[str]:
        """The VMs the operator makes: every slot of every ``vm`` pool it keeps."""
        if self.management_cluster is None:
            return frozenset()
        return frozenset(
            name
            for cluster_name, cluster in self.clusters.items()
            for pool in cluster.node_pools
            if pool.kind == "vm"
            for name in self.pool_nodes(cluster_name, pool)
        )

    def node_network(self, template: str) -> str | None:
        """The network a ``vm`` pool's node serves its kubelet on, or ``None``.

        It is the first of ``template``'s networks that is a libvirt ``nat`` or
        ``isolated`` network: this machine is its gateway, so the API server reaches
        the kubelet there (``kubectl exec`` and ``logs``, resource metrics). A node
        reaches the API server itself through its QEMU user network.
        """
        spec = self.instance_templates.get(template)
        for name in () if spec is None else spec.networks:
            network = self.networks.get(name)
            if network is not None and network.mode in ("nat", "isolated"):
                return name
        return None

    def _resolve_disks(self, spec: _Spec) -> _Spec:
        if all(disk.size_gb is not None for disk in spec.disks):
            return spec
        disks = tuple(
            disk
            if disk.size_gb is not None or disk.backing_image is None
            else disk.model_copy(update={"size_gb": self.vm_images[disk.backing_image].disk_gb})
            for disk in spec.disks
        )
        return spec.model_copy(update={"disks": disks})

    def canonical_json(self) -> str:
        """The environment as canonical JSON: sorted keys, no whitespace, UTF-8 text.

        Returns:
            The same string for equal environments, whatever order they were built in.
        """
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )

    def fingerprint(self) -> str:
        """The SHA-256 of :meth:`canonical_json`, as 64 lowercase hex digits."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def _named(field: str, key: object, item: Any) -> Any:
    """Fill a value's name from its key, or check that the two agree."""
    if isinstance(item, Mapping):
        if "name" not in item:
            return {**item, "name": key}
        given = item["name"]
    elif isinstance(item, UnkaiModel):
        given = getattr(item, "name", key)
    else:
        return item  # not a mapping: pydantic reports the type error at this key
    if given != key:
        raise ValueError(
            f"{field}.{key}.name: {given!r} differs from its key {key!r};"
            " leave name out, it is taken from the key"
        )
    return item


def _keyed(field: str, items: list[Any] | tuple[Any, ...]) -> Any:
    """Key a list of named values by their names (the Python convenience form)."""
    keyed: dict[object, Any] = {}
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, Mapping) else getattr(item, "name", None)
        if name is None:
            raise ValueError(f"{field}.{index}: a value given in a list needs a name")
        if not isinstance(name, str):
            kind = type(name).__name__
            raise ValueError(f"{field}.{index}.name: must be a text name, not a {kind}")
        if name in keyed:
            raise ValueError(f"{field}.{index}: {name!r} is defined twice")
        keyed[name] = item
    return {key: keyed[key] for key in sorted(keyed, key=str)}


class _References:
    """Collects the cross-reference problems of one environment."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.problems: list[ReferenceProblem] = []

    def ref(self, key_path: str, kind: str, name: str | None, defined: Mapping[str, Any]) -> bool:
        """Record a problem unless ``name`` is unset or defined; return whether it resolved."""
        if name is None or name in defined:
            return name is not None
        self.problems.append(
            ReferenceProblem(
                key_path,
                f"unknown {kind}",
                value=name,
                allowed=f"one of {', '.join(defined)}" if defined else f"no {kind} is defined",
            )
        )
        return False

    def check(self) -> list[ReferenceProblem]:
        env = self.env
        for key, pool in env.host_pools.items():
            self.ref(f"host_pools.{key}.zone", "zone", pool.zone, env.zones)
        for key, host in env.hosts.items():
            self._host(key, host)
        for key, template in env.instance_templates.items():
            self._instance_properties(f"instance_templates.{key}", template)
        for key, instance in env.instances.items():
            self._instance(key, instance)
        for key, group in env.instance_groups.items():
            self.ref(
                f"instance_groups.{key}.template",
                "instance template",
                group.template,
                env.instance_templates,
            )
            self._member_collisions(key, group)
        for key, cluster in env.clusters.items():
            for index, node_pool in enumerate(cluster.node_pools):
                if node_pool.kind == "vm":
                    self._vm_pool(f"clusters.{key}.node_pools.{index}", key, cluster, node_pool)
        for key, workload in env.workloads.items():
            self.ref(f"workloads.{key}.cluster", "cluster", workload.cluster, env.clusters)
            self.ref(
                f"workloads.{key}.image", "container image", workload.image, env.container_images
            )
        management = env.settings.get("management_cluster")
        if management is not None and not isinstance(management, str):
            self.problems.append(
                ReferenceProblem(
                    "settings.management_cluster",
                    "must be the name of a cluster",
                    value=str(management),
                    allowed=f"one of {', '.join(env.clusters)}" if env.clusters else "none",
                )
            )
        elif isinstance(management, str):
            self.ref("settings.management_cluster", "cluster", management, env.clusters)
        return self.problems

    def _host(self, key: str, host: Host) -> None:
        env = self.env
        self.ref(f"hosts.{key}.zone", "zone", host.zone, env.zones)
        if not self.ref(f"hosts.{key}.pool", "host pool", host.pool, env.host_pools):
            return
        pool = env.host_pools[host.pool]
        if host.zone in env.zones and host.zone != pool.zone:
            self.problems.append(
                ReferenceProblem(
                    f"hosts.{key}.zone",
                    f"differs from the zone of host pool {pool.name!r}",
                    value=host.zone,
                    allowed=pool.zone,
                )
            )
        if host.memory_mb <= pool.reserved_memory_mb:
            self.problems.append(
                ReferenceProblem(
                    f"hosts.{key}.memory_mb",
                    f"is not more than the {pool.reserved_memory_mb} MiB host pool"
                    f" {pool.name!r} reserves for the hypervisor",
                    value=str(host.memory_mb),
                    allowed=f"more than {pool.reserved_memory_mb}",
                )
            )

    def _instance_properties(self, path: str, spec: Instance | InstanceTemplate) -> None:
        env = self.env
        if self.ref(f"{path}.image", "VM image", spec.image, env.vm_images):
            self._lean_user_data(path, spec, env.vm_images[spec.image])
        for index, network in enumerate(spec.networks):
            self.ref(f"{path}.networks.{index}", "network", network, env.networks)
        self.ref(f"{path}.zone", "zone", spec.zone, env.zones)
        for index, disk in enumerate(spec.disks):
            where = f"{path}.disks.{index}"
            found = self.ref(
                f"{where}.backing_image", "VM image", disk.backing_image, env.vm_images
            )
            if found and disk.backing_image is not None and disk.size_gb is not None:
                image = env.vm_images[disk.backing_image]
                if disk.size_gb < image.disk_gb:
                    self.problems.append(
                        ReferenceProblem(
                            f"{where}.size_gb",
                            f"is smaller than its backing image {image.name!r}",
                            value=str(disk.size_gb),
                            allowed=f"at least {image.disk_gb}",
                        )
                    )

    def _lean_user_data(self, path: str, spec: Instance | InstanceTemplate, image: VmImage) -> None:
        """A lean image runs only some cloud-init modules: user data for others is refused."""
        if image.profile != "lean" or not spec.user_data:
            return
        for key in sorted(set(spec.user_data) - LEAN_USER_DATA_KEYS):
            self.problems.append(
                ReferenceProblem(
                    f"{path}.user_data.{key}",
                    f"is not acted on by the lean image {image.name!r}: its cloud-init runs"
                    " only the modules unkai needs",
                    value=key,
                    allowed=(
                        f"one of {', '.join(sorted(LEAN_USER_DATA_KEYS))}; or profile: default"
                        " on the image, or a playbook baked into it"
                    ),
                )
            )

    def _instance(self, key: str, instance: Instance) -> None:
        env = self.env
        path = f"instances.{key}"
        self._instance_properties(path, instance)
        if self.ref(f"{path}.host", "host", instance.host, env.hosts):
            host = env.hosts[str(instance.host)]
            if instance.zone in env.zones and instance.zone != host.zone:
                self.problems.append(
                    ReferenceProblem(
                        f"{path}.zone",
                        f"differs from the zone of its pinned host {host.name!r}",
                        value=instance.zone,
                        allowed=host.zone,
                    )
                )
        if instance.group is not None:
            self.problems.append(
                ReferenceProblem(
                    f"{path}.group",
                    "is set by instance groups only; a standalone instance has none",
                    value=instance.group,
                    allowed="no value",
                )
            )

    def _vm_pool(self, path: str, cluster_name: str, cluster: Cluster, pool: NodePool) -> None:
        """A vm pool's template exists, fits its machine type and boots a node image."""
        env = self.env
        if not self.ref(
            f"{path}.template", "instance template", pool.template, env.instance_templates
        ):
            return
        template = env.instance_templates[str(pool.template)]
        modes = {env.networks[n].mode for n in template.networks if n in env.networks}
        if "user" not in modes or env.node_network(template.name) is None:
            self.problems.append(
                ReferenceProblem(
                    f"{path}.template",
                    f"template {template.name!r} needs a user network (its nodes reach the"
                    " API server through it) and a nat or isolated one (the API server"
                    " reaches their kubelets on it)",
                    value=", ".join(template.networks),
                    allowed="networks such as [default, nodes]: a user network, then an"
                    " isolated one",
                )
            )
        if template.machine_type != pool.machine_type:
            self.problems.append(
                ReferenceProblem(
                    f"{path}.machine_type",
                    f"differs from the machine type of its template {template.name!r}",
                    value=pool.machine_type,
                    allowed=template.machine_type,
                )
            )
        image = env.vm_images.get(template.image)
        if image is not None and image.kubernetes != cluster.kubernetes_version:
            self.problems.append(
                ReferenceProblem(
                    f"{path}.template",
                    f"boots VM image {image.name!r}, which bakes "
                    + (f"Kubernetes {image.kubernetes}" if image.kubernetes else "no node")
                    + f"; the cluster runs {cluster.kubernetes_version}",
                    value=str(pool.template),
                    allowed=(
                        f"a template whose image sets kubernetes: {cluster.kubernetes_version!r}"
                    ),
                )
            )
        if template.secrets and env.management_cluster is not None:
            self.problems.append(
                ReferenceProblem(
                    f"{path}.template",
                    f"template {template.name!r} has secrets; the VMs of a node pool the"
                    " operator keeps take none",
                    value=", ".join(sorted(template.secrets)),
                    allowed="a template without secrets (workloads get theirs as secret_env)",
                )
            )
        if pool.min_size != pool.max_size and env.management_cluster is None:
            self.problems.append(
                ReferenceProblem(
                    path,
                    "a vm node pool autoscales only when unkai's operator keeps it, which it"
                    " does in an environment with a management cluster",
                    value=f"min_size {pool.min_size}, max_size {pool.max_size}",
                    allowed=(
                        f"min_size and max_size {pool.size} (its size), or"
                        " settings.management_cluster set"
                    ),
                )
            )
        for name in env.pool_nodes(cluster_name, pool):
            if name in env.instances:
                self.problems.append(
                    ReferenceProblem(
                        path,
                        f"node name collides with instances.{name}",
                        value=name,
                        allowed="names not used by standalone instances",
                    )
                )

    def _member_collisions(self, key: str, group: InstanceGroup) -> None:
        # Up to max_size, or every slot of a managed group: autoscaling and updates may
        # create those members later.
        count = group.slots if self.env.management_cluster is not None else group.max_size
        for index in range(count):
            member = f"{group.name}-{index}"
            if member in self.env.instances:
                self.problems.append(
                    ReferenceProblem(
                        f"instance_groups.{key}",
                        f"member name collides with instances.{member}",
                        value=member,
                        allowed="names not used by standalone instances",
                    )
                )
