"""The language host's end of a run: every output awaited, failures raised as the SDK does."""

from __future__ import annotations

import asyncio
from importlib import metadata

import pulumi.runtime.stack as sdk_stack
import pytest
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import ResourceRegistrationFailed

from unkai.langhost import _drain


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    with SETTINGS.lock:
        SETTINGS.outputs.clear()
    yield loop
    with SETTINGS.lock:
        SETTINGS.outputs.clear()
    loop.close()


def _track(task: asyncio.Task) -> asyncio.Task:
    with SETTINGS.lock:
        SETTINGS.outputs.add(task)
    return task


def test_every_output_is_awaited_including_those_made_while_waiting(loop):
    finished: list[str] = []

    async def value(name: str, delay: float) -> str:
        await asyncio.sleep(delay)
        finished.append(name)
        return name

    async def spawning() -> None:
        await asyncio.sleep(0.01)
        # An output resolving makes another one (an apply does): it is waited for too.
        _track(asyncio.ensure_future(value("late", 0.02)))
        finished.append("spawning")

    async def program() -> None:
        for i in range(200):
            _track(asyncio.ensure_future(value(f"v{i}", (i % 7) / 1000)))
        _track(asyncio.ensure_future(spawning()))
        await _drain.wait_for_rpcs()

    loop.run_until_complete(program())
    assert set(finished) == {*(f"v{i}" for i in range(200)), "spawning", "late"}
    assert not SETTINGS.outputs


def test_a_failed_output_is_raised_before_the_slow_ones_finish(loop):
    async def slow() -> None:
        await asyncio.sleep(30)

    async def failing() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("the output failed")

    async def program() -> None:
        slow_task = _track(asyncio.ensure_future(slow()))
        _track(asyncio.ensure_future(failing()))
        try:
            with pytest.raises(ValueError, match="the output failed"):
                await asyncio.wait_for(_drain.wait_for_rpcs(), timeout=5)
        finally:
            slow_task.cancel()

    loop.run_until_complete(program())


def test_an_output_of_a_failed_registration_is_not_an_error(loop):
    async def faulted() -> None:
        raise ResourceRegistrationFailed()

    async def fine() -> str:
        await asyncio.sleep(0.01)
        return "ok"

    async def program() -> str:
        _track(asyncio.ensure_future(faulted()))
        ok = _track(asyncio.ensure_future(fine()))
        await _drain.wait_for_rpcs()
        return ok.result()

    assert loop.run_until_complete(program()) == "ok"


def test_installed_for_the_pinned_sdk_only(monkeypatch):
    original = sdk_stack.wait_for_rpcs
    monkeypatch.setattr(sdk_stack, "wait_for_rpcs", original)  # restored after the test
    assert metadata.version("pulumi") == _drain.FOR_SDK, "the pin moved: re-check _drain"
    assert _drain.install() is True
    assert sdk_stack.wait_for_rpcs is _drain.wait_for_rpcs
    monkeypatch.setattr(sdk_stack, "wait_for_rpcs", original)
    monkeypatch.setattr(_drain, "FOR_SDK", "0.0.0")
    assert _drain.install() is False
    assert sdk_stack.wait_for_rpcs is original
