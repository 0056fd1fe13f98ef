"""``unkai:compute:ImageBuild``: a VM image built once into the cache of this machine.

The build is a resource of its own, apart from its uploads (``unkai:compute:VmImage``,
one per host), so that it needs no host: the engine runs it while the hosts are still
being configured by Ansible, and an image several hosts boot is built once. The cache
is content-addressed and shared by every stack on the machine, so deleting the resource
keeps the build; a build gone from the cache reads as gone, and the next ``up`` makes
it again.
"""

from __future__ import annotations

from unkai.drivers import images
from unkai.kinds import ImageBuildInputs, ImageBuildState
from unkai.provider._log import say
from unkai.provider._resource import Resource
from unkai.toolchain import cache_root


def image_spec(inputs: ImageBuildInputs) -> images.ImageSpec:
    """The image an ImageBuild (or a VmImage, which extends it) is made of; pure."""
    return images.ImageSpec(
        name=inputs.name,
        version=inputs.version,
        suite=inputs.suite,
        packages=inputs.packages,
        disk_gb=inputs.disk_gb,
        mirror=inputs.mirror,
        playbook=inputs.playbook,
        playbook_digest=inputs.playbook_digest,
        profile=inputs.profile,
    )


def _outputs(built: images.BuiltImage) -> dict[str, object]:
    return {
        "digest": built.digest,
        "disk_bytes": built.disk.stat().st_size,
        "build_seconds": built.build_seconds,
    }


class ImageBuild(Resource[ImageBuildInputs, ImageBuildState]):
    """A Debian image built from packages into the cache."""

    inputs_model = ImageBuildInputs
    state_model = ImageBuildState

    def create(self, inputs: ImageBuildInputs) -> tuple[str, ImageBuildState]:
        """Build the image, or take it from the cache."""
        built = images.build_image(image_spec(inputs), cache_root(), say=say)
        return built.digest, ImageBuildState(**dict(inputs), **_outputs(built))

    def read(self, resource_id: str, state: ImageBuildState) -> ImageBuildState | None:
        """The build as the cache has it; None when it is no longer there whole."""
        built = images.cached_image(image_spec(state), cache_root())
        if built is None:
            return None
        # The build seconds are the build's, not this read's (a cache hit counts 0).
        return state.model_copy(update={**_outputs(built), "build_seconds": state.build_seconds})

    def update(
        self, resource_id: str, olds: ImageBuildState, news: ImageBuildInputs
    ) -> ImageBuildState:
        """Only the playbook's path changed (every other input replaces): record it."""
        return olds.model_copy(update={"playbook": news.playbook})

    def delete(self, resource_id: str, state: ImageBuildState) -> None:
        """Nothing: the cache is shared by every stack here and keyed by content."""
        say(f"image {state.name} {state.version} stays in the cache ({resource_id[:12]})")
