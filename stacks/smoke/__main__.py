"""Smoke stack: one file written by unkai's provider, its content a Pulumi secret."""

from pathlib import Path

import pulumi

from unkai.components import LocalFile
from unkai.kinds import LocalFileInputs

config = pulumi.Config()
project_root = Path(__file__).resolve().parents[2]
path = config.get("path") or str(
    project_root / ".unkai" / "smoke" / f"{pulumi.get_stack()}.txt"
)

greeting = LocalFile(
    "greeting",
    # model_construct: the content is a secret Output, validated by the provider's check.
    LocalFileInputs.model_construct(
        path=path,
        content=config.require_secret("message"),
        mode=config.get("mode") or "0600",
    ),
)

pulumi.export("path", greeting.path)
pulumi.export("sha256", greeting.sha256)
pulumi.export("mode", greeting.mode)
