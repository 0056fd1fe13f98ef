"""The base of a review: the project as a Git ref has it, in a folder of its own."""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from unkai.errors import ConfigError

__all__ = ["Checkout", "base_checkout", "head_label"]


@dataclass(frozen=True)
class Checkout:
    """The project at a Git ref, extracted read-only.

    Attributes:
        root: The project's folder in the extracted tree (it may not exist: the ref
            predates the project).
        ref: The ref as the user gave it.
        commit: Its commit, abbreviated.
    """

    root: Path
    ref: str
    commit: str

    @property
    def label(self) -> str:
        """``main (1a2b3c4)``."""
        return f"{self.ref} ({self.commit})" if self.ref != self.commit else self.commit


def _git(top: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", str(top), *args], capture_output=True, check=False, timeout=120
    )


def _top(root: Path) -> Path:
    found = _git(root, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise ConfigError(
            f"unkai review compares with a Git ref, and {root} is not inside a Git repository"
            " (git init, commit, then review a branch against its base)"
        )
    return Path(found.stdout.decode().strip())


@contextmanager
def base_checkout(root: Path, ref: str) -> Iterator[Checkout]:
    """The project at ``ref``, in a temporary folder removed afterwards.

    The files come from ``git archive``: the repository, its index and its working tree
    are left as they are.

    Raises:
        ConfigError: ``root`` is not in a Git repository, or ``ref`` names no commit.
    """
    top = _top(root)
    found = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode != 0:
        raise ConfigError(
            "no commit has this name in the repository",
            key_path="--base",
            value=ref,
            allowed="a branch, tag or commit (e.g. origin/main; fetch it first in CI)",
        )
    commit = found.stdout.decode().strip()
    prefix = root.resolve().relative_to(top.resolve())
    with tempfile.TemporaryDirectory(prefix="unkai-review-") as folder:
        archive = _git(top, "archive", "--format=tar", commit)
        if archive.returncode != 0:
            raise ConfigError(f"git archive {ref} failed: {archive.stderr.decode().strip()}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(folder, filter="data")
        yield Checkout(root=Path(folder) / prefix, ref=ref, commit=commit[:12])


def head_label(root: Path) -> str:
    """The working tree as a label: its commit, and whether files differ from it."""
    top = _top(root)
    head = _git(top, "rev-parse", "--short=12", "HEAD")
    commit = head.stdout.decode().strip() if head.returncode == 0 else "no commit yet"
    status = _git(top, "status", "--porcelain", "--untracked-files=normal", "--", str(root))
    dirty = status.returncode == 0 and status.stdout.strip()
    return f"{commit} + uncommitted changes" if dirty else commit
