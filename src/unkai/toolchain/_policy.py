"""The virtualenv CrossGuard policy packs run in, beside the project's own.

A Python policy pack is started by the engine through the language host, with the
interpreter of the virtualenv its ``PulumiPolicy.yaml`` names. ``pulumi-policy`` pins
protobuf 5 and the project's venv has protobuf 6, so packs get a venv of their own:
the engine's SDK and CrossGuard's, at :data:`POLICY_PINS`, made once in the cache (from
PyPI) by ``scripts/bootstrap`` or on first use.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from unkai._files import file_lock
from unkai.errors import ToolchainError
from unkai.toolchain._paths import cache_root

__all__ = ["POLICY_PINS", "ensure_policy_venv", "policy_venv"]

POLICY_PINS = ("pulumi==3.259.0", "pulumi-policy==1.21.0", "protobuf==5.29.6", "grpcio==1.85.1")
"""The policy venv's packages: the engine's SDK and CrossGuard's, which wants protobuf 5."""


def policy_venv() -> Path:
    """Where the cache keeps the policy venv of :data:`POLICY_PINS` (made or not)."""
    key = hashlib.sha256(" ".join(POLICY_PINS).encode()).hexdigest()[:12]
    return cache_root() / "policy-venv" / key


def ensure_policy_venv(*, say: Callable[[str], None] = lambda _: None) -> Path:
    """The policy venv, made first when missing (pip, about 30 s); return its folder.

    Raises:
        ToolchainError: pip could not install the pins (its output in the message).
    """
    venv = policy_venv()
    python = venv / "bin" / "python"
    with file_lock(cache_root() / "locks" / f"policy-venv-{venv.name}.lock"):
        if (venv / "ready").is_file():
            return venv
        say(f"making the policy packs' virtualenv ({', '.join(POLICY_PINS)})")
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(venv)],
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *POLICY_PINS],
        ]  # fmt: skip
        for argv in steps:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise ToolchainError(
                    f"the policy packs' virtualenv could not be made ({' '.join(argv[:4])}"
                    f" …): {(done.stderr or done.stdout).strip()[-2000:]}"
                )
        (venv / "ready").write_text("\n".join(POLICY_PINS) + "\n")
    return venv
