"""``unkai env show|diff|new`` through typer's CliRunner and the real error boundary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from unkai.cli import main as unkai_main
from unkai.cli.env import env_app
from unkai.environments import load_environment

runner = CliRunner()


def _main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run the real ``unkai`` entry point; return exit status, stdout and stderr."""
    monkeypatch.setattr(sys, "argv", ["unkai", *args])
    with pytest.raises(SystemExit) as caught:
        unkai_main()
    out, err = capsys.readouterr()
    code = caught.value.code
    return (code if isinstance(code, int) else 0), out, err


def test_show_prints_the_resolved_environment_as_yaml(shipped: Path) -> None:
    result = runner.invoke(env_app, ["show", "local", "--root", str(shipped)])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown == load_environment("local", root=shipped).model_dump(mode="json")
    assert shown["hosts"]["localhost"]["libvirt_uri"] == "qemu:///system"  # defaults filled
    assert shown["workloads"]["api"]["secret_env"] == {"DB_PASSWORD": {"name": "db-password"}}


def test_show_json(shipped: Path) -> None:
    result = runner.invoke(env_app, ["show", "prod", "--json", "--root", str(shipped)])
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["name"] == "prod" and shown["instance_groups"]["web"]["size"] == 6


def test_diff_tree(shipped: Path) -> None:
    result = runner.invoke(env_app, ["diff", "dev", "staging", "--root", str(shipped)])
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("dev → staging\n")
    assert "~ size: 2 → 3" in out
    assert "+ kvm-stg-1" in out and "- kvm-dev-1" in out
    assert '~ cidr: "10.20.0.0/24" → "10.30.0.0/22"' in out
    assert out.rstrip().endswith("differences: 7 added, 4 removed, 21 changed")


def test_diff_json_is_a_stable_list(shipped: Path) -> None:
    args = ["diff", "local", "prod", "--json", "--root", str(shipped)]
    first = runner.invoke(env_app, args)
    second = runner.invoke(env_app, args)
    assert first.exit_code == 0 and first.stdout == second.stdout
    changes = json.loads(first.stdout)
    assert all(set(c) == {"path", "op", "old", "new"} for c in changes)
    assert {
        "path": "instance_groups.web.size",
        "op": "change",
        "old": 2,
        "new": 6,
    } in changes
    assert {
        k: v
        for k, v in next(c for c in changes if c["path"] == "hosts.localhost").items()
        if k in ("path", "op")
    } == {"path": "hosts.localhost", "op": "remove"}
    assert not any(c["path"] == "name" for c in changes)


def test_diff_of_an_environment_with_itself(shipped: Path) -> None:
    result = runner.invoke(env_app, ["diff", "prod", "prod", "--root", str(shipped)])
    assert (result.exit_code, result.stdout) == (0, "prod and prod do not differ\n")
    result = runner.invoke(env_app, ["diff", "prod", "prod", "--json", "--root", str(shipped)])
    assert json.loads(result.stdout) == []


def test_new_writes_only_extends(shipped: Path) -> None:
    result = runner.invoke(env_app, ["new", "qa", "--from", "staging", "--root", str(shipped)])
    assert result.exit_code == 0
    assert result.stdout == "created environments/qa.yaml (extends staging)\n"
    text = (shipped / "environments" / "qa.yaml").read_text()
    assert yaml.safe_load(text) == {"extends": "staging"}
    assert all(line.startswith("#") for line in text.splitlines()[:-1])
    qa = load_environment("qa", root=shipped)
    staging = load_environment("staging", root=shipped)
    assert qa.model_dump(exclude={"name"}) == staging.model_dump(exclude={"name"})
    diff = runner.invoke(env_app, ["diff", "staging", "qa", "--root", str(shipped)])
    assert diff.stdout == "staging and qa do not differ\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["env", "show", "nope"],
            "error: unknown environment 'nope'; allowed: one of base, dev, local, prod, staging",
        ),
        (["env", "diff", "local", "Prod"], "error: not an environment name (got 'Prod')"),
        (
            ["env", "new", "staging", "--from", "dev"],
            "error: environments/staging.yaml: environment 'staging' already exists",
        ),
        (["env", "new", "QA_1", "--from", "dev"], "error: not an environment name (got 'QA_1')"),
        (["env", "new", "qa", "--from", "nope"], "error: unknown environment 'nope'"),
    ],
)
def test_errors_exit_2_with_the_message(
    shipped: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    before = sorted(p.name for p in (shipped / "environments").iterdir())
    code, out, err = _main(monkeypatch, capsys, *args, "--root", str(shipped))
    assert code == 2
    assert out == ""
    assert " ".join(err.split()).startswith(message)
    assert sorted(p.name for p in (shipped / "environments").iterdir()) == before


def test_new_refuses_an_invalid_source_before_writing(
    shipped: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (shipped / "environments" / "broken.yaml").write_text("extends: base\nhosts: 5\n")
    code, _, err = _main(
        monkeypatch, capsys, "env", "new", "qa", "--from", "broken", "--root", str(shipped)
    )
    assert code == 2
    assert "environments/broken.yaml:2: hosts: Input should be a valid dictionary" in err
    assert not (shipped / "environments" / "qa.yaml").exists()


def test_invalid_environment_lists_every_problem(
    shipped: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (shipped / "environments" / "qa.yaml").write_text(
        "extends: prod\ninstance_groups:\n  web: {size: -1}\n"
        "networks:\n  default: {cidr: 10.0.0.1/24}\n"
    )
    code, _, err = _main(monkeypatch, capsys, "env", "show", "qa", "--root", str(shipped))
    assert code == 2
    # The error console wraps at the terminal width: compare the words.
    words = " ".join(err.split())
    assert words.startswith(
        "error: environment 'qa' is invalid: 2 problems environments/qa.yaml:3:"
    )
    assert words.index("qa.yaml:3: instance_groups.web.size:") < words.index(
        "qa.yaml:5: networks.default.cidr: '10.0.0.1/24' has host bits set"
    )


def test_root_defaults_to_the_project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[3]
    monkeypatch.chdir(repo / "src")
    result = runner.invoke(env_app, ["show", "local", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["name"] == "local"


def test_error_text_is_not_read_as_markup(
    shipped: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (shipped / "environments" / "qa.yaml").write_text(
        "extends: base\nworkloads:\n  api:\n    secret_env: {DB_PASSWORD: 'hunter2!'}\n"
    )
    code, _, err = _main(monkeypatch, capsys, "env", "show", "qa", "--root", str(shipped))
    assert code == 2
    words = " ".join(err.split())
    assert "allowed: [namespace:]key" in words
    assert "<redacted>" in words and "hunter2" not in words
