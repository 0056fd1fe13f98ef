"""Which SSH client unkai's drivers run: the environment's wrapper, when there is one.

``unkai`` names the wrapper of the environment it deploys (``ssh -F <its config>``,
:func:`unkai.toolchain.environment_ssh`) in ``UNKAI_SSH`` for the engine and the
provider; libvirt's ``qemu+ssh`` transport and Ansible both run it, so one client
configuration (key, known hosts, shared connections) serves every remote call.
"""

from __future__ import annotations

import os
from urllib.parse import quote

from unkai.toolchain import SSH_ENV

__all__ = ["libvirt_uri", "ssh_executable"]


def ssh_executable() -> str | None:
    """The SSH client to run (``$UNKAI_SSH``), or None for plain ``ssh``."""
    return os.environ.get(SSH_ENV) or None


def libvirt_uri(uri: str) -> str:
    """``uri`` with libvirt told to run :func:`ssh_executable` (``qemu+ssh`` URIs only).

    A URI that names its own ``command`` is left as it is; other URIs too.
    """
    executable = ssh_executable()
    if executable is None or not uri.startswith("qemu+ssh://") or "command=" in uri:
        return uri
    separator = "&" if "?" in uri else "?"
    return f"{uri}{separator}command={quote(executable, safe='/')}&no_tty=1"
