"""The Ansible inventory of the hypervisor hosts and their host variables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from unkai.errors import RenderError
from unkai.model import Environment, Host
from unkai.render._jinja import Templates, default_templates
from unkai.render._libvirt import STORAGE_POOL, STORAGE_POOL_PATH
from unkai.render.filters import ansible_group

__all__ = [
    "HOSTS_GROUP",
    "HostAccelerator",
    "host_vars",
    "inventory",
    "render_host_vars",
    "render_inventory",
]

HOSTS_GROUP = "kvm_hosts"
"""The inventory group holding every hypervisor host of the environment."""

HostAccelerator = Literal["auto", "kvm", "tcg"]
"""What a host's VMs use, as the KVM host playbook takes it (``auto``: decide on the host)."""

_INVENTORY_TEMPLATE = "ansible/inventory.yml.j2"
_HOST_VARS_TEMPLATE = "ansible/host_vars.yml.j2"


def _connection_vars(host: Host) -> dict[str, Any]:
    if host.connection == "local":
        return {"ansible_connection": "local"}
    found: dict[str, Any] = {
        "ansible_connection": "ssh",
        "ansible_host": host.address,
        "ansible_user": host.ssh_user,
    }
    if host.ssh_user != "root":
        found["ansible_become"] = True
    return found


def inventory(env: Environment) -> dict[str, Any]:
    """The inventory of ``env`` as a mapping, in Ansible's YAML inventory structure.

    Every host is in :data:`HOSTS_GROUP`, and in one group per host pool
    (``pool_<pool>``) and per zone (``zone_<zone>``), names made valid with
    :func:`unkai.render.filters.ansible_group`. The inventory names the hosts and their
    groups only: everything about a host, how Ansible reaches it included, is in its
    ``host_vars`` file (:func:`host_vars`).

    Args:
        env: The environment.

    Returns:
        ``{"all": {"vars": ..., "children": ...}}``.
    """
    hosts = env.hosts.values()
    children: dict[str, Any] = {HOSTS_GROUP: {"hosts": {host.name: {} for host in hosts}}}
    for prefix, attribute in (("pool", "pool"), ("zone", "zone")):
        for host in hosts:
            group = f"{prefix}_{ansible_group(getattr(host, attribute))}"
            children.setdefault(group, {"hosts": {}})["hosts"][host.name] = {}
    return {"all": {"vars": {"unkai_environment": env.name}, "children": children}}


def render_inventory(env: Environment, *, templates: Templates | None = None) -> str:
    """Render the YAML inventory of the environment's hypervisor hosts (see :func:`inventory`).

    Host variables are separate files (:func:`render_host_vars`) in ``host_vars/``
    beside the inventory, where Ansible finds them: ``ansible-playbook -i
    <rendered>/ansible/inventory.yml playbooks/kvm-host.yml`` runs what ``unkai up`` runs.

    Args:
        env: The environment.
        templates: Where templates come from (default: the built-ins).

    Returns:
        The inventory text.

    Raises:
        RenderError: The template failed.
    """
    context = {"environment": env.name, "inventory": inventory(env)}
    return (templates or default_templates()).render(_INVENTORY_TEMPLATE, context)


def host_vars(
    host: Host,
    env: Environment,
    *,
    accelerator: HostAccelerator,
    pool_name: str = STORAGE_POOL,
    pool_path: str = STORAGE_POOL_PATH,
    networks: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The variables of one host: exactly what ``playbooks/kvm-host.yml`` is run with.

    ``unkai up`` applies the rendered file's bytes (the ``KvmHost`` resource carries
    them): nothing is added to it but how this machine reaches the host (its SSH
    client, its Python), which is not the host's.

    Args:
        host: A host of ``env``.
        env: The environment.
        accelerator: What its VMs use: ``kvm``, ``tcg``, or ``auto`` (the playbook
            decides from ``/dev/kvm``); ``unkai up`` passes the KVM probe's verdict.
        pool_name: The storage pool of unkai's volumes.
        pool_path: That pool's folder.
        networks: libvirt networks the playbook defines, each ``{"name", "xml"}``
            (usually none: the ``Network`` resource makes them).

    Returns:
        Ansible's connection variables, the ``kvm_host_*`` variables of the
        ``kvm_host`` role, and ``unkai_*`` variables that describe the host (zone, pool,
        labels, overcommit) for a project's own plays.

    Raises:
        RenderError: The host is not part of ``env``.
    """
    if env.hosts.get(host.name) != host:
        raise RenderError(f"host {host.name!r} is not part of environment {env.name!r}")
    pool = env.host_pools[host.pool]
    return {
        **_connection_vars(host),
        "kvm_host_accelerator": accelerator,
        # The playbook runs on the host itself: there libvirt is the local system daemon,
        # whatever URI unkai uses to reach it (qemu+ssh://... for a remote host).
        "kvm_host_libvirt_uri": (
            "qemu:///system" if host.connection == "ssh" else host.libvirt_uri
        ),
        "kvm_host_networks": [{"name": n["name"], "xml": n["xml"]} for n in networks],
        "kvm_host_pool_name": pool_name,
        "kvm_host_pool_path": pool_path,
        "unkai_cpu_vendor": host.cpu_vendor,
        "unkai_environment": env.name,
        "unkai_host": host.name,
        "unkai_host_pool": host.pool,
        "unkai_labels": dict(host.labels),
        "unkai_overcommit": {"cpu": pool.cpu_overcommit, "memory": pool.memory_overcommit},
        "unkai_reserved_memory_mb": pool.reserved_memory_mb,
        "unkai_zone": host.zone,
    }


def render_host_vars(
    host: Host,
    env: Environment,
    *,
    accelerator: HostAccelerator,
    pool_name: str = STORAGE_POOL,
    pool_path: str = STORAGE_POOL_PATH,
    networks: Sequence[Mapping[str, str]] = (),
    templates: Templates | None = None,
) -> str:
    """Render ``host_vars/<host>.yml`` (see :func:`host_vars`); what is applied, byte for byte.

    Args:
        host: A host of ``env``.
        env: The environment.
        accelerator: ``kvm``, ``tcg`` or ``auto`` (see :func:`host_vars`).
        pool_name: The storage pool of unkai's volumes.
        pool_path: That pool's folder.
        networks: libvirt networks the playbook defines (usually none).
        templates: Where templates come from (default: the built-ins).

    Returns:
        The host variables as YAML text.

    Raises:
        RenderError: The host is not part of ``env``, or the template failed.
    """
    found = host_vars(
        host, env, accelerator=accelerator, pool_name=pool_name, pool_path=pool_path,
        networks=networks,
    )  # fmt: skip
    context = {"host": host, "environment": env.name, "vars": found}
    return (templates or default_templates()).render(_HOST_VARS_TEMPLATE, context)
