"""What a stack imports: resources of the unkai provider and the components built on them."""

from __future__ import annotations

from unkai.components._local import LocalFile, LocalFileArgs

__all__ = ["LocalFile", "LocalFileArgs"]
