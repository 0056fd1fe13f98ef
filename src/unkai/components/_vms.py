"""VM images, libvirt networks and instances: resources of unkai's provider.

Each ``*Args.from_model`` turns model values into the resource's inputs with the same
render functions ``unkai render`` uses, so what a reviewer reads is what is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi

from unkai import model, render


@dataclass(frozen=True)
class VmImageArgs:
    """Inputs of :class:`VmImage`: an image family built for one host."""

    name: str
    version: str
    packages: tuple[str, ...]
    disk_gb: int
    libvirt_uri: str
    boot_dir: str
    pool: str = render.STORAGE_POOL
    suite: str = "bookworm"
    playbook: str | None = None
    playbook_digest: str | None = None

    @classmethod
    def from_model(
        cls, image: model.VmImage, host: model.Host, *, root: Path | None = None
    ) -> VmImageArgs:
        """The image ``image`` as it is built for ``host``.

        A playbook to bake in (``image.playbook``) is resolved under the project
        ``root`` (default: the working directory, where ``pulumi`` runs the program) and
        its content digest computed here, so the preview already shows an edited
        playbook as a replacement.

        Raises:
            ConfigError: The playbook does not exist.
        """
        playbook = digest = None
        if image.playbook is not None:
            path = render.resolve_playbook(image.playbook, root=root or Path.cwd())
            playbook, digest = str(path), render.playbook_digest(path)
        return cls(
            name=image.name,
            version=image.version,
            packages=tuple(image.packages),
            disk_gb=image.disk_gb,
            libvirt_uri=host.libvirt_uri,
            boot_dir=render.boot_files_dir(image),
            playbook=playbook,
            playbook_digest=digest,
        )


class VmImage(pulumi.CustomResource):
    """A Debian image built from packages and uploaded to a host (``unkai:compute:VmImage``).

    Unchanged inputs never rebuild; any change of content replaces the image, including
    a change of the content of a playbook baked in (``playbook_digest``).
    """

    digest: pulumi.Output[str]
    volume: pulumi.Output[str]
    volume_path: pulumi.Output[str]
    size_bytes: pulumi.Output[float]
    build_seconds: pulumi.Output[float]

    def __init__(
        self, name: str, args: VmImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "name": args.name,
            "version": args.version,
            "packages": list(args.packages),
            "disk_gb": args.disk_gb,
            "libvirt_uri": args.libvirt_uri,
            "pool": args.pool,
            "boot_dir": args.boot_dir,
            "suite": args.suite,
            "playbook": args.playbook,
            "playbook_digest": args.playbook_digest,
            "digest": None,
            "volume": None,
            "volume_path": None,
            "size_bytes": None,
            "build_seconds": None,
        }
        super().__init__("unkai:compute:VmImage", name, props, opts)


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of :class:`Network`."""

    name: str
    libvirt_uri: str
    xml: str

    @classmethod
    def from_model(cls, network: model.Network, host: model.Host) -> NetworkArgs:
        """The libvirt network of ``network`` on ``host`` (not for ``user`` networks)."""
        return cls(
            name=render.libvirt_network_name(network.name),
            libvirt_uri=host.libvirt_uri,
            xml=render.render_network_xml(network),
        )


class Network(pulumi.CustomResource):
    """A libvirt network from the rendered XML (``unkai:compute:Network``)."""

    active: pulumi.Output[bool]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "name": args.name,
            "libvirt_uri": args.libvirt_uri,
            "xml": args.xml,
            "active": None,
        }
        super().__init__("unkai:compute:Network", name, props, opts)


def _pattern_path(pattern: str, instance: model.Instance, disk: str = "") -> str:
    return pattern.replace("{instance}", instance.name).replace("{disk}", disk)


class Instance(pulumi.CustomResource):
    """A VM booted to "cloud-init finished" (``unkai:compute:Instance``).

    Memory and vCPU changes update it in place (with a restart); a change of image or
    cloud-init data replaces it, and the preview says which property forces that.
    """

    state: pulumi.Output[str]
    running: pulumi.Output[bool]
    ip_addresses: pulumi.Output[list[str]]
    ssh_host: pulumi.Output[str]
    ssh_port: pulumi.Output[float]
    accelerator: pulumi.Output[str]
    boot_seconds: pulumi.Output[float]
    host: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        instance: model.Instance,
        env: model.Environment,
        host: model.Host,
        accelerator: pulumi.Input[str],
        image_volume_path: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        files = render.render_cloud_init(instance, env)
        domain_xml = pulumi.Output.from_input(accelerator).apply(
            lambda acc: render.render_domain_xml(instance, env=env, accelerator=acc)
        )
        port = (
            render.ssh_port(env, instance)
            if any(env.networks[n].mode == "user" for n in instance.networks)
            else None
        )
        props = {
            "name": instance.name,
            "host": host.name,
            "libvirt_uri": host.libvirt_uri,
            "pool": render.STORAGE_POOL,
            "domain_xml": domain_xml,
            "user_data": files["user-data"],
            "meta_data": files["meta-data"],
            "network_config": files["network-config"],
            "image_volume_path": image_volume_path,
            "disks": [
                {"volume": render.volume_name(instance, d.name), "size_gb": d.size_gb}
                for d in instance.disks
            ],
            "seed_volume": f"{instance.name}-seed.iso",
            "console_log": _pattern_path(render.DEFAULT_CONSOLE_LOG, instance),
            "ssh_port": port,
            "memory_mb": instance.machine.memory_mb,
            "vcpus": instance.machine.cpus,
            "running": True,
            "state": None,
            "ip_addresses": None,
            "ssh_host": None,
            "accelerator": None,
            "boot_seconds": None,
        }
        super().__init__("unkai:compute:Instance", name, props, opts)
