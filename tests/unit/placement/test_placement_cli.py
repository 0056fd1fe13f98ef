from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from placement_envs import build_env, host
from typer.testing import CliRunner

from unkai.cli import main
from unkai.cli import plan as plan_module
from unkai.cli.app import _register, app
from unkai.cli.measure import load_measured
from unkai.errors import ConfigError
from unkai.model import Environment

runner = CliRunner()
_register()


def sample() -> Environment:
    return build_env(
        {"kvm-1": host(), "kvm-2": host()},
        templates={"web": {"machine_type": "e2-standard-2"}},
        groups={"web": {"template": "web", "size": 2}},
        instances={"db": {"machine_type": "e2-medium", "disks": [{"name": "d", "size_gb": 50}]}},
    )


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path | None]]:
    calls: list[tuple[str, Path | None]] = []

    def load(name: str, root: Path | None) -> Environment:
        calls.append((name, root))
        if name == "broken":
            raise ConfigError("unknown zone", file="environments/broken.yaml", key_path="zones.b")
        if name == "full":
            return build_env(
                {"kvm-1": host()}, instances={"big": {"machine_type": "n2-standard-16"}}
            )
        return sample()

    monkeypatch.setattr(plan_module, "_load", load)
    # The project's own folder, as resolve_root would find it: here, the --root given.
    monkeypatch.setattr(
        plan_module, "_measured", lambda name, root: load_measured(Path(root or "/nowhere"), name)
    )
    return calls


def test_plan_prints_hosts_instances_and_density(loaded: list[tuple[str, Path | None]]) -> None:
    result = runner.invoke(app, ["plan", "dev", "--root", "/somewhere"])
    assert result.exit_code == 0, result.output
    assert loaded == [("dev", Path("/somewhere"))]
    out = result.output
    assert "hosts of test" in out
    assert "kvm-1" in out and "kvm-2" in out
    assert "db, web-1" in out or "web-0" in out
    assert "as containers" in out
    assert "the guest OS of 3 instances takes 1.5 GiB of memory and 12.0 GiB of disk" in out


def test_plan_uses_what_unkai_measure_kept_and_names_the_source(
    loaded: list[tuple[str, Path | None]], tmp_path: Path
) -> None:
    kept = tmp_path / ".unkai" / "measurements" / "dev.json"
    kept.parent.mkdir(parents=True)
    kept.write_text(json.dumps({
        "measured_at": "2026-12-01 19:00 UTC",
        "density": {"vm_guest_memory_mb": {"value": 200, "how": "QEMU's resident memory"}},
    }))  # fmt: skip
    result = runner.invoke(app, ["plan", "dev", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "(200 MiB and 4 GiB each)" in out
    assert "vm_guest_memory_mb = 200: measured 2026-12-01 19:00 UTC: QEMU's resident memory" in out
    assert "vm_os_disk_gb = 4: assumed: unkai's default" in out
    document = json.loads(
        runner.invoke(app, ["plan", "dev", "--json", "--root", str(tmp_path)]).stdout
    )
    assert document["density"]["settings"]["vm_guest_memory_mb"] == 200


def test_plan_json_is_the_whole_plan(loaded: list[tuple[str, Path | None]]) -> None:
    result = runner.invoke(app, ["plan", "dev", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"environment", "placement", "capacity", "density"}
    assert set(document["placement"]["assignments"]) == {"db", "web-0", "web-1"}
    assert document["density"]["vm"]["overhead_memory_mb"] == 3 * 512
    assert document["capacity"]["memory_mb"]["percent"] > 0


def test_plan_chart_writes_a_png(loaded: list[tuple[str, Path | None]], tmp_path: Path) -> None:
    chart = tmp_path / "plan.png"
    result = runner.invoke(app, ["plan", "dev", "--chart", str(chart)])
    assert result.exit_code == 0, result.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("env", "status", "message"),
    [
        ("full", 1, "error: 1 of 1 instances of environment 'test' cannot be placed:"),
        ("broken", 2, "error: environments/broken.yaml:zones.b: unknown zone"),
    ],
)
def test_errors_exit_non_zero_with_the_message(
    loaded: list[tuple[str, Path | None]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: str,
    status: int,
    message: str,
) -> None:
    monkeypatch.setattr(sys, "argv", ["unkai", "plan", env])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == status
    err = " ".join(capsys.readouterr().err.split())
    assert message in err
