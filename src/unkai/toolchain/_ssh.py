"""The project's SSH identity and how every SSH client of unkai reaches remote hosts.

One key (the operator key), one ``known_hosts`` and one client configuration per
environment, all under ``<project>/.unkai/ssh/``. Every SSH client unkai runs — libvirt's
``qemu+ssh`` transport, Ansible, ``unkai ssh`` — runs the same wrapper,
``.unkai/ssh/<env>/ssh`` (``ssh -F <that environment's config>``), which the engine's
environment names in ``UNKAI_SSH``. Host keys are verified against the project's
``known_hosts``: never trusted on first use.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from unkai._files import atomic_write, file_lock

__all__ = [
    "SSH_ENV",
    "environment_ssh",
    "known_hosts_file",
    "operator_key",
    "ssh_dir",
]

SSH_ENV = "UNKAI_SSH"
"""The variable naming the SSH wrapper every SSH client of unkai runs."""


def ssh_dir(root: Path) -> Path:
    """``<project>/.unkai/ssh``: the operator key, ``known_hosts``, per-environment configs."""
    return root / ".unkai" / "ssh"


def operator_key(root: Path) -> Path:
    """The project's operator SSH key (``.unkai/ssh/id_ed25519``), made on first use.

    Side effects: creates the key pair (mode 0600) the first time. Two commands of one
    project started together (two environments' ``up``) make one key: the pair is made
    under a lock, in a folder of its own, and moved in public half first, so a key that
    exists always has its public half.
    """
    key = ssh_dir(root) / "id_ed25519"
    if key.exists():
        return key
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with file_lock(key.parent / ".operator-key.lock"):
        if not key.exists():
            with tempfile.TemporaryDirectory(dir=key.parent) as tmp:
                made = Path(tmp) / key.name
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "unkai-operator",
                     "-f", str(made)],
                    check=True, stdin=subprocess.DEVNULL,
                )  # fmt: skip
                os.replace(made.with_suffix(".pub"), key.with_suffix(".pub"))
                os.replace(made, key)
    return key


def known_hosts_file(root: Path) -> Path:
    """The project's ``known_hosts``: the host keys unkai's SSH clients accept."""
    return ssh_dir(root) / "known_hosts"


def environment_ssh(root: Path, env: str, config: str) -> Path:
    """Write the SSH client configuration of ``env`` and its wrapper; return the wrapper.

    Args:
        root: The project.
        env: The environment's name.
        config: The rendered client configuration (``unkai.render.render_ssh_config``).

    Side effects: writes ``.unkai/ssh/<env>/config`` (0600) and ``.unkai/ssh/<env>/ssh``
    (0755), a script that runs ``ssh -F <config>`` with the arguments it is given.
    """
    folder = ssh_dir(root) / env
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_file = folder / "config"
    atomic_write(config_file, config, mode=0o600)
    wrapper = folder / "ssh"
    script = f'#!/bin/sh\nexec ssh -F {shlex.quote(str(config_file))} "$@"\n'
    atomic_write(wrapper, script, mode=0o755)
    return wrapper
