"""The hypervisor hosts of a cloud: resources of unkai's provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pulumi

from unkai import model, render
from unkai.components._kind import KindResource
from unkai.kinds import KvmHostInputs, KvmHostState, LibvirtNetwork


def kvm_host_inputs(
    host: model.Host,
    *,
    env: model.Environment,
    pool_name: str = render.STORAGE_POOL,
    pool_path: str = render.STORAGE_POOL_PATH,
    accelerator: Literal["auto", "kvm", "tcg"] = "auto",
    networks: Sequence[LibvirtNetwork] = (),
    templates: render.Templates | None = None,
) -> KvmHostInputs:
    """The inputs that configure ``host`` with its storage pool.

    The playbook's variables are the host's ``host_vars`` file rendered as ``unkai
    render`` renders it (:func:`unkai.render.render_host_vars`), carried as text.

    Args:
        host: A host of ``env``.
        env: Its environment.
        pool_name: The storage pool's name (default: :data:`unkai.render.STORAGE_POOL`).
        pool_path: Its folder (default: :data:`unkai.render.STORAGE_POOL_PATH`).
        accelerator: What the KVM probe found, or ``auto`` to let the playbook decide
            from ``/dev/kvm`` (which can open and still not run a Linux guest).
        networks: libvirt networks to create with the host.
        templates: Where the host_vars template is found (default: the built-ins).
    """
    host_vars = render.render_host_vars(
        host, env, accelerator=accelerator, pool_name=pool_name, pool_path=pool_path,
        networks=[{"name": n.name, "xml": n.xml} for n in networks], templates=templates,
    )  # fmt: skip
    return KvmHostInputs(
        name=host.name,
        address=host.address,
        connection=host.connection,
        ssh_user=host.ssh_user,
        libvirt_uri=host.libvirt_uri,
        pool_name=pool_name,
        pool_path=pool_path,
        accelerator=accelerator,
        networks=tuple(networks),
        host_vars=host_vars,
    )


class KvmHost(KindResource):
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
    cpus: pulumi.Output[int]
    memory_mb: pulumi.Output[int]
    accelerator: pulumi.Output[str]
    accelerator_reason: pulumi.Output[str]
    accelerator_requested: pulumi.Output[str]
    libvirt_version: pulumi.Output[str]
    qemu_version: pulumi.Output[str]
    changed: pulumi.Output[int]

    def __init__(
        self, name: str, args: KvmHostInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, KvmHostState, opts)
