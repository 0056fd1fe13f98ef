"""The hypervisor hosts of a cloud: resources of unkai's provider."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi

from unkai import model, render


@dataclass(frozen=True)
class KvmHostArgs:
    """Inputs of :class:`KvmHost`.

    Attributes:
        name: Inventory name of the host (the model's host name).
        address: IP address or DNS name Ansible and libvirt reach.
        connection: ``local`` (this machine) or ``ssh``.
        ssh_user: The SSH user of an ``ssh`` host.
        libvirt_uri: Its libvirt URI.
        pool_name: The storage pool holding unkai's volumes.
        pool_path: That pool's folder.
        accelerator: ``auto``, ``kvm`` or ``tcg``; pass what unkai's KVM probe found
            (``unkai.toolchain.cached_probe().accelerator``), since ``/dev/kvm`` can open
            and still not run a Linux guest.
        networks: libvirt networks the playbook defines and starts, each
            ``{"name": ..., "xml": ...}``; usually empty, because the ``Network``
            resource manages the environment's networks itself.
    """

    name: str
    address: str
    connection: Literal["local", "ssh"]
    libvirt_uri: str
    ssh_user: str | None = None
    pool_name: str = render.STORAGE_POOL
    pool_path: str = render.STORAGE_POOL_PATH
    accelerator: Literal["auto", "kvm", "tcg"] = "auto"
    networks: tuple[Mapping[str, str], ...] = field(default=())

    @classmethod
    def from_host(
        cls,
        host: model.Host,
        *,
        pool_name: str = render.STORAGE_POOL,
        pool_path: str = render.STORAGE_POOL_PATH,
        accelerator: Literal["auto", "kvm", "tcg"] = "auto",
        networks: Sequence[Mapping[str, str]] = (),
    ) -> KvmHostArgs:
        """The inputs that configure ``host`` with its storage pool.

        Args:
            host: A host of the environment.
            pool_name: The storage pool's name (default: :data:`unkai.render.STORAGE_POOL`).
            pool_path: Its folder (default: :data:`unkai.render.STORAGE_POOL_PATH`).
            accelerator: What the KVM probe found, or ``auto`` to let the playbook decide
                from ``/dev/kvm``.
            networks: libvirt networks to create with the host (``{name, xml}``).
        """
        return cls(
            name=host.name,
            address=host.address,
            connection=host.connection,
            ssh_user=host.ssh_user,
            libvirt_uri=host.libvirt_uri,
            pool_name=pool_name,
            pool_path=pool_path,
            accelerator=accelerator,
            networks=tuple(dict(net) for net in networks),
        )


class KvmHost(pulumi.CustomResource):
    """A KVM hypervisor host configured by Ansible (``unkai:compute:KvmHost``).

    Creating it runs ``playbooks/kvm-host.yml`` on the host: libvirt and QEMU installed
    and running, the storage pool created; the outputs are the host's facts. Changing
    ``address`` or ``connection`` replaces it (a different machine); anything else runs
    the playbook again in place. Destroying it removes the storage pool when empty and
    leaves the packages installed.
    """

    name: pulumi.Output[str]
    libvirt_uri: pulumi.Output[str]
    pool_name: pulumi.Output[str]
    pool_path: pulumi.Output[str]
    cpus: pulumi.Output[float]
    memory_mb: pulumi.Output[float]
    accelerator: pulumi.Output[str]
    accelerator_reason: pulumi.Output[str]
    accelerator_requested: pulumi.Output[str]
    libvirt_version: pulumi.Output[str]
    qemu_version: pulumi.Output[str]
    changed: pulumi.Output[float]

    def __init__(
        self, name: str, args: KvmHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "name": args.name,
            "address": args.address,
            "connection": args.connection,
            "ssh_user": args.ssh_user,
            "libvirt_uri": args.libvirt_uri,
            "pool_name": args.pool_name,
            "pool_path": args.pool_path,
            "accelerator": args.accelerator,
            "networks": [dict(net) for net in args.networks],
            **dict.fromkeys(
                (
                    "cpus",
                    "memory_mb",
                    "accelerator_reason",
                    "accelerator_requested",
                    "libvirt_version",
                    "qemu_version",
                    "changed",
                )
            ),
        }
        super().__init__("unkai:compute:KvmHost", name, props, opts)
