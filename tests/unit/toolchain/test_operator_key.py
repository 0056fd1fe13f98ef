"""The project's operator key and passphrase: made once, even by commands started together."""

from __future__ import annotations

import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from unkai.cli._workspace import passphrase_file
from unkai.toolchain import operator_key


def test_commands_started_together_make_one_key_with_its_public_half(tmp_path: Path):
    # Separate processes, as two `unkai up`s are; each finds no key when it starts.
    with ProcessPoolExecutor(max_workers=6) as pool:
        keys = list(pool.map(operator_key, [tmp_path] * 6))
    assert len(set(keys)) == 1
    key = keys[0]
    assert (key.stat().st_mode & 0o777) == 0o600
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True
    ).stdout.split()[:2]
    assert key.with_suffix(".pub").read_text().split()[:2] == derived
    assert sorted(p.name for p in key.parent.iterdir()) == [
        ".operator-key.lock", "id_ed25519", "id_ed25519.pub",
    ]  # fmt: skip


def test_commands_started_together_share_one_whole_passphrase(tmp_path: Path):
    with ProcessPoolExecutor(max_workers=6) as pool:
        paths = list(pool.map(passphrase_file, [tmp_path] * 6))
    assert len(set(paths)) == 1
    text = paths[0].read_text()
    assert len(text.strip()) >= 32 and text.endswith("\n")
    assert (paths[0].stat().st_mode & 0o777) == 0o600
