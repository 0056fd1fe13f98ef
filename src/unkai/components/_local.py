"""Resources of the ``local`` module of the unkai provider."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class LocalFileArgs:
    """Inputs of :class:`LocalFile`.

    Attributes:
        path: Absolute path of the file.
        content: Its text; pass a secret (``config.require_secret``) to keep it secret.
        mode: Permission bits as an octal string.
    """

    path: pulumi.Input[str]
    content: pulumi.Input[str]
    mode: pulumi.Input[str] = "0644"


class LocalFile(pulumi.CustomResource):
    """A file on the machine that runs the engine (``unkai:local:File``).

    Changing ``content`` or ``mode`` updates it in place; changing ``path`` replaces it.
    """

    path: pulumi.Output[str]
    content: pulumi.Output[str]
    mode: pulumi.Output[str]
    sha256: pulumi.Output[str]
    size: pulumi.Output[float]

    def __init__(
        self, name: str, args: LocalFileArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "path": args.path,
            "content": args.content,
            "mode": args.mode,
            "sha256": None,
            "size": None,
        }
        super().__init__("unkai:local:File", name, props, opts)
