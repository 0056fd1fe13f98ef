"""The smoke stack through the real pulumi engine and unkai's provider plugin."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
import zlib
from pathlib import Path

import pytest
from pulumi import automation as auto

from unkai.cli._workspace import packaged_program, select_stack, workspace_env
from unkai.cli.cloud import engine_log_options

ROOT = Path(__file__).resolve().parents[2]
SMOKE = packaged_program("smoke", ROOT)
SECRET = "smoke-secret-" + uuid.uuid4().hex


@pytest.fixture
def stack(tmp_path):
    name = "it-" + uuid.uuid4().hex[:8]
    st = select_stack(SMOKE, name)
    st.set_config("message", auto.ConfigValue(SECRET, secret=True))
    st.set_config("path", auto.ConfigValue(str(tmp_path / "greeting.txt")))
    yield st
    st.destroy()
    st.workspace.remove_stack(name)


def test_up_then_no_change_preview_then_destroy(stack, tmp_path):
    target = tmp_path / "greeting.txt"
    up = stack.up()
    assert up.summary.resource_changes == {"create": 2}
    assert target.read_text() == SECRET
    assert (target.stat().st_mode & 0o777) == 0o600
    assert up.outputs["mode"].value == "0600"

    preview = stack.preview(expect_no_changes=True)
    assert preview.change_summary == {"same": 2}
    again = stack.up(expect_no_changes=True)
    assert again.summary.resource_changes == {"same": 2}

    # The state as the backend stores it (with its history and backups), not
    # export_stack(), which asks for --show-secrets.
    stored = [p for p in (ROOT / ".unkai" / "state").rglob("*") if p.is_file()]
    assert any(stack.name in str(p) for p in stored)
    for path in stored:
        assert SECRET not in path.read_text(errors="replace"), f"plaintext secret in {path}"
    deployment = json.dumps(stack.export_stack().deployment)
    assert "4dabf18193072939515e22adb298388d" in deployment  # the secret signature

    stack.destroy()
    assert not target.exists()


def test_refresh_sees_drift_and_up_repairs_it(stack, tmp_path):
    target = tmp_path / "greeting.txt"
    stack.up()
    target.write_text("changed behind unkai's back")
    stack.refresh()
    preview = stack.preview()
    assert preview.change_summary.get("update") == 1
    stack.up()
    assert target.read_text() == SECRET

    target.unlink()
    stack.refresh()
    assert stack.preview().change_summary.get("create") == 1
    stack.up()
    assert target.read_text() == SECRET


def test_changing_the_path_is_a_replace_and_says_why(stack, tmp_path):
    stack.up()
    stack.set_config("path", auto.ConfigValue(str(tmp_path / "moved.txt")))
    lines: list[str] = []
    events: list[auto.EngineEvent] = []
    preview = stack.preview(on_output=lines.append, on_event=events.append)
    assert preview.change_summary.get("replace") == 1
    reason = "replace because path changed: a file cannot move"
    assert reason in "".join(lines)  # the engine's own display shows it on the resource
    logged = [e.diagnostic_event for e in events if e.diagnostic_event is not None]
    assert any(
        (d.urn or "").endswith("::greeting") and d.message.startswith(reason) for d in logged
    ), "the reason is logged on the resource's URN"
    stack.up()
    assert (tmp_path / "moved.txt").read_text() == SECRET
    assert not (tmp_path / "greeting.txt").exists()


def test_a_failed_create_reads_as_a_sentence_without_class_names(stack, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    stack.set_config("path", auto.ConfigValue(str(blocker / "greeting.txt")))
    lines: list[str] = []
    with pytest.raises(auto.CommandError):
        stack.up(on_output=lines.append)
    out = "".join(lines)
    assert f"greeting: cannot write {blocker / 'greeting.txt'}: File exists" in out, out
    assert "Unexpected" not in out and "<class" not in out and "Traceback" not in out, out


def test_unkais_most_verbose_engine_log_shows_no_secret(stack, capsys, monkeypatch):
    monkeypatch.delenv("PULUMI_DEBUG_GRPC", raising=False)
    out: list[str] = []
    stack.up(on_output=out.append, **engine_log_options(99))
    err = capsys.readouterr().err
    # The engine did log, down to its plans, and showed the secret as a secret.
    assert "Planner decided to create" in err and "content:{[secret]}" in err
    assert SECRET not in err and SECRET not in "\n".join(out)


def _engine_logs() -> Path:
    """Where the pinned engine keeps the automatic log of each of its runs."""
    return Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi") / "logs"


def test_the_engine_s_own_logs_hold_no_secret_in_the_clear(stack):
    """The engine logs every run to disk, whatever its level: the update's log is
    encrypted with the stack's secrets manager, and no log readable without it (gzip
    only, written before the stack is known) holds the secret."""
    before = set(_engine_logs().glob("*.log"))
    stack.up(on_output=lambda _: None)
    written = sorted(set(_engine_logs().glob("*.log")) - before)
    encrypted = [log for log in written if log.read_bytes().startswith(b"PLOG")]
    assert encrypted, f"no encrypted log of the update among {written}"
    for log in written:
        data = log.read_bytes()
        if not data.startswith(b"PLOG"):  # gzip; a run still writing has no end yet
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
        assert SECRET.encode() not in data, f"plaintext secret in {log}"


def test_pulumi_cli_inside_the_stack_folder(tmp_path):
    """`pulumi up` run by hand in the smoke program's folder, through the language host on PATH."""
    env = {**os.environ, **workspace_env(ROOT), "PULUMI_SKIP_CONFIRMATIONS": "true"}
    name = "cli-" + uuid.uuid4().hex[:8]
    path = tmp_path / "by-hand.txt"

    def pulumi(*args: str) -> str:
        proc = subprocess.run(
            ["pulumi", *args, "--stack", name, "--non-interactive"],
            cwd=SMOKE,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    subprocess.run(
        ["pulumi", "stack", "init", name, "--non-interactive"],
        cwd=SMOKE,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        pulumi("config", "set", "--secret", "message", SECRET)
        pulumi("config", "set", "path", str(path))
        out = pulumi("up", "--yes", "--skip-preview")
        assert "2 created" in out
        assert path.read_text() == SECRET
        assert SECRET not in out
        assert SECRET not in (SMOKE / f"Pulumi.{name}.yaml").read_text()
        out = pulumi("preview", "--expect-no-changes")
        assert "2 unchanged" in out
        pulumi("config", "set", "path", str(tmp_path / "moved.txt"))
        out = pulumi("preview")
        assert "replace because path changed: a file cannot move" in out
        pulumi("destroy", "--yes", "--skip-preview")
        assert not path.exists()
        schema = json.loads(pulumi_schema(env))
        assert schema["name"] == "unkai"
        assert "unkai:compute:Instance" in schema["resources"]
    finally:
        subprocess.run(
            ["pulumi", "stack", "rm", name, "--yes", "--force", "--non-interactive"],
            cwd=SMOKE,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        (SMOKE / f"Pulumi.{name}.yaml").unlink(missing_ok=True)


def pulumi_schema(env: dict[str, str]) -> str:
    """``pulumi package get-schema`` on unkai's plugin: the engine loads and checks it."""
    plugin = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "pulumi-resource-unkai"
    proc = subprocess.run(
        ["pulumi", "package", "get-schema", str(plugin)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout
