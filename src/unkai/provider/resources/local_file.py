"""``unkai:local:File``: a file on the machine that runs the engine.

The seed of the provider and the subject of the smoke stack: small, but with every
operation real. Its content may be a Pulumi secret: the file is then written mode 0600
and the content stays secret in the state.
"""

from __future__ import annotations

from pathlib import Path

from unkai.drivers.files import FileState, read_file, remove_file, write_file
from unkai.kinds import LocalFileInputs, LocalFileState
from unkai.provider._resource import Resource


def _state(path: str, found: FileState) -> LocalFileState:
    return LocalFileState(
        path=path,
        content=found.content,
        mode=f"{found.mode:04o}",
        sha256=found.sha256,
        size=len(found.content.encode("utf-8")),
    )


class LocalFile(Resource[LocalFileInputs, LocalFileState]):
    """A local file (see :class:`unkai.kinds.LocalFileInputs`)."""

    inputs_model = LocalFileInputs
    state_model = LocalFileState

    def create(self, inputs: LocalFileInputs) -> tuple[str, LocalFileState]:
        """Write the file; its id is its path."""
        written = write_file(Path(inputs.path), inputs.content, int(inputs.mode, 8))
        return inputs.path, _state(inputs.path, written)

    def read(self, resource_id: str, state: LocalFileState) -> LocalFileState | None:
        """The file as it is on disk, or None when it was deleted behind our back."""
        found = read_file(Path(resource_id))
        return None if found is None else _state(resource_id, found)

    def delete(self, resource_id: str, state: LocalFileState) -> None:
        """Remove the file."""
        remove_file(Path(resource_id))
