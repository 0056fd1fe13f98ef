"""Smoke stack: one file written by unkai's provider, its content a Pulumi secret.

Config: ``message`` (a secret, the file's content), ``path`` (where the file goes;
``unkai smoke`` puts it under the project's ``.unkai/smoke/``), ``mode`` (default 0600).
"""

import pulumi

from unkai.components import LocalFile
from unkai.kinds import LocalFileInputs

config = pulumi.Config()

greeting = LocalFile(
    "greeting",
    # model_construct: the content is a secret Output, validated by the provider's check.
    LocalFileInputs.model_construct(
        path=config.require("path"),
        content=config.require_secret("message"),
        mode=config.get("mode") or "0600",
    ),
)

pulumi.export("path", greeting.path)
pulumi.export("sha256", greeting.sha256)
pulumi.export("mode", greeting.mode)
