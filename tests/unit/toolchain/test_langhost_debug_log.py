"""The program's debug messages: dropped before the engine unless asked for."""

from __future__ import annotations

import pulumi.log
import pytest
from pulumi.runtime.proto import engine_pb2

from unkai.langhost import _debug_log


class _Engine:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    def Log(self, request: engine_pb2.LogRequest) -> None:  # the gRPC method's name
        self.sent.append((request.severity, request.message))


@pytest.fixture
def engine(monkeypatch):
    fake = _Engine()
    monkeypatch.setattr(pulumi.log, "get_engine", lambda: fake)
    monkeypatch.setattr(pulumi.log, "debug", pulumi.log.debug)  # restored after the test
    return fake


def test_debug_messages_are_dropped_and_the_others_still_sent(engine):
    assert _debug_log.install({}) is True
    pulumi.log.debug("registering resource: ty=unkai:compute:Instance")
    pulumi.log.info("an info line")
    pulumi.log.warn("a warning")
    assert engine.sent == [(engine_pb2.INFO, "an info line"), (engine_pb2.WARNING, "a warning")]


def test_asked_for_they_are_sent(engine):
    assert _debug_log.install({_debug_log.PROGRAM_DEBUG: "1"}) is False
    pulumi.log.debug("registering resource")
    assert engine.sent == [(engine_pb2.DEBUG, "registering resource")]
