"""Resources of the ``containers`` module of the unkai provider."""

from __future__ import annotations

import pulumi

from unkai.components._kind import KindResource
from unkai.kinds import ContainerBase, ContainerImageInputs, ContainerImageState
from unkai.model import DEBIAN_BASE_IMAGE, Environment
from unkai.model import ContainerImage as ContainerImageModel
from unkai.render import Templates, image_tag, render_dockerfile

DEBIAN_BASE = ContainerBase(name="debian-12", version="12")
"""The tree imported as ``unkai/debian:12``: Debian 12's minbase, slim."""


def container_image_inputs(
    image: ContainerImageModel,
    env: Environment,
    *,
    templates: Templates | None = None,
) -> ContainerImageInputs:
    """The inputs of ``image`` of ``env``, its Dockerfile rendered as ``unkai render`` does.

    An image ``FROM`` ``unkai/debian:12`` gets :data:`DEBIAN_BASE` with the image's
    ``packages`` as its base: a slim Debian tree of its own (about 75 MB without
    packages), not the VM images' rootfs (cloud-init, SSH, kernel modules: over 300 MB),
    so an application image is its own layers on a small base. Images with other
    packages get other bases; each is tagged ``unkai/debian:12`` for its own build.
    ``templates`` (default: the built-ins) is where the Dockerfile template is found: a
    project's own ``templates/`` first.

    Raises:
        RenderError: The Dockerfile template failed.
    """
    base = (
        DEBIAN_BASE.model_copy(update={"packages": image.packages})
        if image.base_image == DEBIAN_BASE_IMAGE
        else None
    )
    return ContainerImageInputs(
        name=image.name,
        dockerfile=render_dockerfile(image, env, templates=templates),
        tag=image_tag(image, env, templates=templates),
        base=base,
        registry=image.registry,
    )


class ContainerImage(KindResource):
    """A container image built from a rendered Dockerfile (``unkai:containers:ContainerImage``).

    An unchanged Dockerfile is no change; a changed one (a new content-hash tag) replaces
    the image, as does a new name or base. A new registry pushes in place. Deleting it
    removes its tags and the image, never the shared Debian base.
    """

    name: pulumi.Output[str]
    tag: pulumi.Output[str]
    image_id: pulumi.Output[str]
    reference: pulumi.Output[str]
    repo_digest: pulumi.Output[str]
    base_image_id: pulumi.Output[str]
    size_bytes: pulumi.Output[int]
    build_seconds: pulumi.Output[float]

    def __init__(
        self, name: str, args: ContainerImageInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, ContainerImageState, opts)
