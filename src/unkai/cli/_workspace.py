"""Pulumi workspaces for unkai's stacks, through the Automation API.

Local use needs no ``pulumi login``: unless the user says otherwise, state lives in
Pulumi's file backend under ``.unkai/state/`` of the project, and secrets are encrypted
with a passphrase kept in ``.unkai/passphrase`` (mode 0600, git-ignored, made on first
use). Set ``PULUMI_BACKEND_URL`` (``s3://…``, ``gs://…``, ``https://api.pulumi.com``)
and ``PULUMI_CONFIG_PASSPHRASE`` / ``PULUMI_CONFIG_PASSPHRASE_FILE`` to use others.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pulumi import automation as auto

from unkai.errors import ToolchainError
from unkai.model import Environment
from unkai.render import render_ssh_config
from unkai.toolchain import (
    engine_env,
    environment_ssh,
    find_pulumi,
    known_hosts_file,
    operator_key,
    project_root,
    state_dir,
)


def passphrase_file(root: Path) -> Path:
    """The local passphrase file, created with a random passphrase when missing."""
    path = root / ".unkai" / "passphrase"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    return path


def workspace_env(root: Path | None = None) -> dict[str, str]:
    """Environment for every engine run: backend, secrets provider, PATH of the toolchain."""
    root = root or project_root()
    env = engine_env()
    if not os.environ.get("PULUMI_BACKEND_URL"):
        state = state_dir(root)
        state.mkdir(parents=True, exist_ok=True)
        env["PULUMI_BACKEND_URL"] = f"file://{state}"
    if not (
        os.environ.get("PULUMI_CONFIG_PASSPHRASE")
        or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    ):
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(passphrase_file(root))
    return env


def select_stack(
    stack_dir: Path, stack_name: str, *, env: Mapping[str, str] | None = None
) -> auto.Stack:
    """Create or select ``stack_name`` of the Pulumi project in ``stack_dir``.

    Raises:
        ToolchainError: the pinned pulumi CLI is missing (run ``scripts/bootstrap``).
    """
    found = find_pulumi()
    if found is None:
        raise ToolchainError("the pinned pulumi CLI is missing; run scripts/bootstrap")
    command = auto.PulumiCommand(root=str(found.path.parent.parent))
    opts = auto.LocalWorkspaceOptions(
        work_dir=str(stack_dir),
        env_vars={**workspace_env(), **(env or {})},
        pulumi_command=command,
    )
    return auto.create_or_select_stack(stack_name=stack_name, work_dir=str(stack_dir), opts=opts)


def ssh_client(env: Environment, root: Path) -> Path:
    """Write ``env``'s SSH client configuration and wrapper; return the wrapper.

    Every SSH client of unkai runs it (libvirt's ``qemu+ssh``, Ansible, ``unkai ssh``):
    the operator key, the project's ``known_hosts``, shared connections.
    """
    config = render_ssh_config(
        env,
        identity_file=str(operator_key(root)),
        known_hosts=str(known_hosts_file(root)),
        # Short: a socket path is limited to 108 bytes, and %C alone takes 40.
        control_dir=tempfile.gettempdir(),
    )
    return environment_ssh(root, env.name, config)
