"""Resources of the ``containers`` module of the unkai provider."""

from __future__ import annotations

import pulumi

from unkai.components._kind import KindResource
from unkai.kinds import ContainerBase, ContainerImageInputs, ContainerImageState
from unkai.model import DEBIAN_BASE_IMAGE, Environment
from unkai.model import ContainerImage as ContainerImageModel
from unkai.render import Templates, image_tag, render_dockerfile

BASE_VM_IMAGE = "debian-12"
"""The VM image of an environment whose rootfs becomes ``unkai/debian:12``."""


def container_image_inputs(
    image: ContainerImageModel,
    env: Environment,
    *,
    base_vm_image: str = BASE_VM_IMAGE,
    templates: Templates | None = None,
) -> ContainerImageInputs:
    """The inputs of ``image`` of ``env``, its Dockerfile rendered as ``unkai render`` does.

    The base is the rootfs of the environment's VM image ``base_vm_image`` (so one build
    serves VMs and containers), or a plain Debian 12 when it has none. It is always the
    unbaked rootfs: the base carries the package fields only, never the image's
    ``playbook``, so a playbook baked into the VM image leaves ``unkai/debian:12`` as it
    is. ``templates`` (default: the built-ins) is where the Dockerfile template is found:
    a project's own ``templates/`` first.

    Raises:
        RenderError: The Dockerfile template failed.
    """
    base: ContainerBase | None = None
    if image.base_image == DEBIAN_BASE_IMAGE:
        vm = env.vm_images.get(base_vm_image)
        base = (
            ContainerBase(name="debian-12", version="12")
            if vm is None
            else ContainerBase(
                name=vm.name, version=vm.version, packages=tuple(sorted(vm.packages)),
                disk_gb=vm.disk_gb, profile=vm.profile,
            )
        )  # fmt: skip
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
