"""Dockerfiles of container images, and the content-hash tags they are built under."""

from __future__ import annotations

import difflib
import re

from unkai.errors import ConfigError, RenderError
from unkai.model import ContainerImage, Environment
from unkai.render._jinja import Templates, default_templates
from unkai.render.filters import content_hash

__all__ = [
    "CONTAINER_GID",
    "CONTAINER_UID",
    "dockerfile_hash",
    "image_reference",
    "image_tag",
    "render_dockerfile",
]

CONTAINER_UID = 10001
"""The non-root user every unkai image runs as (and Kubernetes' ``runAsUser``)."""
CONTAINER_GID = 10001
"""The group every unkai image runs as."""

_TAG_LENGTH = 16
# Stands for the hash while the Dockerfile is rendered, then replaced by it: the hash
# cannot cover a text that contains it.
_PLACEHOLDER = "unkai-content-hash-placeholder-0000000000000000000000000000000000"


# A template's `variables.x` that the image does not set: jinja's message for a dict.
_MISSING_VARIABLE = re.compile(r"undefined value: 'dict object' has no attribute '([^']+)'")


def _render(image: ContainerImage, env: Environment, templates: Templates | None) -> str:
    if image.name not in env.container_images:
        raise RenderError(f"container image {image.name!r} is not part of environment {env.name!r}")
    context = {
        "image": image,
        "variables": dict(image.variables),
        "environment": env.name,
        "content_hash": _PLACEHOLDER,
        "uid": CONTAINER_UID,
        "gid": CONTAINER_GID,
    }
    try:
        return (templates or default_templates()).render(
            f"docker/{image.dockerfile_template}", context
        )
    except RenderError as err:
        missing = _MISSING_VARIABLE.search(str(err))
        if missing is None:
            raise
        names = sorted(image.variables)
        close = difflib.get_close_matches(missing[1], names, n=1)
        raise ConfigError(
            f"{str(err).split(': undefined value')[0]} uses variables.{missing[1]}, which the"
            " image does not set" + (f" (did you mean {close[0]!r}?)" if close else ""),
            key_path=f"container_images.{image.name}.variables.{missing[1]}",
            allowed=("one of " + ", ".join(names)) if names else "a variable set on the image",
        ) from err


def dockerfile_hash(
    image: ContainerImage, env: Environment, *, templates: Templates | None = None
) -> str:
    """The content hash of an image: of its Dockerfile with the hash label left blank.

    The Dockerfile is the whole build context (nothing is copied from outside it), so
    this hash identifies the image's inputs.

    Args:
        image: The container image.
        env: Its environment.
        templates: Where templates come from (default: the built-ins).

    Returns:
        64 hex digits.

    Raises:
        RenderError: The template failed.
    """
    return content_hash(_render(image, env, templates))


def render_dockerfile(
    image: ContainerImage, env: Environment, *, templates: Templates | None = None
) -> str:
    """Render the Dockerfile of a container image from ``docker/<dockerfile_template>``.

    The template sees ``image``, ``variables`` (the image's template variables),
    ``environment``, ``uid``/``gid`` of the non-root user and ``content_hash``, which in
    the output is :func:`dockerfile_hash` (templates put it in a label). Built-in
    templates start ``FROM`` the image's base (unkai's Debian rootfs by default), need
    no network at build time and end as a non-root ``USER``.

    Args:
        image: The container image.
        env: Its environment.
        templates: Where templates come from (default: the built-ins).

    Returns:
        The Dockerfile text.

    Raises:
        RenderError: The template is missing or failed (for example a variable it
            needs is not in ``image.variables``).
    """
    text = _render(image, env, templates)
    return text.replace(_PLACEHOLDER, content_hash(text))


def image_tag(
    image: ContainerImage, env: Environment, *, templates: Templates | None = None
) -> str:
    """The tag an image is built under: the first 16 hex digits of its content hash.

    Args:
        image: The container image.
        env: Its environment.
        templates: Where templates come from (default: the built-ins).

    Returns:
        The tag, such as ``3f9a0c1d2e4b5a69``.

    Raises:
        RenderError: The template failed.
    """
    return dockerfile_hash(image, env, templates=templates)[:_TAG_LENGTH]


def image_reference(
    image: ContainerImage, env: Environment, *, templates: Templates | None = None
) -> str:
    """The reference an image is tagged (and pushed) as: ``[registry/]name:tag``.

    Args:
        image: The container image.
        env: Its environment.
        templates: Where templates come from (default: the built-ins).

    Returns:
        The reference, such as ``api:3f9a0c1d2e4b5a69``.

    Raises:
        RenderError: The template failed.
    """
    repository = image.name if image.registry is None else f"{image.registry}/{image.name}"
    return f"{repository}:{image_tag(image, env, templates=templates)}"
