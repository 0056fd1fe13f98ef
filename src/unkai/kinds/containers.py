"""The ``containers`` module: container images built from rendered Dockerfiles."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar

from pydantic import AfterValidator, model_validator

from unkai.kinds._base import Inputs, Replace, State, known
from unkai.kinds._types import NonEmpty
from unkai.model import DEBIAN_MIRROR

__all__ = [
    "CONTENT_HASH_LABEL",
    "ContainerBase",
    "ContainerImageInputs",
    "ContainerImageState",
]

CONTENT_HASH_LABEL = "dev.unkai.content-hash"
"""Label the built-in templates give an image: the content hash of its Dockerfile."""

HASH_LABEL = re.compile(rf'{re.escape(CONTENT_HASH_LABEL)}="?([0-9a-f]{{64}})"?')
"""Finds the content-hash label in a Dockerfile's text."""

_REPOSITORY = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REGISTRY = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")


def _matching(pattern: re.Pattern[str], what: str, allowed: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"must be {what}; allowed: {allowed}")
        return value

    return AfterValidator(check)


Repository = Annotated[
    str,
    _matching(_REPOSITORY, "an image repository name",
              "lowercase [a-z0-9] words joined by '.', '_', '-' or '/'"),
]  # fmt: skip
Tag = Annotated[
    str,
    _matching(_TAG, "an image tag", "1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'"),
]
Registry = Annotated[str, _matching(_REGISTRY, "a registry", "host[:port][/path]")]


class ContainerBase(Inputs):
    """The slim Debian tree imported as ``unkai/debian:12``: Debian's minbase and packages.

    It is a tree of its own, not a VM image's rootfs: no kernel, init, cloud-init or SSH
    server, no documentation or locales (:attr:`unkai.drivers.images.RootfsSpec.slim`).
    """

    name: NonEmpty
    """The base's family (``debian-12``)."""
    version: NonEmpty
    """Its version."""
    suite: NonEmpty = "bookworm"
    """The Debian suite."""
    packages: tuple[NonEmpty, ...] = ()
    """Debian packages beside the minbase set (the image's ``packages``)."""
    mirror: NonEmpty = DEBIAN_MIRROR
    """The Debian mirror."""


class ContainerImageInputs(Inputs):
    """A container image built from a rendered Dockerfile, tagged by its content hash.

    The resource id is the local reference ``name:tag``. A Dockerfile must never be a
    secret: its text is recorded in the image's history.
    """

    token: ClassVar[str] = "unkai:containers:ContainerImage"

    name: Annotated[
        Repository,
        Replace("an image cannot be renamed: the new repository is built and the old removed"),
    ]
    """The image's repository (lowercase words joined by '.', '_', '-' or '/')."""
    dockerfile: Annotated[
        NonEmpty, Replace("a changed Dockerfile is a new image: it is built anew")
    ]
    """The rendered Dockerfile."""
    tag: Annotated[
        Tag,
        Replace("the tag is the content hash: a new tag is a new image"),
    ]
    """Its content-hash tag (:func:`unkai.render.image_tag`)."""
    base: Annotated[
        ContainerBase | None,
        Replace("a new Debian base changes every layer: the image is built anew on it"),
    ] = None
    """The Debian base it builds on, or null when it starts from another local image."""
    registry: Registry | None = None
    """``host[:port][/path]`` to push to; null keeps the image local."""

    @model_validator(mode="after")
    def _consistent(self) -> ContainerImageInputs:
        if not known(self.dockerfile, self.tag):
            return self
        if "FROM" not in self.dockerfile.upper():
            raise ValueError("dockerfile: must be the text of a Dockerfile; allowed: FROM …")
        found = HASH_LABEL.search(self.dockerfile)
        if found is not None and not found.group(1).startswith(self.tag):
            raise ValueError(
                f"tag: is not the content hash of the Dockerfile; allowed: {found.group(1)[:16]}"
                " (render it with unkai.render.image_tag)"
            )
        return self


class ContainerImageState(ContainerImageInputs, State):
    """The image as the Docker engine has it."""

    image_id: str | None = None
    """The image's id (``sha256:…``)."""
    reference: str | None = None
    """``[registry/]name:tag``."""
    repo_digest: str | None = None
    """``registry/name@sha256:…`` after a push; the image id without a registry."""
    base_image_id: str | None = None
    """The id of the Debian base it was built on."""
    size_bytes: int | None = None
    """The image's size."""
    build_seconds: float | None = None
    """How long the build took."""
