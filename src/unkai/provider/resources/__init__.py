"""The resource types of the unkai provider, one module each."""

from __future__ import annotations

from unkai.provider.resources.local_file import LocalFile

ALL = (LocalFile(),)

__all__ = ["ALL", "LocalFile"]
