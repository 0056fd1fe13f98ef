"""The SDK's debug messages stay in the program unless asked for.

The Python SDK sends every ``pulumi.log.debug`` message to the engine as a synchronous
``Log`` call, several per resource ("registering resource …", "RegisterResource RPC
prepared …", "beginning rpc …"). The engine shows debug messages only with
``pulumi … --debug``, which unkai never passes, so they cost time and show nothing:
measured with py-spy on ``benchmarks/bench_preview.py``, a fifth of a program's time
went to them (0.8 s of a 300-instance preview). :func:`install` drops them before they
are sent, unless :data:`PROGRAM_DEBUG` is set (for ``pulumi up --debug`` run by hand
on a project of unkai). Messages of every other level go to the engine as before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["PROGRAM_DEBUG", "install"]

PROGRAM_DEBUG = "UNKAI_PROGRAM_DEBUG"
"""Set (to anything) to send the program's debug messages to the engine."""


def _dropped(*args: object, **kwargs: object) -> None:
    """``pulumi.log.debug`` when debug messages are not wanted: nothing is sent."""


def install(environ: Mapping[str, str] | None = None) -> bool:
    """Drop the SDK's debug messages unless ``environ`` asks for them; True when dropped."""
    if (os.environ if environ is None else environ).get(PROGRAM_DEBUG):
        return False
    import pulumi.log

    pulumi.log.debug = _dropped
    return True
