"""The end of a program run: wait for its RPCs and outputs in time linear in the outputs.

When a Pulumi Python program returns, the SDK's ``pulumi.runtime.stack.wait_for_rpcs``
waits for the outstanding RPCs, then for every pending ``Output``. The pinned SDK waits
for the outputs with ``asyncio.wait(pending, return_when=FIRST_COMPLETED)`` in a loop:
each time any output resolves, it hooks and unhooks a callback on every output still
pending. An unkai program of 1,000 instances has tens of thousands of outputs resolving
one resource at a time while the engine works, so the loop is quadratic: measured
with py-spy on ``benchmarks/bench_preview.py``, it took a third of the program's time
and held up the registrations behind it (preview 19.2 s, 14.1 s with this drain).

:func:`wait_for_rpcs` is the same function with ``FIRST_EXCEPTION``: it returns when
every pending output is done, or at once when one fails, so a failure is re-raised as
early as before and each output is hooked once. Outputs created meanwhile are taken up
by the next round, as before. :func:`install` puts it in place of the SDK's for the
pinned SDK version only (:data:`FOR_SDK`); any other version keeps its own.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["FOR_SDK", "install", "wait_for_rpcs"]

FOR_SDK = "3.259.0"
"""The SDK version whose ``wait_for_rpcs`` this one mirrors (requirements.lock)."""


async def wait_for_rpcs(await_all_outstanding_tasks: bool = True) -> None:
    """Wait until no RPC and, unless told otherwise, no output of the program is pending.

    Raises:
        Exception: The first RPC or output that failed, as the SDK's function raises it
            (an output of a resource whose registration failed is not an error here).
    """
    from pulumi.runtime.settings import SETTINGS, _get_rpc_manager
    from pulumi.runtime.stack import ResourceRegistrationFailed

    rpc_manager = _get_rpc_manager()
    while True:
        while rpc_manager.rpcs:
            await asyncio.sleep(0)
            try:
                await rpc_manager.rpcs.pop()
            except Exception as exn:
                if rpc_manager.unhandled_exception is not None:
                    cause = rpc_manager.unhandled_exception.with_traceback(
                        rpc_manager.exception_traceback
                    )
                    raise exn from cause
                raise
        if rpc_manager.unhandled_exception is not None:
            raise rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)

        while await_all_outstanding_tasks:
            with SETTINGS.lock:
                if not SETTINGS.outputs:
                    break
                pending = list(SETTINGS.outputs)
                SETTINGS.outputs.clear()
            done, not_done = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                # Faulted on purpose: the engine has reported the failure already.
                with contextlib.suppress(ResourceRegistrationFailed):
                    await task
            if not_done:
                with SETTINGS.lock:
                    SETTINGS.outputs.update(not_done)

        if not rpc_manager.rpcs:
            break


def install() -> bool:
    """Use :func:`wait_for_rpcs` for this process's program if the SDK is the pinned one.

    Returns:
        Whether it was installed.
    """
    from importlib import metadata

    import pulumi.runtime.stack as stack

    if metadata.version("pulumi") != FOR_SDK:
        return False
    stack.wait_for_rpcs = wait_for_rpcs  # looked up by run_pulumi_func at call time
    return True
