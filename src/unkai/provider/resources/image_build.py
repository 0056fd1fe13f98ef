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
from unkai.errors import ConfigError
from unkai.kinds import ImageBuildInputs, ImageBuildState
from unkai.provider._log import say
from unkai.provider._resource import Resource
from unkai.toolchain import NodeBinaries, cache_root, ensure_node


def image_spec(inputs: ImageBuildInputs, node: NodeBinaries | None = None) -> images.ImageSpec:
    """The image an ImageBuild (or a VmImage, which extends it) is made of; pure.

    A node image's playbook gets the folders of ``node``'s binaries to copy in (only a
    build needs them: the digest is the versions').
    """
    node_label = bake_vars = None
    if inputs.kubernetes is not None:
        node_label = f"kubernetes={inputs.kubernetes} containerd={inputs.containerd}"
    if node is not None:
        bake_vars = (
            ("k8s_node_image_kube_bin", str(node.kube_bin)),
            ("k8s_node_image_containerd_bin", str(node.containerd_bin)),
            ("k8s_node_image_kubernetes_version", node.kubernetes),
            ("k8s_node_image_containerd_version", node.containerd),
        )
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
        node=node_label,
        bake_vars=bake_vars or (),
    )


def node_binaries(inputs: ImageBuildInputs) -> NodeBinaries | None:
    """The node binaries a node image bakes, built when this machine lacks them.

    Raises:
        ConfigError: the image asks for versions other than those unkai builds.
    """
    if inputs.kubernetes is None:
        return None
    node = ensure_node(say=say)
    if (inputs.kubernetes, inputs.containerd) != (node.kubernetes, node.containerd):
        raise ConfigError(
            f"image {inputs.name} asks for a node of Kubernetes {inputs.kubernetes} and"
            f" containerd {inputs.containerd}, which unkai does not build",
            key_path="kubernetes",
            value=inputs.kubernetes,
            allowed=f"Kubernetes {node.kubernetes} with containerd {node.containerd}"
            " (toolchain.toml)",
        )
    return node


def build(inputs: ImageBuildInputs) -> images.BuiltImage:
    """The image of ``inputs`` from the cache, or built (with its node binaries) into it."""
    spec = image_spec(inputs)
    if images.cached_image(spec, cache_root()) is None:
        spec = image_spec(inputs, node_binaries(inputs))
    return images.build_image(spec, cache_root(), say=say)


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
        built = build(inputs)
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
