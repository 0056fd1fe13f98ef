"""The content digest of a playbook baked into a VM image."""

from __future__ import annotations

import hashlib
from pathlib import Path

from unkai.errors import ConfigError

__all__ = [
    "NODE_PLAYBOOK",
    "PLAYBOOK_CONTENT_DIRS",
    "node_playbook",
    "playbook_digest",
    "resolve_playbook",
]

PLAYBOOK_CONTENT_DIRS = ("roles", "files", "templates")
"""Folders beside a playbook whose files are part of what it bakes in."""

NODE_PLAYBOOK = "playbooks/images/k8s-node.yml"
"""The playbook a node image (``VmImage.kubernetes``) bakes in, relative to the project
or to unkai's package."""


def node_playbook(*, root: Path) -> Path:
    """The node playbook: the project's own when it has one, else unkai's built-in one.

    Args:
        root: The project's root folder.

    Returns:
        The absolute path of ``playbooks/images/k8s-node.yml`` under ``root`` when that
        file exists, else of unkai's own (package data).
    """
    own = root / NODE_PLAYBOOK
    if own.is_file():
        return own.resolve()
    return Path(__file__).resolve().parents[1] / NODE_PLAYBOOK


def resolve_playbook(playbook: str, *, root: Path) -> Path:
    """The absolute path of a project-relative playbook.

    Args:
        playbook: The model's ``VmImage.playbook``, relative to the project.
        root: The project's root folder.

    Returns:
        The resolved path of an existing file (only checked, never read).

    Raises:
        ConfigError: There is no such file.
    """
    path = (root / playbook).resolve()
    if not path.is_file():
        raise ConfigError(
            f"the playbook to bake in does not exist under {root}",
            key_path="playbook",
            value=playbook,
            allowed="a project-relative path of a playbook file",
        )
    return path


def playbook_digest(playbook: Path) -> str:
    """sha256 of a playbook's content and of the files beside it that it uses.

    That is the playbook file and every file under its folder's ``roles/``, ``files/``
    and ``templates/`` (:data:`PLAYBOOK_CONTENT_DIRS`). Each file counts with its path
    relative to the playbook's folder, so renaming or moving a file changes the digest,
    while moving the whole folder (another checkout) does not. Reads files; writes
    nothing; the same tree always gives the same digest.

    Args:
        playbook: Path of the playbook file.

    Returns:
        64 hex digits.

    Raises:
        ConfigError: ``playbook`` is not a file.
    """
    if not playbook.is_file():
        raise ConfigError("the playbook to bake in does not exist", key_path="playbook",
                          value=str(playbook))  # fmt: skip
    base = playbook.parent
    files = [playbook]
    for name in PLAYBOOK_CONTENT_DIRS:
        folder = base / name
        if folder.is_dir():
            files += sorted(p for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        rel = path.relative_to(base).as_posix().encode()
        content = path.read_bytes()
        # Lengths first: no two different trees give the same stream of bytes.
        digest.update(b"%d:%s%d:" % (len(rel), rel, len(content)))
        digest.update(content)
    return digest.hexdigest()
