"""``unkai:containers:ContainerImage``: an image built from a rendered Dockerfile.

The Dockerfile arrives rendered (the component calls
:func:`unkai.render.render_dockerfile`, the function ``unkai render`` uses), so what a
reviewer reads is what the engine builds. Its tag is the content hash of that text:
the same Dockerfile is the same image, a changed one is a new image under a new tag.

Creating one builds the Debian base when needed (a slim tree of
:func:`unkai.drivers.images.build_rootfs`, cached; ``docker import`` as
``unkai/debian:12``), builds the image without network, and pushes it when a registry
is configured. Deleting it removes its tags; the image goes with its last tag, the
shared base never does.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from unkai._files import file_lock
from unkai.drivers import docker as engine
from unkai.drivers.images import RootfsSpec, build_rootfs
from unkai.errors import ConfigError, DriverError
from unkai.kinds import (
    CONTENT_HASH_LABEL,
    ContainerBase,
    ContainerImageInputs,
    ContainerImageState,
    input_values,
)
from unkai.kinds.containers import HASH_LABEL
from unkai.model import DEBIAN_BASE_IMAGE
from unkai.provider._log import say
from unkai.provider._resource import Resource
from unkai.toolchain import cache_root

BASE_DIGEST_LABEL = "dev.unkai.base-digest"
"""Label of a built image: the digest of the Debian rootfs its base was imported from."""

__all__ = ["BASE_DIGEST_LABEL", "CONTENT_HASH_LABEL", "ContainerImage", "base_spec"]


def base_spec(base: ContainerBase) -> RootfsSpec:
    """The slim :class:`RootfsSpec` of the ``base`` input: Debian's minbase and its packages."""
    return RootfsSpec(
        name=f"{base.name}-container-base",
        packages=base.packages,
        suite=base.suite,
        mirror=base.mirror,
        slim=True,
    )


def _base_lock() -> AbstractContextManager[None]:
    """Serialise base preparation and builds: ``unkai/debian:12`` is one shared tag.

    Two images of one stack are created in parallel; both need the base, and a base of
    another rootfs must not be re-tagged under a build that started ``FROM`` it.
    """
    return file_lock(cache_root() / "locks" / "docker-base.lock")


class ContainerImage(Resource[ContainerImageInputs, ContainerImageState]):
    """A container image built from a rendered Dockerfile, tagged by content hash.

    See :class:`unkai.kinds.ContainerImageInputs`. The resource id is the local
    reference ``name:tag``.
    """

    inputs_model = ContainerImageInputs
    state_model = ContainerImageState

    def validate(self, inputs: ContainerImageInputs, *, secrets: frozenset[str]) -> None:
        """A secret Dockerfile is refused: its text is recorded in the image's history."""
        if "dockerfile" in secrets:
            raise ConfigError(
                "must not hold a secret: a Dockerfile is recorded in the image's history",
                key_path="dockerfile",
                allowed="a Dockerfile without secrets; pass secrets at run time",
            )

    def create(self, inputs: ContainerImageInputs) -> tuple[str, ContainerImageState]:
        """Build the image (the base first, when missing); push it to a registry if one is set.

        Side effects: may build the Debian rootfs into the cache (minutes, once), import
        it as ``unkai/debian:12``, builds ``name:tag`` and pushes ``registry/name:tag``.
        """
        local = f"{inputs.name}:{inputs.tag}"
        labels: dict[str, str] = {}
        base_image_id: str | None = None
        with engine.session() as client:
            with _base_lock():
                if inputs.base is not None:
                    built = build_rootfs(base_spec(inputs.base), cache_root(), say=say)
                    base_image_id = engine.ensure_base_image(
                        client, built, ref=DEBIAN_BASE_IMAGE, say=say
                    )
                    labels[BASE_DIGEST_LABEL] = built.digest
                result = engine.build_image(
                    client, dockerfile=inputs.dockerfile, tag=local, labels=labels, say=say
                )
            plan = engine.plan_push(name=inputs.name, tag=inputs.tag, registry=inputs.registry)
            if plan is not None:
                engine.push_image(client, plan, say=say)
            state = self._state(client, inputs, base_image_id=base_image_id)
        if state is None:
            raise DriverError(f"image {local} is missing right after its build")
        return local, state.model_copy(update={"build_seconds": result.seconds})

    @staticmethod
    def _state(
        client: Any, inputs: ContainerImageInputs, *, base_image_id: str | None
    ) -> ContainerImageState | None:
        local = f"{inputs.name}:{inputs.tag}"
        found = engine.image_state(client, local)
        if found is None:
            return None
        plan = engine.plan_push(name=inputs.name, tag=inputs.tag, registry=inputs.registry)
        repo_digest: str | None = found.id
        if plan is not None:
            pushed = [d for d in found.repo_digests if d.startswith(plan.repository + "@")]
            repo_digest = pushed[0] if pushed else None
        return ContainerImageState(
            **input_values(inputs),
            image_id=found.id,
            reference=local if plan is None else plan.reference,
            repo_digest=repo_digest,
            base_image_id=base_image_id,
            size_bytes=found.size_bytes,
            build_seconds=getattr(inputs, "build_seconds", 0.0),
        )

    def read(self, resource_id: str, state: ContainerImageState) -> ContainerImageState | None:
        """The image under ``name:tag``; None when the tag is gone or names another image.

        Another image holds the tag when its content-hash label (or, for Dockerfiles
        without one, its id) differs from the one built: then the built image is gone
        (``docker rmi`` and a rebuild by hand alike), and the next ``up`` builds it.
        """
        with engine.session() as client:
            found = engine.image_state(client, resource_id)
            if found is None:
                return None
            expected = HASH_LABEL.search(state.dockerfile)
            if expected is not None:
                if found.labels.get(CONTENT_HASH_LABEL) != expected.group(1):
                    return None
            elif state.image_id not in (None, found.id):
                return None
            return self._state(client, state, base_image_id=state.base_image_id)

    def update(
        self, resource_id: str, olds: ContainerImageState, news: ContainerImageInputs
    ) -> ContainerImageState:
        """Only ``registry`` changes in place: the image (rebuilt if missing) is pushed there."""
        return self.create(news)[1]

    def delete(self, resource_id: str, state: ContainerImageState) -> None:
        """Remove the image's tags (the pushed one's local tag first); never the base.

        The image itself goes with its last tag; images in a registry stay there.
        """
        plan = engine.plan_push(name=state.name, tag=state.tag, registry=state.registry)
        with engine.session() as client:
            if plan is not None:
                engine.remove_image(client, plan.reference)
            engine.remove_image(client, resource_id)
