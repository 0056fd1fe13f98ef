"""Resources of the ``containers`` module of the unkai provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from unkai.model import DEBIAN_BASE_IMAGE, Environment
from unkai.model import ContainerImage as ContainerImageModel
from unkai.render import image_tag, render_dockerfile

BASE_VM_IMAGE = "debian-12"
"""The VM image of an environment whose rootfs becomes ``unkai/debian:12``."""

_DEFAULT_BASE: Mapping[str, Any] = {"name": "debian-12", "version": "12"}


@dataclass(frozen=True)
class ContainerImageArgs:
    """Inputs of :class:`ContainerImage`.

    Attributes:
        name: The image's repository (``api``).
        dockerfile: The rendered Dockerfile (never a secret: it is in the image history).
        tag: Its content-hash tag (:func:`unkai.render.image_tag`).
        base: Fields of the Debian rootfs imported as ``unkai/debian:12`` (name,
            version, packages, disk_gb, suite, mirror), or None when the Dockerfile
            starts from another image already on the engine.
        registry: ``host[:port][/path]`` to push to; None keeps the image local.
    """

    name: pulumi.Input[str]
    dockerfile: pulumi.Input[str]
    tag: pulumi.Input[str]
    base: Mapping[str, Any] | None = None
    registry: pulumi.Input[str] | None = None

    @classmethod
    def from_model(
        cls,
        image: ContainerImageModel,
        env: Environment,
        *,
        base_vm_image: str = BASE_VM_IMAGE,
    ) -> ContainerImageArgs:
        """The inputs of ``image`` of ``env``, its Dockerfile rendered as ``unkai render`` does.

        The base is the rootfs of the environment's VM image ``base_vm_image`` (so one
        build serves VMs and containers), or a plain Debian 12 when it has none. It is
        always the unbaked rootfs: ``base`` carries the package fields only, never the
        image's ``playbook``, so a playbook baked into the VM image (which changes the
        VM image's digest) leaves ``unkai/debian:12`` as it is.

        Raises:
            RenderError: The Dockerfile template failed.
        """
        base: Mapping[str, Any] | None = None
        if image.base_image == DEBIAN_BASE_IMAGE:
            vm = env.vm_images.get(base_vm_image)
            base = (
                dict(_DEFAULT_BASE)
                if vm is None
                else {
                    "name": vm.name,
                    "version": vm.version,
                    "packages": sorted(vm.packages),
                    "disk_gb": vm.disk_gb,
                }
            )
        return cls(
            name=image.name,
            dockerfile=render_dockerfile(image, env),
            tag=image_tag(image, env),
            base=base,
            registry=image.registry,
        )


class ContainerImage(pulumi.CustomResource):
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
    size_bytes: pulumi.Output[float]
    build_seconds: pulumi.Output[float]

    def __init__(
        self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "name": args.name,
            "dockerfile": args.dockerfile,
            "tag": args.tag,
            "base": None if args.base is None else dict(args.base),
            "registry": args.registry,
            "image_id": None,
            "reference": None,
            "repo_digest": None,
            "base_image_id": None,
            "size_bytes": None,
            "build_seconds": None,
        }
        super().__init__("unkai:containers:ContainerImage", name, props, opts)
