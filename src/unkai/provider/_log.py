"""What a handler tells the user goes through the engine, on the resource's row.

The engine starts the plugin with its own address; :func:`connect_engine` opens a
channel to its ``Log`` service once. The provider sets the URN of the resource it is
working on (:func:`working_on`) and a handler reports with :func:`say`: the line reaches
``pulumi up`` / ``unkai up`` under that resource instead of the plugin's hidden stderr.
Without an engine (unit tests) lines go to stderr.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "connect_engine",
    "parse_replace_reason",
    "replace_reason",
    "say",
    "warn",
    "working_on",
]

_engine: Any = None
_urn: contextvars.ContextVar[str] = contextvars.ContextVar("unkai_urn", default="")


def connect_engine(address: str) -> None:
    """Send every later :func:`say` to the engine at ``address`` (``host:port``)."""
    global _engine
    import grpc
    from pulumi.runtime.proto import engine_pb2_grpc

    _engine = engine_pb2_grpc.EngineStub(grpc.insecure_channel(address))


@contextmanager
def working_on(urn: str) -> Iterator[None]:
    """Within this block, :func:`say` reports on the resource ``urn``."""
    token = _urn.set(urn)
    try:
        yield
    finally:
        _urn.reset(token)


def _log(message: str, *, severity: str, ephemeral: bool) -> None:
    if _engine is None:
        print(f"unkai: {message}", file=sys.stderr, flush=True)
        return
    from pulumi.runtime.proto import engine_pb2

    level = engine_pb2.WARNING if severity == "warning" else engine_pb2.INFO
    try:
        _engine.Log(
            engine_pb2.LogRequest(
                severity=level, message=message, urn=_urn.get(), ephemeral=ephemeral
            )
        )
    except Exception:
        print(f"unkai: {message}", file=sys.stderr, flush=True)


def say(message: str) -> None:
    """Report progress on the current resource (shown live and kept in the log)."""
    _log(message, severity="info", ephemeral=False)


def warn(message: str) -> None:
    """Report something the user should act on, on the current resource."""
    _log(message, severity="warning", ephemeral=False)


_REPLACE = "replace because "
_CHANGED = " changed: "


def replace_reason(prop: str, reason: str) -> str:
    """The line the provider logs on a resource a preview replaces: what changed, and why."""
    return f"{_REPLACE}{prop}{_CHANGED}{reason}"


def parse_replace_reason(message: str) -> tuple[str, str] | None:
    """``(property, reason)`` of a :func:`replace_reason` line; None for any other line."""
    if not message.startswith(_REPLACE) or _CHANGED not in message:
        return None
    prop, _, reason = message.removeprefix(_REPLACE).partition(_CHANGED)
    return prop, reason.strip()
