"""examples/python and examples/python-yaml: clouds declared in Python, through the CLI.

Each example is copied out of the checkout and run from its own folder with the README's
commands. The Python-only cloud is deployed for real (its VMs boot, its database disk is
attached, a second ``up`` changes nothing, destroy leaves no domain); the cloud built in
Python on YAML values is planned and rendered, the instances it makes in Python included,
and two of its environments are deployed side by side, on one host, at the same time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from commands import ok, run

ROOT = Path(__file__).resolve().parents[2]
UNKAI = Path(sys.executable).parent / "unkai"


def copy_of(example: str, tmp: Path) -> Path:
    target = tmp / example
    shutil.copytree(ROOT / "examples" / example, target)
    return target


def domains() -> list[str]:
    return ok(run("virsh", "-c", "qemu:///system", "list", "--name", cwd=ROOT)).split()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_of("python", tmp_path_factory.mktemp("examples"))


def test_python_built_on_yaml_values_plans_and_renders_its_own_instances(tmp_path: Path):
    project = copy_of("python-yaml", tmp_path)
    planned = ok(run(UNKAI, "plan", "staging", cwd=project))
    assert "6 instances" in planned and "kvm-2" in planned
    out = tmp_path / "out"
    ok(run(UNKAI, "render", "local", "--out", out, cwd=project))
    index = json.loads((out / "index.json").read_text())
    rendered = sorted(p for p in index if p.startswith("libvirt/domains/"))
    assert rendered == [f"libvirt/domains/worker-{n}.xml" for n in (1, 2, 3)], rendered
    # What the YAML says (ssh_port_base) reached what Python made.
    assert "hostfwd=tcp:127.0.0.1:2500-:22" in (out / "libvirt/domains/worker-1.xml").read_text()


def test_a_cloud_declared_only_in_python_deploys_and_a_second_up_changes_nothing(shop: Path):
    try:
        shown = ok(run(UNKAI, "up", "local", cwd=shop, timeout=1800))
        assert "db" in shown and "web-" in shown, shown[-3000:]
        running = domains()
        assert "pyshop-local-db" in running
        assert any(d.startswith("pyshop-local-web-") for d in running), running
        # The data disk Python declared is attached (1 GiB, the second disk).
        lsblk = ok(run(UNKAI, "ssh", "local", "db", "lsblk", "-bdno", "SIZE", "/dev/vdb", cwd=shop))
        assert lsblk.split() == [str(1024**3)]
        ok(run(UNKAI, "up", "local", "--expect-no-changes", cwd=shop))
    finally:
        destroyed = run(UNKAI, "destroy", "local", cwd=shop)
    ok(destroyed)
    assert not [d for d in domains() if d.startswith("pyshop-local-")]


def test_two_environments_of_one_project_deploy_side_by_side(tmp_path: Path):
    """Two ``up``s at once: each its own stack and lock, one host configured by both."""
    project = copy_of("python-yaml", tmp_path)
    local = project / "environments" / "local.yaml"
    local.write_text(local.read_text().replace("workers: 3", "workers: 1"))
    (project / "environments" / "second.yaml").write_text(
        "extends: local\nsettings:\n  ssh_port_base: 2510\n"
    )
    started = time.monotonic()
    both = {
        env: subprocess.Popen(
            [UNKAI, "up", env],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for env in ("local", "second")
    }
    try:
        said = {env: proc.communicate(timeout=1500)[0] for env, proc in both.items()}
        print(f"two ups side by side: {time.monotonic() - started:.1f} s")
        for env, proc in both.items():
            assert proc.returncode == 0, said[env][-3000:]
            assert "another `up`" not in said[env]  # different stacks never wait on each other
        running = domains()
        assert {"pyvalues-local-worker-1", "pyvalues-second-worker-1"} <= set(running), running
        for env in ("local", "second"):
            assert ok(run(UNKAI, "ssh", env, "worker-1", "hostname", cwd=project)).strip() == (
                "worker-1"
            )
            ok(run(UNKAI, "up", env, "--expect-no-changes", cwd=project))
    finally:
        for proc in both.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        gone = [run(UNKAI, "destroy", env, cwd=project) for env in ("local", "second")]
    for destroyed in gone:
        ok(destroyed)
    assert not [d for d in domains() if d.startswith("pyvalues-")]
