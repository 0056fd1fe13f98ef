"""One VM on one host, declared alone: no environment, no YAML.

:class:`VirtualMachine` is the smallest thing unkai deploys: an instance, the image it
boots and the host it runs on. It is the same resources a :class:`~unkai.components.Cloud`
makes for an instance (the host configured by Ansible, the image uploaded to it, the data
volumes, the VM), built from an environment of just these values, owned by the Pulumi
project and stack that declare it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
from pydantic import ValidationError

from unkai import model
from unkai.components._cloud import Cloud, CloudArgs
from unkai.components._vms import Instance
from unkai.environments import explain_validation_error
from unkai.errors import UnkaiError
from unkai.toolchain import cached_probe, find_project

USER_NETWORK = model.Network(name="default", mode="user")
"""QEMU user networking: the VM is reached on a port of the host's loopback."""


@dataclass(frozen=True)
class VirtualMachineArgs:
    """Inputs of :class:`VirtualMachine`.

    Attributes:
        instance: The VM: machine type, disks, networks, cloud-init data. Its ``image``
            names ``image`` and its ``zone`` is the host's.
        image: The image it boots, built and uploaded to ``host``.
        host: The KVM host it runs on, configured by Ansible first (packages, libvirtd,
            the storage pool).
        networks: The networks ``instance.networks`` names (default: QEMU user
            networking, named ``default``); an instance that names none is attached to
            each of them.
        accelerator: ``kvm`` or ``tcg``; None: what the KVM probe found on this machine.
        ssh_keys: Public keys authorised on the VM besides its own.
        secrets: The values of ``instance.secrets`` by SecretRef name (Pulumi secrets);
            default: each read from the stack's config as a secret.
        settings: Environment settings the templates read (``ssh_port_base``, ``domain``).
        root: The project whose ``templates/`` and ``playbooks/`` override the built-ins
            (default: the one around the program, when there is one).
    """

    instance: model.Instance
    image: model.VmImage
    host: model.Host
    networks: Sequence[model.Network] = (USER_NETWORK,)
    accelerator: Literal["kvm", "tcg"] | None = None
    ssh_keys: tuple[str, ...] = ()
    secrets: Mapping[str, pulumi.Input[str]] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    root: Path | None = None


def machine_environment(args: VirtualMachineArgs, *, name: str, project: str) -> model.Environment:
    """The environment of one VM: its host, zone, image and networks, and nothing else.

    Named like the stack (``name``) and owned by the Pulumi ``project``, so everything it
    makes is named ``<project>-<stack>-…`` like a whole environment's.

    Raises:
        ConfigError: The values do not fit together (the instance names another image, a
            network that is not given, a zone that is not the host's).
    """
    host = args.host
    instance = args.instance
    if not instance.networks:
        instance = instance.model_copy(update={"networks": tuple(n.name for n in args.networks)})
    pools = {host.pool: model.HostPool(name=host.pool, zone=host.zone)} if host.pool else {}
    document = {
        "name": name,
        "project": project,
        "zones": {host.zone: model.Zone(name=host.zone)},
        "host_pools": pools,
        "hosts": {host.name: host},
        "networks": {n.name: n for n in args.networks},
        "vm_images": {args.image.name: args.image},
        "instances": {instance.name: instance},
        "settings": dict(args.settings),
    }
    try:
        return model.Environment.model_validate(document)
    except ValidationError as err:
        raise explain_validation_error(
            err, document=document, root=model.Environment,
            headline=f"the VM {args.instance.name} does not fit its host, image and networks",
        ) from None  # fmt: skip


class VirtualMachine(pulumi.ComponentResource):
    """A VM with its image on its host, without an environment (``unkai:compute:VirtualMachine``).

    Attributes:
        instance: The VM's resource: ``ssh_host``, ``ssh_port``, ``ip_addresses``,
            ``state``, ``boot_seconds``.
        cloud: The resources made for it (host, image, volumes, VM).
    """

    instance: Instance
    cloud: Cloud

    def __init__(
        self, name: str, args: VirtualMachineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("unkai:compute:VirtualMachine", name, None, opts)
        try:
            env = machine_environment(args, name=pulumi.get_stack(), project=pulumi.get_project())
        except UnkaiError as err:
            raise pulumi.RunError(f"VirtualMachine {name}: {err}") from None
        self.cloud = Cloud(
            name,
            CloudArgs(
                env,
                args.accelerator or cached_probe().accelerator,  # type: ignore[arg-type]
                args.ssh_keys,
                secrets=args.secrets,
                root=args.root or _project_around(),
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.instance = self.cloud.instances[args.instance.name]
        self.register_outputs(
            {"ssh_host": self.instance.ssh_host, "ssh_port": self.instance.ssh_port}
        )


def _project_around() -> Path:
    """The unkai project around the program, or the program's folder when there is none."""
    try:
        return find_project().root
    except UnkaiError:
        return Path.cwd()
