"""The Pulumi resource provider of unkai (``pulumi-resource-unkai``).

A versioned provider plugin written in Python on ``pulumi.provider.experimental``:
the state holds only inputs and outputs, never pickled code, so upgrading unkai never
breaks ``refresh`` of an old stack (see ARCHITECTURE.md, "Why a provider").
"""

from __future__ import annotations

import sys
from importlib import metadata

from unkai.provider._provider import ProviderError, UnkaiProvider
from unkai.provider._resource import Diff, Resource
from unkai.provider._values import UNKNOWN, Props, unwrap, wrap

__all__ = [
    "UNKNOWN",
    "Diff",
    "Props",
    "ProviderError",
    "Resource",
    "UnkaiProvider",
    "serve",
    "unwrap",
    "wrap",
]


def serve() -> None:
    """Entry point of ``pulumi-resource-unkai``: serve the provider to the engine."""
    from pulumi.provider.experimental.server import main

    from unkai.provider.resources import ALL

    main(sys.argv[1:], metadata.version("unkai"), UnkaiProvider(ALL))
