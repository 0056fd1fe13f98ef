"""cloud-init NoCloud seed files: user-data, meta-data, network-config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unkai.errors import RenderError
from unkai.model import Environment, Instance
from unkai.render._jinja import Templates, default_templates
from unkai.render._libvirt import instance_mac, owner
from unkai.render._nodes import node_address, node_files
from unkai.render.filters import content_hash

__all__ = [
    "CLOUD_INIT_FINISHED_MARKER",
    "DEFAULT_USER",
    "SECRETS_FILE",
    "SEED_SECRETS_FILE",
    "cloud_config",
    "instance_fqdn",
    "render_cloud_init",
    "render_meta_data",
    "render_network_config",
    "render_user_data",
]

DEFAULT_USER = "unkai"
"""The user cloud-init creates on every VM: sudo without password, password locked,
the instance's SSH keys authorised."""

CLOUD_INIT_FINISHED_MARKER = "unkai: cloud-init finished"
SECRETS_FILE = "/etc/unkai/secrets.env"
"""Where an instance's secrets are installed in the guest (root only, ``VAR=value``)."""
SEED_SECRETS_FILE = "unkai-secrets.env"
"""The file of the first-boot seed that carries them (never rendered, never kept)."""
"""Start of the ``final_message`` cloud-init prints on the serial console when it is done.

A provider waits either for this line in the console log or for cloud-init's own
``/var/lib/cloud/instance/boot-finished`` file; nothing calls back over the network."""

_USER_DATA_TEMPLATE = "cloud-init/user-data.j2"
_META_DATA_TEMPLATE = "cloud-init/meta-data.j2"
_NETWORK_CONFIG_TEMPLATE = "cloud-init/network-config.j2"
# Keys unkai derives from the instance; user data setting them would contradict the model.
_RESERVED = ("fqdn", "final_message", "hostname", "prefer_fqdn_over_hostname")


def instance_fqdn(instance: Instance, env: Environment) -> str | None:
    """The instance's fully qualified name: ``<hostname>.<settings.domain>``.

    Args:
        instance: The instance.
        env: Its environment.

    Returns:
        The FQDN, or ``None`` when the environment has no ``settings.domain``.

    Raises:
        RenderError: ``settings.domain`` is set but not a string.
    """
    domain = env.settings.get("domain")
    if domain is None:
        return None
    if not isinstance(domain, str) or not domain:
        raise RenderError(
            f"environment {env.name!r}: settings.domain must be a DNS domain, got {domain!r}"
        )
    return f"{instance.hostname}.{domain}"


def _default_user(instance: Instance) -> dict[str, Any]:
    user: dict[str, Any] = {
        "name": DEFAULT_USER,
        "gecos": "unkai default user",
        "groups": ["sudo"],
        "lock_passwd": True,
        "shell": "/bin/bash",
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
    }
    if instance.ssh_keys:
        user["ssh_authorized_keys"] = list(instance.ssh_keys)
    return user


def cloud_config(instance: Instance, env: Environment) -> dict[str, Any]:
    """The instance's cloud-config: its ``user_data`` merged with what unkai sets.

    unkai sets ``hostname``, ``fqdn`` (when ``settings.domain`` is set),
    ``manage_etc_hosts``, the :data:`DEFAULT_USER` user with the instance's SSH keys,
    ``ssh_pwauth: false``, ``disable_root: true`` and a ``final_message`` starting with
    :data:`CLOUD_INIT_FINISHED_MARKER`; a node of a ``vm`` pool also gets its node files
    (:func:`unkai.render.node_files`) after its own ``write_files``. The instance's
    ``user_data`` may override
    ``manage_etc_hosts``, ``ssh_pwauth`` and ``disable_root``; its ``users`` are added
    after the default user; every other key is taken as given.

    Args:
        instance: The instance.
        env: Its environment.

    Returns:
        The cloud-config mapping (JSON-able).

    Raises:
        RenderError: ``user_data`` sets a key unkai derives from the model
            (``hostname``, ``fqdn``, ``prefer_fqdn_over_hostname``, ``final_message``),
            its ``users`` is not a list, or it defines the default user again; or a
            node's network has no static address left for it.
    """
    given: Mapping[str, Any] = instance.user_data or {}
    where = f"instance {instance.name!r} user_data"
    reserved = sorted(set(given) & set(_RESERVED))
    if reserved:
        raise RenderError(
            f"{where}: {', '.join(reserved)} are set by unkai from the instance"
            " (hostname, settings.domain); remove them from user_data"
        )
    config: dict[str, Any] = {
        "disable_root": True,
        "hostname": instance.hostname,
        "manage_etc_hosts": True,
        "ssh_pwauth": False,
    }
    fqdn = instance_fqdn(instance, env)
    if fqdn is not None:
        config["fqdn"] = fqdn
        config["prefer_fqdn_over_hostname"] = False
    users: list[Any] = [_default_user(instance)]
    extra_users = given.get("users", [])
    if not isinstance(extra_users, list):
        raise RenderError(f"{where}: users must be a list, got {type(extra_users).__name__}")
    for user in extra_users:
        if isinstance(user, Mapping) and user.get("name") == DEFAULT_USER:
            raise RenderError(f"{where}: users: {DEFAULT_USER!r} is unkai's default user")
    users.extend(extra_users)
    config.update({key: value for key, value in given.items() if key != "users"})
    config["users"] = users
    try:
        node = node_files(env, instance.name)
    except ValueError as err:
        raise RenderError(f"instance {instance.name!r}: {err}") from None
    if node:
        config["write_files"] = [*list(given.get("write_files") or []), *node]
    if instance.secrets:
        config["bootcmd"] = [_install_secrets(instance), *list(given.get("bootcmd") or [])]
    config["final_message"] = (
        f"{CLOUD_INIT_FINISHED_MARKER} instance={instance.name} after $UPTIME seconds"
    )
    return config


