"""``unkai:local:File``: a file on the machine that runs the engine.

The seed of the provider and the subject of the smoke stack: small, but with every
operation real. Its content may be a Pulumi secret: the file is then written mode 0600
and the content stays secret in the state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from unkai.drivers.files import FileState, read_file, remove_file, write_file
from unkai.errors import ConfigError
from unkai.provider._resource import Resource
from unkai.provider._values import UNKNOWN, Props


class LocalFile(Resource):
    """A local file: ``path`` (absolute), ``content`` (text), ``mode`` (octal, "0644")."""

    token = "unkai:local:File"
    inputs = ("path", "content", "mode")
    replace_on: ClassVar = {
        "path": "a file cannot move: the new path is written and the old one deleted",
    }
    secret_outputs = frozenset()

    def check(self, news: Props) -> dict[str, Any]:
        """Path absolute, content text, mode an octal string of permission bits."""
        path, content, mode = news.get("path"), news.get("content"), news.get("mode", "0644")
        if path is not UNKNOWN and (not isinstance(path, str) or not os.path.isabs(path)):
            raise ConfigError(
                "must be an absolute path", key_path="path", value=path, allowed="/abs/path"
            )
        if content is not UNKNOWN and not isinstance(content, str):
            raise ConfigError("must be text", key_path="content", allowed="a string")
        if mode is not UNKNOWN:
            try:
                bits = int(str(mode), 8)
            except ValueError:
                bits = -1
            if not 0 <= bits <= 0o777:
                raise ConfigError(
                    "must be octal permission bits",
                    key_path="mode",
                    value=mode,
                    allowed='"0600" .. "0777"',
                )
            mode = f"{bits:04o}"
        return {"path": path, "content": content, "mode": mode}

    @staticmethod
    def _props(path: str, state: FileState) -> dict[str, Any]:
        return {
            "path": path,
            "content": state.content,
            "mode": f"{state.mode:04o}",
            "sha256": state.sha256,
            "size": len(state.content.encode("utf-8")),
        }

    def create(self, inputs: Props) -> tuple[str, dict[str, Any]]:
        """Write the file; its id is its path."""
        path = inputs.get("path")
        state = write_file(Path(path), inputs.get("content"), int(inputs.get("mode"), 8))
        return path, self._props(path, state)

    def read(self, resource_id: str, state: Props) -> dict[str, Any] | None:
        """The file as it is on disk, or None when it was deleted behind our back."""
        found = read_file(Path(resource_id))
        return None if found is None else self._props(resource_id, found)

    def delete(self, resource_id: str, state: Props) -> None:
        """Remove the file."""
        remove_file(Path(resource_id))
