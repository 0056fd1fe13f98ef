"""VM images, libvirt networks and instances: resources of unkai's provider.

Each ``*_inputs`` function turns model values into the resource's inputs with the same
render functions ``unkai render`` uses, so what a reviewer reads is what is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pulumi

from unkai import model, render
from unkai._pins import pinned_version
from unkai.components._kind import KindResource
from unkai.kinds import (
    DiskSpec,
    ImageBuildInputs,
    ImageBuildState,
    InstanceInputs,
    InstanceState,
    NetworkInputs,
    NetworkState,
    VmImageInputs,
    VmImageState,
    VolumeInputs,
    VolumeState,
)


def image_build_inputs(image: model.VmImage, *, root: Path | None = None) -> ImageBuildInputs:
    """The build of ``image``, once for every host that boots it.

    A playbook to bake in (``image.playbook``) is resolved under the project ``root``
    (default: the working directory, where ``pulumi`` runs the program) and its content
    digest computed here, so the preview already shows an edited playbook as a
    replacement. A node image (``image.kubernetes``) bakes the node playbook
    (:func:`unkai.render.node_playbook`) and the node's Debian packages, with the
    containerd version unkai builds.

    Raises:
        ConfigError: The playbook does not exist.
    """
    playbook = digest = containerd = None
    packages = tuple(image.packages)
    if image.playbook is not None:
        path = render.resolve_playbook(image.playbook, root=root or Path.cwd())
        playbook, digest = str(path), render.playbook_digest(path)
    if image.kubernetes is not None:
        path = render.node_playbook(root=root or Path.cwd())
        playbook, digest = str(path), render.playbook_digest(path)
        packages = tuple(sorted({*packages, *model.KUBERNETES_NODE_PACKAGES}))
        containerd = pinned_version("containerd")
    return ImageBuildInputs(
        name=image.name,
        version=image.version,
        packages=packages,
        disk_gb=image.disk_gb,
        profile=image.profile,
        playbook=playbook,
        playbook_digest=digest,
        kubernetes=image.kubernetes,
        containerd=containerd,
    )


def vm_image_inputs(
    image: model.VmImage, host: model.Host, *, environment: str, root: Path | None = None
) -> VmImageInputs:
    """The image ``image`` of ``environment`` as it is uploaded to ``host``.

    Raises:
        ConfigError: The playbook to bake in does not exist.
    """
    return VmImageInputs(
        **dict(image_build_inputs(image, root=root)),
        environment=environment,
        libvirt_uri=host.libvirt_uri,
        boot_dir=render.boot_files_dir(environment, image),
    )


class ImageBuild(KindResource):
    """A VM image built into this machine's cache (``unkai:compute:ImageBuild``).

    Needs no host: the engine builds while the hosts are configured. Each host's
    :class:`VmImage` of it depends on it.
    """

    digest: pulumi.Output[str]
    disk_bytes: pulumi.Output[int]
    build_seconds: pulumi.Output[float]

    def __init__(
        self, name: str, args: ImageBuildInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, ImageBuildState, opts)


class VmImage(KindResource):
    """A Debian image built from packages and uploaded to a host (``unkai:compute:VmImage``).

    Unchanged inputs never rebuild; any change of content replaces the image, including
    a change of the content of a playbook baked in (``playbook_digest``).
    """

    digest: pulumi.Output[str]
    volume: pulumi.Output[str]
    volume_path: pulumi.Output[str]
    size_bytes: pulumi.Output[int]
    build_seconds: pulumi.Output[float]

    def __init__(
        self, name: str, args: VmImageInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, VmImageState, opts)


def network_inputs(
    network: model.Network,
    host: model.Host,
    *,
    environment: str,
    templates: render.Templates | None = None,
) -> NetworkInputs:
    """The libvirt network of ``network`` of ``environment`` on ``host`` (not for ``user``)."""
    return NetworkInputs(
        name=render.libvirt_network_name(environment, network.name),
        libvirt_uri=host.libvirt_uri,
        xml=render.render_network_xml(network, environment=environment, templates=templates),
    )


class Network(KindResource):
    """A libvirt network from the rendered XML (``unkai:compute:Network``)."""

    active: pulumi.Output[bool]

    def __init__(
        self, name: str, args: NetworkInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, NetworkState, opts)


def _disk_spec(environment: str, instance: model.Instance, disk: model.Disk) -> DiskSpec:
    return DiskSpec(
        volume=render.volume_name(environment, instance.name, disk.name),
        size_gb=disk.size_gb or 1,
    )


def volume_inputs(
    instance: model.Instance, host: model.Host, *, environment: str
) -> dict[str, VolumeInputs]:
    """The data volumes of ``instance`` (every disk but the boot disk) on ``host``, by disk."""
    return {
        disk.name: VolumeInputs(
            name=render.volume_name(environment, instance.name, disk.name),
            size_gb=disk.size_gb or 1,
            host=host.name,
            libvirt_uri=host.libvirt_uri,
        )
        for disk in instance.disks[1:]
    }


class Volume(KindResource):
    """A data volume that outlives its instance's replacements (``unkai:compute:Volume``)."""

    path: pulumi.Output[str]

    def __init__(
        self, name: str, args: VolumeInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, VolumeState, opts)


