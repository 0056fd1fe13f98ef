"""The Pulumi resource provider of unkai (``pulumi-resource-unkai``).

A versioned provider plugin written in Python on ``pulumi.provider.experimental``:
the state holds only inputs and outputs, never pickled code, so upgrading unkai never
breaks ``refresh`` of an old stack (see ARCHITECTURE.md, "Why a provider").
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from importlib import metadata

from unkai.kinds import UNKNOWN
from unkai.provider._log import parse_replace_reason, replace_reason
from unkai.provider._provider import ProviderError, UnkaiProvider
from unkai.provider._resource import Diff, Resource
from unkai.provider._values import Props, unwrap, wrap

__all__ = [
    "UNKNOWN",
    "Diff",
    "Props",
    "ProviderError",
    "Resource",
    "UnkaiProvider",
    "parse_replace_reason",
    "replace_reason",
    "serve",
    "unwrap",
    "wrap",
]


def serve() -> None:
    """Entry point of ``pulumi-resource-unkai``: serve the provider to the engine.

    The engine passes its own address as the first argument: handlers' progress and
    the reasons of replacements are logged there, on the resource they concern.
    """
    from unkai.provider._log import connect_engine
    from unkai.provider._server import run_server
    from unkai.provider.resources import ALL

    args = sys.argv[1:]
    engine = next((arg for arg in args if not arg.startswith("-")), None)
    if engine is None:
        sys.exit("pulumi-resource-unkai is started by the Pulumi engine, with its address")
    connect_engine(engine)
    version = metadata.version("unkai")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_server(UnkaiProvider(ALL, version=version), engine=engine, args=args))
