"""``unkai review``: what a change to the project does to each environment, for a pull request.

The base is a Git ref (:func:`base_checkout`); the head is the working tree. For each
environment the change touches, both sides are loaded, placed and rendered, the head is
previewed against the environment's stack with its policies, and :func:`markdown` writes
the report. The comparisons are pure (:mod:`unkai.review._report`); the engine's part is
:mod:`unkai.cli.review`.
"""

from __future__ import annotations

from unkai.review._git import Checkout, base_checkout, head_label
from unkai.review._report import (
    EXIT_CODES,
    EnvironmentReview,
    FileChange,
    HostCapacity,
    PolicyResult,
    ResourceChange,
    Review,
    capacity_changes,
    environment_changes,
    file_changes,
    markdown,
)

__all__ = [
    "EXIT_CODES",
    "Checkout",
    "EnvironmentReview",
    "FileChange",
    "HostCapacity",
    "PolicyResult",
    "ResourceChange",
    "Review",
    "base_checkout",
    "capacity_changes",
    "environment_changes",
    "file_changes",
    "head_label",
    "markdown",
]
