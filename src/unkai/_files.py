"""Writing a file so that readers see the old content or the new, never a part.

Standard library only, so every layer may use it (the pure ``render`` layer included).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "file_lock", "one_of_locks", "try_lock"]


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``, atomically, leaving it with permission bits ``mode``.

    ``data`` goes into a new temporary file beside ``path`` (a unique name from
    :func:`tempfile.mkstemp`, so concurrent writers never share one), is flushed to disk
    with ``fsync`` and then renamed over ``path``. The temporary file is created ``0600``
    and gets ``mode`` before the first byte is written: a secret written with
    ``mode=0o600`` is never readable by others, not even for a moment. ``mode`` is set
    exactly (the umask does not apply). On any failure the temporary file is removed and
    ``path`` is untouched.

    Args:
        path: The file to write; its folder must exist.
        data: The content; text is encoded as UTF-8.
        mode: The permission bits ``path`` ends up with.

    Raises:
        OSError: The folder is missing or not writable, or the disk is full; callers
            turn it into their own error with context.
    """
    content = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created when missing) for the block.

    Serialises work that processes of unkai share (one cache entry, one file), across
    the provider's threads and separate commands alike.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` for the block if no one holds it now.

    Yields whether it was taken; never waits.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def one_of_locks(
    paths: Sequence[Path],
    *,
    poll: float = 0.5,
    waiting: Callable[[float], None] | None = None,
) -> Iterator[float]:
    """Hold an exclusive ``flock`` on whichever of ``paths`` is free first, for the block.

    A counting semaphore of ``len(paths)`` places shared by the provider's threads and
    by separate processes alike (each ``open`` is a lock of its own), released when the
    holder ends, even when it is killed. Yields the seconds spent waiting for a place.

    Args:
        paths: The lock files, one a place (created when missing); at least one.
        poll: Seconds between two tries while every place is taken.
        waiting: Called about every 15 s of waiting with the seconds waited so far.
    """
    if not paths:
        raise ValueError("one_of_locks needs at least one lock file")
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    start = last_note = time.monotonic()
    while True:
        for path in paths:
            handle = path.open("w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield time.monotonic() - start
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        now = time.monotonic()
        if waiting is not None and now - last_note >= 15:
            waiting(now - start)
            last_note = now
        time.sleep(poll)
