"""Which SSH client unkai's drivers run: the environment's wrapper, when there is one.

``unkai`` names the wrapper of the environment it deploys (``ssh -F <its config>``,
:func:`unkai.toolchain.environment_ssh`) in ``UNKAI_SSH`` for the engine and the
provider; libvirt's ``qemu+ssh`` transport and Ansible both run it, so one client
configuration (key, known hosts, shared connections) serves every remote call.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import quote, urlsplit

from unkai.toolchain import SSH_ENV

__all__ = ["libvirt_uri", "remote_host", "ssh_executable", "unreachable"]


def ssh_executable() -> str | None:
    """The SSH client to run (``$UNKAI_SSH``), or None for plain ``ssh``."""
    return os.environ.get(SSH_ENV) or None


def libvirt_uri(uri: str, *, ssh: str | None = None) -> str:
    """``uri`` with libvirt told to run ``ssh`` (default :func:`ssh_executable`).

    Only ``qemu+ssh`` URIs change; one that names its own ``command`` is left as it is.
    """
    executable = ssh or ssh_executable()
    if executable is None or not uri.startswith("qemu+ssh://") or "command=" in uri:
        return uri
    separator = "&" if "?" in uri else "?"
    return f"{uri}{separator}command={quote(executable, safe='/')}&no_tty=1"


def remote_host(uri: str) -> str | None:
    """The host a remote libvirt URI reaches; None for a local one.

    ``qemu+ssh://root@10.0.0.1/system`` reaches ``10.0.0.1``; ``qemu:///system`` none.
    """
    parsed = urlsplit(uri)
    return parsed.hostname if "+" in parsed.scheme else None


def unreachable(uri: str, *, timeout: float = 3.0) -> bool:
    """Whether the host of a remote libvirt URI does not answer on its SSH port at all.

    Tells a host that is down or cut off (its instances cannot be read, moved or deleted
    now) from a host that answers but whose libvirtd misbehaves. A local URI is never
    unreachable.
    """
    host = remote_host(uri)
    if host is None:
        return False
    port = urlsplit(uri).port or 22
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return True
    return False
