"""``unkai:local:File``: a file on the machine that runs the engine."""

from __future__ import annotations

from typing import Annotated, ClassVar

from unkai.kinds._base import Inputs, Replace, State
from unkai.kinds._types import AbsolutePath, OctalMode

__all__ = ["LocalFileInputs", "LocalFileState"]


class LocalFileInputs(Inputs):
    """A local file. Its content may be a Pulumi secret: the file is then written 0600."""

    token: ClassVar[str] = "unkai:local:File"

    path: Annotated[
        AbsolutePath, Replace("a file cannot move: the new path is written and the old one deleted")
    ]
    """Absolute path of the file."""
    content: str
    """Its text."""
    mode: OctalMode = "0644"
    """Permission bits as an octal string."""


class LocalFileState(LocalFileInputs, State):
    """The file as it is on disk."""

    sha256: str | None = None
    """sha256 of the content, in hex."""
    size: int | None = None
    """Size of the content in bytes (UTF-8)."""