def _install_secrets(instance: Instance) -> list[str]:
    """The boot command that installs the instance's secrets from its seed, root-only.

    The values travel only in the seed the provider builds for the first boot (file
    :data:`SEED_SECRETS_FILE` beside user-data); the rendered user-data names the
    variables and their references, never a value. The provider replaces the seed by one
    without secrets once cloud-init has finished, so later boots find none and keep the
    file installed at the first.
    """
    names = ", ".join(f"{var} from {ref.name}" for var, ref in sorted(instance.secrets.items()))
    script = (
        f"# secrets: {names}\n"
        f"[ -e {SECRETS_FILE} ] && exit 0; umask 077; mkdir -p {SECRETS_FILE.rsplit('/', 1)[0]};"
        ' dev=$(blkid -L cidata) || exit 0; m=$(mktemp -d); mount -o ro "$dev" "$m" &&'
        f' {{ [ -e "$m/{SEED_SECRETS_FILE}" ] && install -m 0600 -o root -g root'
        f' "$m/{SEED_SECRETS_FILE}" {SECRETS_FILE}; umount "$m"; }}; rmdir "$m"; true'
    )
    return ["sh", "-c", script]


def render_user_data(
    instance: Instance, env: Environment, *, templates: Templates | None = None
) -> str:
    """Render the ``#cloud-config`` user-data of an instance (see :func:`cloud_config`).

    Secret references of the instance are not part of user-data: no secret value is
    ever rendered.

    Args:
        instance: The instance.
        env: Its environment.
        templates: Where templates come from (default: the built-ins).

    Returns:
        The user-data text, starting with ``#cloud-config``.

    Raises:
        RenderError: The user data conflicts with unkai's keys, or the template failed.
    """
    context = {
        "instance": instance,
        "environment": env.name,
        "config": cloud_config(instance, env),
    }
    return (templates or default_templates()).render(_USER_DATA_TEMPLATE, context)


def render_network_config(
    instance: Instance, env: Environment, *, templates: Templates | None = None
) -> str:
    """Render the network-config (version 2) of an instance: DHCP on every NIC.

    Each NIC is matched by its MAC address (:func:`unkai.render.instance_mac`), so the
    guest's interface names do not matter. A node VM's NIC on its node network has its
    static address instead (:func:`unkai.render.node_address`).

    Args:
        instance: The instance.
        env: Its environment.
        templates: Where templates come from (default: the built-ins).

    Returns:
        The network-config text.

    Raises:
        RenderError: The template failed, or a node's network has no static address
            left for it.
    """
    try:
        static = node_address(env, instance.name)
    except ValueError as err:
        raise RenderError(f"instance {instance.name!r}: {err}") from None
    ethernets: dict[str, dict[str, object]] = {}
    for index, name in enumerate(instance.networks):
        nic: dict[str, object] = {
            "match": {"macaddress": instance_mac(owner(env), instance.name, name)}
        }
        if static is not None and static[0] == name:
            nic["addresses"] = [str(static[1])]
        else:
            nic["dhcp4"] = True
        ethernets[f"nic{index}"] = nic
    context = {"instance": instance, "network": {"version": 2, "ethernets": ethernets}}
    return (templates or default_templates()).render(_NETWORK_CONFIG_TEMPLATE, context)


def render_meta_data(
    instance: Instance,
    env: Environment,
    *,
    user_data: str | None = None,
    network_config: str | None = None,
    templates: Templates | None = None,
) -> str:
    """Render the NoCloud meta-data of an instance.

    ``instance-id`` is ``iid-`` followed by the content hash of the user-data and the
    network-config, so a change to either makes cloud-init run again on a new instance
    (and the provider replaces the VM); ``local-hostname`` is the hostname.

    Args:
        instance: The instance.
        env: Its environment.
        user_data: The already rendered user-data, to avoid rendering it twice.
        network_config: The already rendered network-config, likewise.
        templates: Where templates come from (default: the built-ins).

    Returns:
        The meta-data text.

    Raises:
        RenderError: A template failed.
    """
    templates = templates or default_templates()
    if user_data is None:
        user_data = render_user_data(instance, env, templates=templates)
    if network_config is None:
        network_config = render_network_config(instance, env, templates=templates)
    instance_id = "iid-" + content_hash(user_data + "\0" + network_config)
    context = {
        "instance": instance,
        "meta": {"instance-id": instance_id, "local-hostname": instance.hostname},
    }
    return templates.render(_META_DATA_TEMPLATE, context)


def render_cloud_init(
    instance: Instance, env: Environment, *, templates: Templates | None = None
) -> dict[str, str]:
    """Render the three NoCloud seed files of an instance at once.

    Args:
        instance: The instance.
        env: Its environment.
        templates: Where templates come from (default: the built-ins).

    Returns:
        ``{"user-data": ..., "meta-data": ..., "network-config": ...}``, the file names
        of a NoCloud seed.

    Raises:
        RenderError: A template failed or the user data conflicts with unkai's keys.
    """
    templates = templates or default_templates()
    user_data = render_user_data(instance, env, templates=templates)
    network_config = render_network_config(instance, env, templates=templates)
    meta_data = render_meta_data(
        instance, env, user_data=user_data, network_config=network_config, templates=templates
    )
    return {"meta-data": meta_data, "network-config": network_config, "user-data": user_data}
