"""The Ansible inventory of the hypervisor hosts and their host variables."""

from __future__ import annotations

from typing import Any

from unkai.errors import RenderError
from unkai.model import Environment, Host
from unkai.render._jinja import Templates, default_templates
from unkai.render._libvirt import STORAGE_POOL, STORAGE_POOL_PATH, libvirt_network_name
from unkai.render.filters import ansible_group

__all__ = ["HOSTS_GROUP", "inventory", "render_host_vars", "render_inventory"]

HOSTS_GROUP = "kvm_hosts"
"""The inventory group holding every hypervisor host of the environment."""

_INVENTORY_TEMPLATE = "ansible/inventory.yml.j2"
_HOST_VARS_TEMPLATE = "ansible/host_vars.yml.j2"


def _connection_vars(host: Host) -> dict[str, Any]:
    if host.connection == "local":
        return {"ansible_connection": "local"}
    return {
        "ansible_connection": "ssh",
        "ansible_host": host.address,
        "ansible_user": host.ssh_user,
    }


def inventory(env: Environment) -> dict[str, Any]:
    """The inventory of ``env`` as a mapping, in Ansible's YAML inventory structure.

    Every host is in :data:`HOSTS_GROUP` with its connection variables
    (``ansible_connection: local``, or ``ssh`` with ``ansible_host`` and
    ``ansible_user``), and in one group per host pool (``pool_<pool>``) and per zone
    (``zone_<zone>``), names made valid with :func:`unkai.render.filters.ansible_group`.

    Args:
        env: The environment.

    Returns:
        ``{"all": {"vars": ..., "children": ...}}``.
    """
    hosts = env.hosts.values()
    children: dict[str, Any] = {
        HOSTS_GROUP: {"hosts": {host.name: _connection_vars(host) for host in hosts}}
    }
    for prefix, attribute in (("pool", "pool"), ("zone", "zone")):
        for host in hosts:
            group = f"{prefix}_{ansible_group(getattr(host, attribute))}"
            children.setdefault(group, {"hosts": {}})["hosts"][host.name] = {}
    return {"all": {"vars": {"unkai_environment": env.name}, "children": children}}


def render_inventory(env: Environment, *, templates: Templates | None = None) -> str:
    """Render the YAML inventory of the environment's hypervisor hosts (see :func:`inventory`).

    Host variables are separate files (:func:`render_host_vars`) in ``host_vars/``
    beside the inventory, where Ansible finds them.

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


def host_vars(host: Host, env: Environment) -> dict[str, Any]:
    """The variables of one host for the KVM host playbook, all prefixed ``unkai_``.

    Args:
        host: A host of ``env``.
        env: The environment.

    Returns:
        The libvirt URI, CPU vendor, pool, zone, labels, overcommit of its pool, the
        storage pools and the libvirt networks (every non-``user`` network of the
        environment, with the path of its XML in the rendered tree).

    Raises:
        RenderError: The host is not part of ``env``.
    """
    if env.hosts.get(host.name) != host:
        raise RenderError(f"host {host.name!r} is not part of environment {env.name!r}")
    pool = env.host_pools[host.pool]
    return {
        "unkai_cpu_vendor": host.cpu_vendor,
        "unkai_environment": env.name,
        "unkai_host": host.name,
        "unkai_host_pool": host.pool,
        "unkai_labels": dict(host.labels),
        "unkai_libvirt_networks": [
            {
                "libvirt_name": libvirt_network_name(network.name),
                "mode": network.mode,
                "name": network.name,
                "xml": f"libvirt/networks/{network.name}.xml",
            }
            for network in env.networks.values()
            if network.mode != "user"
        ],
        "unkai_libvirt_uri": host.libvirt_uri,
        "unkai_overcommit": {"cpu": pool.cpu_overcommit, "memory": pool.memory_overcommit},
        "unkai_reserved_memory_mb": pool.reserved_memory_mb,
        "unkai_storage_pools": [{"name": STORAGE_POOL, "path": STORAGE_POOL_PATH}],
        "unkai_zone": host.zone,
    }


def render_host_vars(host: Host, env: Environment, *, templates: Templates | None = None) -> str:
    """Render ``host_vars/<host>.yml`` (see :func:`host_vars`).

    Args:
        host: A host of ``env``.
        env: The environment.
        templates: Where templates come from (default: the built-ins).

    Returns:
        The host variables as YAML text.

    Raises:
        RenderError: The host is not part of ``env``, or the template failed.
    """
    context = {"host": host, "environment": env.name, "vars": host_vars(host, env)}
    return (templates or default_templates()).render(_HOST_VARS_TEMPLATE, context)
