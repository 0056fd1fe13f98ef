"""The error boundary of the ``unkai`` command: a sentence and an exit status, no traceback."""

from __future__ import annotations

import importlib

import pytest

from unkai.cli._workspace import _interrupted
from unkai.errors import ConfigError, DriverError, Interrupted

cli = importlib.import_module("unkai.cli.app")  # the package exports its Typer as `app`


def _main_raising(monkeypatch, capsys, error: BaseException) -> tuple[int, str]:
    def command() -> None:
        raise error

    monkeypatch.setattr(cli, "_register", lambda: None)
    monkeypatch.setattr(cli, "app", command)
    with pytest.raises(SystemExit) as ended:
        cli.main()
    code = ended.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err


def test_a_ctrl_c_outside_the_engine_is_a_sentence_and_exit_130(monkeypatch, capsys):
    code, said = _main_raising(monkeypatch, capsys, KeyboardInterrupt())
    assert (code, said) == (130, "error: interrupted\n")


def test_an_interrupted_engine_run_says_what_it_left_with_exit_130(monkeypatch, capsys):
    code, said = _main_raising(monkeypatch, capsys, Interrupted("interrupted: the preview"))
    assert (code, said) == (130, "error: interrupted: the preview\n")


def test_bad_input_still_exits_2(monkeypatch, capsys):
    code, said = _main_raising(monkeypatch, capsys, ConfigError("bad", file="a.yaml"))
    assert (code, said) == (2, "error: a.yaml: bad\n")


def test_any_other_failure_exits_1(monkeypatch, capsys):
    code, said = _main_raising(monkeypatch, capsys, DriverError("libvirtd is gone"))
    assert (code, said) == (1, "error: libvirtd is gone\n")


@pytest.mark.parametrize(
    ("args", "at_once", "said"),
    [
        (["--non-interactive", "preview", "--stack", "local"], False, "the preview stopped;"),
        (["up", "--yes"], False, "finished the steps under way, saved the state and stopped;"),
        (["up", "--yes"], True, "interrupted twice: the engine stopped at once"),
        (["destroy"], False, "the next destroy does the rest"),
        (["refresh"], True, "the next refresh finds and finishes them"),
        (["stack", "output"], False, "interrupted: pulumi stack stopped"),
    ],
)
def test_what_an_interrupted_engine_run_left_depends_on_the_command(args, at_once, said):
    assert said in _interrupted(args, at_once=at_once)
