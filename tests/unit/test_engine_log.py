"""How verbosely unkai runs the engine: never at a level that prints secret values."""

from __future__ import annotations

import pytest

from unkai.cli._engine_log import (
    CHECKED_WITH,
    SECRET_SAFE_VERBOSITY,
    EngineLog,
    plan_engine_log,
)
from unkai.cli.cloud import engine_log_options
from unkai.toolchain import pulumi_version


def test_no_verbose_means_no_engine_log_and_nothing_to_say():
    assert plan_engine_log(0, {}) == EngineLog(verbosity=0, notes=())


@pytest.mark.parametrize("level", [1, 3, SECRET_SAFE_VERBOSITY])
def test_levels_that_print_no_secret_are_kept_as_asked(level):
    assert plan_engine_log(level, {}) == EngineLog(verbosity=level, notes=())


@pytest.mark.parametrize("level", [SECRET_SAFE_VERBOSITY + 1, 11])
def test_levels_that_print_secrets_are_lowered_and_the_user_told(level):
    log = plan_engine_log(level, {})
    assert log.verbosity == SECRET_SAFE_VERBOSITY
    [note] = log.notes
    assert note.startswith(f"engine log at level 8, not {level}: from level 9 the engine")
    assert "prints the values of secrets" in note


def test_a_grpc_trace_in_the_environment_is_named_before_the_engine_runs():
    log = plan_engine_log(0, {"PULUMI_DEBUG_GRPC": "/tmp/grpc.log"})
    assert log.verbosity == 0
    assert log.notes == (
        "PULUMI_DEBUG_GRPC is set: the engine writes every gRPC message to /tmp/grpc.log,"
        " secret values included, in plain text; unset it unless you mean that",
    )
    assert plan_engine_log(0, {"PULUMI_DEBUG_GRPC": ""}).notes == ()


def test_the_safe_level_was_measured_with_the_pinned_engine():
    # A new engine may log differently: measure it again (the canary test in
    # tests/integration/test_smoke_stack.py), then move CHECKED_WITH.
    assert pulumi_version() == CHECKED_WITH


def test_the_cli_passes_the_level_on_stderr_and_prints_the_notes_first(capsys, monkeypatch):
    monkeypatch.delenv("PULUMI_DEBUG_GRPC", raising=False)
    assert engine_log_options(0) == {}
    options = engine_log_options(12)
    assert options["log_verbosity"] == SECRET_SAFE_VERBOSITY
    assert options["log_to_std_err"] is True
    assert callable(options["on_error"])
    assert "engine log at level 8, not 12" in capsys.readouterr().out
