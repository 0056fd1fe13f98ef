"""``unkai._files.atomic_write``: whole content, exact mode, nothing left behind."""

from __future__ import annotations

import ast
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

import unkai._files
from unkai._files import atomic_write

_real_replace = os.replace


def _mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_bytes_and_text(tmp_path: Path) -> None:
    atomic_write(tmp_path / "b", b"\x00\xff")
    atomic_write(tmp_path / "t", "grüße\n")
    assert (tmp_path / "b").read_bytes() == b"\x00\xff"
    assert (tmp_path / "t").read_bytes() == "grüße\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "t"]


def test_replaces_existing_content_and_mode(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("a much longer old content")
    target.chmod(0o666)
    atomic_write(target, "new", mode=0o600)
    assert target.read_text() == "new"
    assert _mode(target) == 0o600


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o755, 0o640])
def test_mode_is_exact_regardless_of_umask(tmp_path: Path, mode: int) -> None:
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "f", "x", mode=mode)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "f") == mode


def test_temp_file_has_mode_and_content_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int, bytes, bool]] = []
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    def replace(src: str, dst: Path) -> None:
        seen.append((os.path.basename(src), _mode(src), Path(src).read_bytes(), bool(synced)))
        _real_replace(src, dst)

    monkeypatch.setattr(unkai._files.os, "fsync", fsync)
    monkeypatch.setattr(unkai._files.os, "replace", replace)
    # Not 0600, which is what mkstemp creates anyway: the mode must be set, not inherited.
    atomic_write(tmp_path / "group.key", b"KEY", mode=0o640)
    ((name, mode, content, was_synced),) = seen
    assert name.startswith(".group.key.") and name.endswith(".tmp")
    assert (mode, content, was_synced) == (0o640, b"KEY", True)


def test_secret_is_never_readable_by_others_while_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[int] = []
    real_fdopen = os.fdopen

    class Spy:
        def __init__(self, fd: int) -> None:
            self._file = real_fdopen(fd, "wb")

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self._file.close()

        def fileno(self) -> int:
            return self._file.fileno()

        def write(self, data: bytes) -> int:
            modes.append(stat.S_IMODE(os.fstat(self.fileno()).st_mode))
            return self._file.write(data)

        def flush(self) -> None:
            self._file.flush()

    monkeypatch.setattr(unkai._files.os, "fdopen", lambda fd, _mode: Spy(fd))
    atomic_write(tmp_path / "k", "secret", mode=0o600)
    assert modes == [0o600]


def test_failed_rename_removes_the_temp_file_and_keeps_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    target.write_text("old")

    def replace(src: str, dst: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(unkai._files.os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_failed_write_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(unkai._files.os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        atomic_write(tmp_path / "f", "new")
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "f", "x")


def test_concurrent_writers_use_unique_temp_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every writer has its own temp file; the result is one writer's whole content."""
    writers = 8
    target = tmp_path / "f"
    contents = [f"writer {n}\n".encode() * (1000 + n) for n in range(writers)]
    temps: list[str] = []
    lock = threading.Lock()
    # Hold every writer at its rename until all have written their temp file, so all
    # temp files exist at the same time (a fixed temp name would make them collide).
    barrier = threading.Barrier(writers, timeout=30)

    def replace(src: str, dst: Path) -> None:
        with lock:
            temps.append(src)
        barrier.wait()
        _real_replace(src, dst)

    monkeypatch.setattr(unkai._files.os, "replace", replace)
    errors: list[BaseException] = []

    def write(data: bytes) -> None:
        try:
            atomic_write(target, data, mode=0o600)
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=write, args=(data,)) for data in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(temps)) == writers
    assert target.read_bytes() in contents
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_imports_only_the_standard_library() -> None:
    """The pure layers may import it, so it must not pull in anything else."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(Path(unkai._files.__file__).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add(node.module or "")
    assert {name.partition(".")[0] for name in modules} <= sys.stdlib_module_names
