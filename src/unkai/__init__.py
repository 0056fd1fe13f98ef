"""unkai: a GCE-style private cloud declared in Python and deployed with Pulumi.

The layers, from pure to side-effecting, are ``model`` → ``environments`` →
``placement`` → ``render`` → ``provider`` → ``drivers``; ``components`` is what a
stack imports and ``cli`` is the ``unkai`` command. See ARCHITECTURE.md.
"""

from __future__ import annotations

from unkai.errors import (
    CommandFailed,
    ConfigError,
    DriverError,
    PlacementError,
    RenderError,
    ToolchainError,
    UnkaiError,
)

__version__ = "0.1.0"

__all__ = [
    "CommandFailed",
    "ConfigError",
    "DriverError",
    "PlacementError",
    "RenderError",
    "ToolchainError",
    "UnkaiError",
    "__version__",
]
