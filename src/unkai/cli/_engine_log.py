"""How verbosely the engine logs when unkai runs it, and what unkai says first.

What the pinned engine (pulumi 3.259.0) writes, measured on the smoke stack with a secret
canary: up to ``-v=8`` its log shows a secret as ``{[secret]}``; from ``-v=9`` it logs
every property it marshals for an RPC with its value (``Marshaling property for RPC[…]:
value={…}``), secrets included, on standard error with ``--logtostderr`` or else in
``pulumi.*.log.INFO.*`` files in the temporary folder. ``PULUMI_DEBUG_GRPC=<file>`` makes
it write every gRPC message to that file, secret values in plain text.

So ``unkai up|preview|refresh|destroy --verbose N`` runs the engine at ``min(N, 8)``, on
standard error (no log file is left behind), and says so when it lowered N; and unkai
warns before it runs an engine whose environment asks for the gRPC trace. The engine's
own encrypted run logs (``~/.pulumi/logs``) are outside unkai's reach and not plaintext.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SECRET_SAFE_VERBOSITY = 8
"""The most verbose engine log that shows no secret value (see the module's docstring)."""

CHECKED_WITH = "3.259.0"
"""The engine version :data:`SECRET_SAFE_VERBOSITY` was measured with; a unit test fails
when the pin moves, so that the next engine is measured again."""

GRPC_TRACE = "PULUMI_DEBUG_GRPC"
"""The engine's environment variable that writes every gRPC message to a file."""


@dataclass(frozen=True)
class EngineLog:
    """The engine's log for one run of unkai.

    Attributes:
        verbosity: The engine's ``-v`` level, logged on standard error; 0 for no log.
        notes: What to tell the user before the engine runs, a sentence each.
    """

    verbosity: int
    notes: tuple[str, ...]


def plan_engine_log(verbose: int, environ: Mapping[str, str]) -> EngineLog:
    """The engine's log for ``--verbose verbose``, in an environment ``environ``. Pure.

    Args:
        verbose: The level asked for (0: none).
        environ: The environment the engine inherits.
    """
    notes: list[str] = []
    verbosity = min(verbose, SECRET_SAFE_VERBOSITY)
    if verbose > SECRET_SAFE_VERBOSITY:
        notes.append(
            f"engine log at level {SECRET_SAFE_VERBOSITY}, not {verbose}: from level"
            f" {SECRET_SAFE_VERBOSITY + 1} the engine (pulumi {CHECKED_WITH}) prints the"
            " values of secrets, so unkai does not go there; run pulumi yourself for that,"
            " knowing that its log will hold them"
        )
    trace = environ.get(GRPC_TRACE)
    if trace:
        notes.append(
            f"{GRPC_TRACE} is set: the engine writes every gRPC message to {trace},"
            " secret values included, in plain text; unset it unless you mean that"
        )
    return EngineLog(verbosity=verbosity, notes=tuple(notes))
