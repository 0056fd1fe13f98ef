from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from unkai.cli.app import _register, app
from unkai.render import content_hash
from unkai.toolchain import cached_probe

_register()
runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, sample_document: dict[str, object]) -> Path:
    root = tmp_path / "project"
    (root / "environments").mkdir(parents=True)
    (root / "unkai.toml").write_text('[project]\nname = "test"\n')
    document = {k: v for k, v in sample_document.items() if k != "name"}
    (root / "environments" / "dev.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return root


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_render_writes_tree_and_index_twice_identically(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = runner.invoke(app, ["render", "dev", "--out", str(out), "--root", str(project)])
    assert first.exit_code == 0, first.output
    assert "cloud-init" in first.output and "wrote" in first.output
    files = _files(out)
    index = json.loads(files.pop("index.json"))
    assert index == {path: content_hash(data.decode()) for path, data in files.items()}
    # Without --accelerator: what `unkai up` uses, the KVM probe's verdict here.
    second = runner.invoke(
        app,
        ["render", "dev", "--out", str(out), "--root", str(project),
         "--accelerator", cached_probe().accelerator],
    )  # fmt: skip
    assert second.exit_code == 0, second.output
    assert _files(out) == {**files, "index.json": _files(out)["index.json"]}
    tcg = runner.invoke(
        app, ["render", "dev", "--out", str(out), "--root", str(project), "--accelerator", "tcg"]
    )
    assert tcg.exit_code == 0
    assert b"<domain type='qemu'" in (out / "libvirt/domains/db.xml").read_bytes()


def test_project_template_overrides_builtin(project: Path, tmp_path: Path) -> None:
    own = project / "templates" / "docker"
    own.mkdir(parents=True)
    (own / "worker.Dockerfile.j2").write_text(
        'FROM {{ image.base_image }}\nLABEL dev.unkai.content-hash="{{ content_hash }}"\n'
        "USER {{ uid }}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", "dev", "--out", str(out), "--root", str(project)])
    assert result.exit_code == 0, result.output
    assert (out / "docker/worker/Dockerfile").read_text().startswith("FROM unkai/debian:12\nLABEL")


def test_bad_environment_writes_nothing(project: Path, tmp_path: Path) -> None:
    path = project / "environments" / "dev.yaml"
    document = yaml.safe_load(path.read_text())
    document["instances"]["gw"]["user_data"] = {"hostname": "clash"}
    path.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", "dev", "--out", str(out), "--root", str(project)])
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "hostname" in str(result.exception)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_unknown_accelerator(project: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "render",
            "dev",
            "--out",
            str(tmp_path / "o"),
            "--root",
            str(project),
            "--accelerator",
            "xen",
        ],
    )
    assert result.exit_code != 0
    assert not (tmp_path / "o").exists()
    shutil.rmtree(tmp_path / "o", ignore_errors=True)


def test_the_rendered_user_data_is_what_deploy_applies(project: Path, tmp_path: Path) -> None:
    """The operator key included: render adds it as up does, to the same bytes."""
    import asyncio

    from unkai.components import instance_inputs

    # instance_inputs makes Pulumi outputs, which need an event loop in this thread.
    asyncio.set_event_loop(asyncio.new_event_loop())
    from unkai.environments import load_environment
    from unkai.render import with_keys

    out = tmp_path / "out"
    args = ["render", "dev", "--out", str(out), "--root", str(project), "--accelerator", "tcg"]
    assert runner.invoke(app, args).exit_code == 0
    key = (project / ".unkai" / "ssh" / "id_ed25519.pub").read_text().strip()
    env = load_environment("dev", root=project)
    host = next(iter(env.hosts.values()))
    for instance in env.all_instances():
        applied = instance_inputs(
            with_keys(instance, (key,)), env=env, host=host, accelerator="tcg",
            image_volume_path="/pool/image.qcow2",
        )  # fmt: skip
        rendered = (out / "cloud-init" / instance.name / "user-data").read_text()
        assert key in rendered
        assert rendered == applied.user_data
