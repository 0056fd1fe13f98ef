"""Resources of the ``local`` module of the unkai provider."""

from __future__ import annotations

import pulumi

from unkai.components._kind import KindResource
from unkai.kinds import LocalFileInputs, LocalFileState

LocalFileArgs = LocalFileInputs
"""Inputs of :class:`LocalFile`; build with ``model_construct`` to pass a secret Output."""


class LocalFile(KindResource):
    """A file on the machine that runs the engine (``unkai:local:File``).

    Changing ``content`` or ``mode`` updates it in place; changing ``path`` replaces it.
    A secret ``content`` (``config.require_secret``) stays secret and the file is 0600.
    """

    path: pulumi.Output[str]
    content: pulumi.Output[str]
    mode: pulumi.Output[str]
    sha256: pulumi.Output[str]
    size: pulumi.Output[int]

    def __init__(
        self, name: str, args: LocalFileInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, LocalFileState, opts)
