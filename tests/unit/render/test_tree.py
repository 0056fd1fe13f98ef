from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

import unkai.render._tree as tree_module
from unkai.errors import ConfigError, RenderError
from unkai.model import Environment
from unkai.render import INDEX_FILE, content_hash, render_tree, write_tree

EXPECTED = {
    "ansible/host_vars/kvm-2.yml",
    "ansible/host_vars/local.yml",
    "ansible/inventory.yml",
    "docker/api/Dockerfile",
    "docker/plain/Dockerfile",
    "docker/worker/Dockerfile",
    "index.json",
    "kubernetes/apps/api/deployment.yaml",
    "kubernetes/apps/api/hpa.yaml",
    "kubernetes/apps/api/pdb.yaml",
    "kubernetes/apps/api/service.yaml",
    "kubernetes/apps/nodepool-default.yaml",
    "kubernetes/apps/worker/deployment.yaml",
    "libvirt/networks/backend.xml",
    "libvirt/networks/storage.xml",
    "libvirt/networks/uplink.xml",
} | {
    path
    for vm in ("db", "gw", "web-0", "web-1")
    for path in (
        f"libvirt/domains/{vm}.xml",
        f"cloud-init/{vm}/user-data",
        f"cloud-init/{vm}/meta-data",
        f"cloud-init/{vm}/network-config",
    )
}


def test_tree_paths_and_index(env: Environment) -> None:
    tree = render_tree(env, accelerator="kvm")
    assert {str(path) for path in tree} == EXPECTED
    assert list(tree) == sorted(tree)
    index = json.loads(tree[INDEX_FILE])
    assert index == {str(p): content_hash(t) for p, t in tree.items() if p != INDEX_FILE}
    assert list(index) == sorted(index)


def test_rendering_twice_gives_identical_bytes(env: Environment) -> None:
    assert render_tree(env, accelerator="tcg") == render_tree(env, accelerator="tcg")
    rebuilt = Environment.model_validate(env.model_dump(mode="json"))
    assert render_tree(rebuilt, accelerator="tcg") == render_tree(env, accelerator="tcg")


_CHILD = """
import hashlib, sys
sys.path.insert(0, {tests!r})
from render_fixtures import sample_environment
from unkai.render import INDEX_FILE, render_tree
tree = render_tree(sample_environment(), accelerator="kvm")
print(hashlib.sha256(tree[INDEX_FILE].encode()).hexdigest())
"""


def test_identical_bytes_across_processes(env: Environment) -> None:
    tests = str(Path(__file__).resolve().parents[2])
    digests = set()
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", _CHILD.format(tests=tests)],
            env={**os.environ, "PYTHONHASHSEED": seed, "TZ": f"Etc/GMT+{seed}"},
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(result.stdout.strip())
    here = content_hash(render_tree(env, accelerator="kvm")[INDEX_FILE])
    assert digests == {here}


def test_secret_refs_only(env: Environment) -> None:
    tree = render_tree(env, accelerator="kvm")
    text = "\n".join(tree.values())
    assert "secretKeyRef" in text
    assert "kind: Secret" not in text


def test_mac_collisions_are_refused(monkeypatch: pytest.MonkeyPatch, env: Environment) -> None:
    import unkai.render._libvirt as libvirt
    import unkai.render._tree as tree_module

    monkeypatch.setattr(
        tree_module, "instance_mac", lambda environment, instance, network: "52:54:00:00:00:01"
    )
    monkeypatch.setattr(
        libvirt, "instance_mac", lambda environment, instance, network: "52:54:00:00:00:01"
    )
    with pytest.raises(RenderError, match="same MAC"):
        render_tree(env, accelerator="kvm")


def _tree(**files: str) -> dict[PurePosixPath, str]:
    tree = {PurePosixPath(name.replace("__", "/")): text for name, text in files.items()}
    tree[INDEX_FILE] = "{}\n"
    return tree


def test_write_tree_writes_exact_bytes_and_replaces(tmp_path: Path, env: Environment) -> None:
    out = tmp_path / "out"
    tree = render_tree(env, accelerator="kvm")
    write_tree(tree, out)
    for path, text in tree.items():
        assert (out / path).read_bytes() == text.encode("utf-8")
    write_tree(_tree(a__b="crlf\r\nkept\n"), out)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "a/b",
        "index.json",
    ]
    assert (out / "a/b").read_bytes() == b"crlf\r\nkept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folders left


def test_write_tree_failure_leaves_the_old_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_tree(_tree(old="old\n"), out)
    calls = []
    real_write = tree_module._write_file

    def failing_write(target: Path, text: str) -> None:
        calls.append(target)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_write(target, text)

    monkeypatch.setattr(tree_module, "_write_file", failing_write)
    with pytest.raises(RenderError, match="No space left"):
        write_tree(_tree(new="new\n", other="x\n"), out)
    assert (out / "old").read_text() == "old\n"
    assert not (out / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_tree_refuses_foreign_folders_and_bad_paths(tmp_path: Path) -> None:
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="refusing to replace"):
        write_tree(_tree(a="a"), foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"
    bad: dict[PurePosixPath, Any]
    for bad in (
        {PurePosixPath("../x"): "x"},
        {PurePosixPath("/abs"): "x"},
        {PurePosixPath("a"): "x", PurePosixPath("a/b"): "y"},
    ):
        with pytest.raises(RenderError):
            write_tree(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
