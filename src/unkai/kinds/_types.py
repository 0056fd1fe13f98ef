"""Validated value types shared by the kinds' declarations."""

from __future__ import annotations

import os
import re
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = [
    "AbsolutePath",
    "NonEmpty",
    "OctalMode",
    "Sha256Hex",
]


def _absolute(value: str) -> str:
    if not os.path.isabs(value):
        raise ValueError("must be an absolute path; allowed: /abs/path")
    return value


AbsolutePath = Annotated[str, AfterValidator(_absolute)]
"""An absolute path on the machine that runs the engine (or on a host)."""

NonEmpty = Annotated[str, Field(min_length=1)]
"""Text with at least one character."""


def _octal(value: str) -> str:
    try:
        bits = int(value, 8)
    except ValueError:
        bits = -1
    if not 0 <= bits <= 0o777:
        raise ValueError('must be octal permission bits; allowed: "0600" .. "0777"')
    return f"{bits:04o}"


OctalMode = Annotated[str, AfterValidator(_octal)]
"""File permission bits as an octal string, normalised to four digits (``"0644"``)."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise ValueError("must be a sha256 in hex; allowed: 64 hex digits")
    return value


Sha256Hex = Annotated[str, AfterValidator(_sha256)]
"""A sha256 digest written as 64 lowercase hex digits."""
