"""Finding the pinned pulumi CLI: the cache's is taken unrun on every engine run."""

from __future__ import annotations

import os

from unkai.toolchain import find_pulumi
from unkai.toolchain._pulumi import cached_pulumi

VERSION = "3.259.0"


def _cached(monkeypatch, tmp_path, script: str):
    monkeypatch.setenv("UNKAI_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no pulumi on PATH
    binary = cached_pulumi(VERSION)
    binary.parent.mkdir(parents=True)
    binary.write_text(script)
    os.chmod(binary, 0o755)
    return binary


def test_the_cache_s_cli_is_taken_without_running_it(monkeypatch, tmp_path):
    # A CLI that fails when run: found all the same, since it is not run.
    binary = _cached(monkeypatch, tmp_path, "#!/bin/sh\nexit 3\n")
    found = find_pulumi(VERSION, verify=False)
    assert found is not None
    assert (found.path, found.version) == (binary, VERSION)


def test_verifying_runs_the_cli_and_refuses_one_that_fails(monkeypatch, tmp_path):
    _cached(monkeypatch, tmp_path, "#!/bin/sh\nexit 3\n")
    assert find_pulumi(VERSION) is None


def test_verifying_accepts_the_cli_that_answers_the_pinned_version(monkeypatch, tmp_path):
    binary = _cached(monkeypatch, tmp_path, f"#!/bin/sh\necho v{VERSION}\n")
    found = find_pulumi(VERSION)
    assert found is not None and found.path == binary


def test_a_cache_without_the_cli_finds_nothing_either_way(monkeypatch, tmp_path):
    monkeypatch.setenv("UNKAI_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_pulumi(VERSION, verify=False) is None
    assert find_pulumi(VERSION) is None
