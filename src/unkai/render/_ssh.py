"""The OpenSSH client configuration through which unkai reaches an environment's hosts."""

from __future__ import annotations

from unkai.model import Environment
from unkai.render._jinja import Templates, default_templates

__all__ = ["render_ssh_config"]

_TEMPLATE = "ssh/config.j2"


def render_ssh_config(
    env: Environment,
    *,
    identity_file: str,
    known_hosts: str,
    control_dir: str,
    templates: Templates | None = None,
) -> str:
    """The SSH client configuration of ``env``'s ``ssh`` hosts.

    Every SSH client of unkai (libvirt's ``qemu+ssh``, Ansible, ``unkai ssh``) uses it:
    the operator key only, host keys checked against the project's ``known_hosts``
    (never trusted on first use), and one shared connection per host (``ControlMaster``)
    so that libvirt's and Ansible's many sessions cost one handshake.

    Args:
        env: The environment.
        identity_file: The operator's private key.
        known_hosts: The project's ``known_hosts``.
        control_dir: Where the shared connections' sockets live.
        templates: Where templates come from (default: the built-ins).

    Raises:
        RenderError: The template failed.
    """
    hosts = [
        {"name": h.name, "address": h.address, "user": h.ssh_user or "root"}
        for h in sorted(env.hosts.values(), key=lambda h: h.name)
        if h.connection == "ssh"
    ]
    context = {
        "environment": env.name,
        "hosts": hosts,
        "identity_file": identity_file,
        "known_hosts": known_hosts,
        "control_dir": control_dir,
    }
    return (templates or default_templates()).render(_TEMPLATE, context)