def _accelerator(name: str) -> Literal["kvm", "tcg"]:
    return "kvm" if name == "kvm" else "tcg"


def _instance_fields(
    instance: model.Instance,
    *,
    env: model.Environment,
    host: model.Host,
    templates: render.Templates | None,
) -> dict[str, object]:
    """Every input of ``instance`` on ``host`` but its domain XML, image and secrets."""
    files = render.render_cloud_init(instance, env, templates=templates)
    port = (
        render.ssh_port(env, instance)
        if any(env.networks[n].mode == "user" for n in instance.networks)
        else None
    )
    owner = render.owner(env)
    domain = render.domain_name(owner, instance.name)
    return {
        "name": domain,
        "host": host.name,
        "libvirt_uri": host.libvirt_uri,
        "host_address": host.address,
        "pool": render.STORAGE_POOL,
        "user_data": files["user-data"],
        "meta_data": files["meta-data"],
        "network_config": files["network-config"],
        # The boot disk is the VM's own; every other disk is a Volume (volume_inputs).
        "disks": (_disk_spec(owner, instance, instance.disks[0]),),
        "volumes": tuple(_disk_spec(owner, instance, d) for d in instance.disks[1:]),
        "seed_volume": render.seed_volume_name(owner, instance.name),
        "console_log": render.DEFAULT_CONSOLE_LOG.replace("{domain}", domain),
        "ssh_port": port,
        "memory_mb": instance.machine.memory_mb,
        "vcpus": instance.machine.cpus,
    }


def instance_inputs(
    instance: model.Instance,
    *,
    env: model.Environment,
    host: model.Host,
    accelerator: pulumi.Input[str],
    image_volume_path: pulumi.Input[str],
    secret_values: Mapping[str, pulumi.Input[str]] | None = None,
    templates: render.Templates | None = None,
) -> InstanceInputs:
    """The inputs of ``instance`` on ``host``, rendered exactly as ``unkai render`` does.

    ``accelerator`` (the host's, known once it is configured) decides the domain type,
    ``image_volume_path`` is the image volume its boot disk is layered over: both may be
    outputs of other resources, so the inputs are built unvalidated (the provider's
    check validates them). ``secret_values`` (variable → Pulumi secret, one per
    ``instance.secrets`` entry) are installed root-only in the guest on its first boot.
    ``templates`` (default: the built-ins) is where the domain and cloud-init templates
    are found: a project's own ``templates/`` first.
    """
    domain_xml = pulumi.Output.from_input(accelerator).apply(
        lambda acc: render.render_domain_xml(
            instance, env=env, accelerator=_accelerator(acc), templates=templates
        )
    )
    secret_env = (
        pulumi.Output.secret(dict(sorted(secret_values.items()))) if secret_values else None
    )
    # Some values are Outputs: built unvalidated (the provider's check validates them).
    fields = _instance_fields(instance, env=env, host=host, templates=templates)
    fields.update(domain_xml=domain_xml, image_volume_path=image_volume_path, secret_env=secret_env)
    return InstanceInputs.model_construct(**fields)  # type: ignore[arg-type]


def slot_values(
    instance: model.Instance,
    *,
    env: model.Environment,
    host: model.Host,
    accelerator: str,
    templates: render.Templates | None = None,
) -> dict[str, Any]:
    """What a managed group's slot holds: :func:`instance_inputs` for a known accelerator.

    Everything but the image volume (the group object's ``imageVolumes`` has each host's)
    and secret env (never in the object), as JSON values. The operator validates them with
    the ``Instance`` kind's model when it makes a member.
    """
    fields = _instance_fields(instance, env=env, host=host, templates=templates)
    fields["domain_xml"] = render.render_domain_xml(
        instance, env=env, accelerator=_accelerator(accelerator), templates=templates
    )
    inputs = InstanceInputs.model_construct(**fields)  # type: ignore[arg-type]
    return inputs.model_dump(mode="json", exclude={"image_volume_path", "secret_env"})


class Instance(KindResource):
    """A VM booted to "cloud-init finished" (``unkai:compute:Instance``).

    Memory and vCPU changes update it in place (with a restart); a change of image or
    cloud-init data replaces it, and the preview says which property forces that, and why.
    """

    state: pulumi.Output[str]
    running: pulumi.Output[bool]
    ip_addresses: pulumi.Output[list[str]]
    ssh_host: pulumi.Output[str]
    ssh_port: pulumi.Output[int]
    accelerator: pulumi.Output[str]
    boot_seconds: pulumi.Output[float]
    ssh_host_keys: pulumi.Output[list[str]]
    host: pulumi.Output[str]

    def __init__(
        self, name: str, args: InstanceInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, InstanceState, opts)
