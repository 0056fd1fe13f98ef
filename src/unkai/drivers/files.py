"""Files on the local machine, written atomically."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from unkai._files import atomic_write
from unkai.errors import DriverError


@dataclass(frozen=True)
class FileState:
    """What a file holds now.

    Attributes:
        content: Its text.
        mode: Its permission bits (``0o600``).
        sha256: The hex digest of its bytes.
    """

    content: str
    mode: int
    sha256: str


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_file(path: Path, content: str, mode: int) -> FileState:
    """Write ``content`` to ``path`` with ``mode``, atomically (see :func:`atomic_write`).

    Missing folders are created. A secret is never readable by others, not even for a
    moment.

    Raises:
        DriverError: the folder cannot be created or the file cannot be written.
    """
    data = content.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data, mode=mode)
    except OSError as err:
        raise DriverError(f"cannot write {path}: {err.strerror}") from err
    return FileState(content, mode, _digest(data))


def read_file(path: Path) -> FileState | None:
    """The file's state, or None when it does not exist.

    Raises:
        DriverError: it exists but cannot be read.
    """
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return None
    except OSError as err:
        raise DriverError(f"cannot read {path}: {err.strerror}") from err
    return FileState(data.decode("utf-8", errors="replace"), mode, _digest(data))


def remove_file(path: Path) -> None:
    """Delete the file; a file already gone is not an error."""
    try:
        path.unlink(missing_ok=True)
    except OSError as err:
        raise DriverError(f"cannot delete {path}: {err.strerror}") from err
