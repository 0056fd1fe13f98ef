"""``unkai:containers:ContainerImage``: an image built from a rendered Dockerfile.

The Dockerfile arrives rendered (the component calls
:func:`unkai.render.render_dockerfile`, the function ``unkai render`` uses), so what a
reviewer reads is what the engine builds. Its tag is the content hash of that text:
the same Dockerfile is the same image, a changed one is a new image under a new tag.

Creating one builds the Debian base when needed (the rootfs of
:func:`unkai.drivers.images.build_image`, cached; ``docker import`` as
``unkai/debian:12``), builds the image without network, and pushes it when a registry
is configured. Deleting it removes its tags; the image goes with its last tag, the
shared base never does.
"""

from __future__ import annotations

import fcntl
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from unkai.drivers import docker as engine
from unkai.drivers.images import ImageSpec
from unkai.drivers.images import build_image as build_rootfs
from unkai.errors import ConfigError
from unkai.model import DEBIAN_BASE_IMAGE
from unkai.provider._resource import Resource
from unkai.provider._values import UNKNOWN, Props
from unkai.toolchain import cache_root

BASE_DIGEST_LABEL = "dev.unkai.base-digest"
"""Label of a built image: the digest of the Debian rootfs its base was imported from."""

CONTENT_HASH_LABEL = "dev.unkai.content-hash"
"""Label the built-in templates give an image: the content hash of its Dockerfile."""

_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_HASH_LABEL = re.compile(rf'{re.escape(CONTENT_HASH_LABEL)}="?([0-9a-f]{{64}})"?')
_BASE_FIELDS = {"name", "version", "suite", "packages", "disk_gb", "mirror"}


def base_spec(base: Mapping[str, Any]) -> ImageSpec:
    """The :class:`ImageSpec` of the ``base`` input (numbers arrive as floats)."""
    fields: dict[str, Any] = dict(base)
    if "packages" in fields:
        fields["packages"] = tuple(fields["packages"])
    if "disk_gb" in fields:
        fields["disk_gb"] = int(fields["disk_gb"])
    return ImageSpec(**fields)


def _say(name: str) -> engine.Progress:
    # The provider framework gives a handler no channel to the engine's Log RPC yet, so
    # the build's progress (a line per step) goes to the plugin's stderr, which the
    # engine keeps out of its normal display.
    def say(line: str) -> None:
        print(f"unkai: {name}: {line}", file=sys.stderr, flush=True)

    return say


@contextmanager
def _engine() -> Iterator[Any]:
    """A Docker client, closed afterwards (a provider process lives for a whole run)."""
    client = engine.connect()
    try:
        yield client
    finally:
        client.close()


@contextmanager
def _base_lock() -> Iterator[None]:
    """Serialise base preparation and builds: ``unkai/debian:12`` is one shared tag.

    Two images of one stack are created in parallel; both need the base, and a base of
    another rootfs must not be re-tagged under a build that started ``FROM`` it.
    """
    path = cache_root() / "locks" / "docker-base.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ContainerImage(Resource):
    """A container image built from a rendered Dockerfile, tagged by content hash.

    Inputs: ``name`` (repository), ``dockerfile`` (rendered text), ``tag`` (its content
    hash tag), ``base`` (:class:`~unkai.drivers.images.ImageSpec` fields of unkai's
    Debian base, or null when the Dockerfile starts from another local image),
    ``registry`` (``host[:port][/path]`` to push to, or null).

    Outputs besides the inputs: ``image_id``, ``reference`` (``[registry/]name:tag``),
    ``repo_digest`` (``registry/name@sha256:…`` after a push; the image id without a
    registry), ``base_image_id``, ``size_bytes``, ``build_seconds``.

    The resource id is the local reference ``name:tag``.
    """

    token = "unkai:containers:ContainerImage"
    inputs = ("name", "dockerfile", "tag", "base", "registry")
    replace_on: ClassVar = {
        "name": "an image cannot be renamed: the new repository is built and the old removed",
        "dockerfile": "a changed Dockerfile is a new image: it is built anew",
        "tag": "the tag is the content hash: a new tag is a new image",
        "base": "a new Debian base changes every layer: the image is built anew on it",
    }

    def check(self, news: Props) -> dict[str, Any]:
        """Validate the inputs; a secret Dockerfile is refused (its text is in the image)."""
        name, dockerfile, tag = news.get("name"), news.get("dockerfile"), news.get("tag")
        base, registry = news.get("base"), news.get("registry")
        if name is not UNKNOWN and (not isinstance(name, str) or not _NAME.fullmatch(name)):
            raise ConfigError(
                "must be an image repository name",
                key_path="name",
                value=name,
                allowed="lowercase [a-z0-9] words joined by '.', '_', '-' or '/'",
            )
        if "dockerfile" in news.secrets:
            raise ConfigError(
                "must not hold a secret: a Dockerfile is recorded in the image's history",
                key_path="dockerfile",
                allowed="a Dockerfile without secrets; pass secrets at run time",
            )
        if dockerfile is not UNKNOWN and (
            not isinstance(dockerfile, str) or "FROM" not in dockerfile.upper()
        ):
            raise ConfigError(
                "must be the text of a Dockerfile", key_path="dockerfile", allowed="FROM …"
            )
        if tag is not UNKNOWN and (not isinstance(tag, str) or not _TAG.fullmatch(tag)):
            raise ConfigError(
                "must be an image tag",
                key_path="tag",
                value=tag,
                allowed="1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
            )
        if isinstance(dockerfile, str) and isinstance(tag, str):
            found = _HASH_LABEL.search(dockerfile)
            if found is not None and not found.group(1).startswith(tag):
                raise ConfigError(
                    "is not the content hash of the Dockerfile",
                    key_path="tag",
                    value=tag,
                    allowed=f"{found.group(1)[:16]} (render it with unkai.render.image_tag)",
                )
        if base is not None and base is not UNKNOWN:
            self._check_base(base)
        if (
            registry is not None
            and registry is not UNKNOWN
            and (not isinstance(registry, str) or not _REGISTRY.fullmatch(registry))
        ):
            raise ConfigError(
                "must be a registry",
                key_path="registry",
                value=registry,
                allowed="host[:port][/path]",
            )
        return {
            "name": name,
            "dockerfile": dockerfile,
            "tag": tag,
            "base": base,
            "registry": registry,
        }

    @staticmethod
    def _check_base(base: Any) -> None:
        if not isinstance(base, Mapping):
            raise ConfigError("must be a mapping of image fields or null", key_path="base")
        unknown = sorted(set(base) - _BASE_FIELDS)
        if unknown:
            raise ConfigError(
                f"has unknown fields {unknown}",
                key_path="base",
                allowed=", ".join(sorted(_BASE_FIELDS)),
            )
        for key in ("name", "version"):
            if not isinstance(base.get(key), str) or not base[key]:
                raise ConfigError("must be a non-empty string", key_path=f"base.{key}")
        packages = base.get("packages", [])
        if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
            raise ConfigError("must be a list of Debian package names", key_path="base.packages")
        disk = base.get("disk_gb", 4)
        if (
            not isinstance(disk, int | float)
            or isinstance(disk, bool)
            or disk < 1
            or disk != int(disk)
        ):
            raise ConfigError(
                "must be a whole number of GiB", key_path="base.disk_gb", value=disk, allowed=">= 1"
            )

    def create(self, inputs: Props) -> tuple[str, dict[str, Any]]:
        """Build the image (the base first, when missing); push it to a registry if one is set.

        Side effects: may build the Debian rootfs into the cache (minutes, once), import
        it as ``unkai/debian:12``, builds ``name:tag`` and pushes ``registry/name:tag``.
        """
        name, tag = inputs.get("name"), inputs.get("tag")
        base, registry = inputs.get("base"), inputs.get("registry")
        local = f"{name}:{tag}"
        say = _say(local)
        labels: dict[str, str] = {}
        base_image_id: str | None = None
        with _engine() as client:
            with _base_lock():
                if base is not None:
                    spec = base_spec(base)
                    built = build_rootfs(spec, cache_root(), say=say)
                    base_image_id = engine.ensure_base_image(
                        client, built, ref=DEBIAN_BASE_IMAGE, say=say
                    )
                    labels[BASE_DIGEST_LABEL] = built.digest
                result = engine.build_image(
                    client, dockerfile=inputs.get("dockerfile"), tag=local, labels=labels, say=say
                )
            plan = engine.plan_push(name=name, tag=tag, registry=registry)
            if plan is not None:
                engine.push_image(client, plan, say=say)
            outputs = self._outputs(client, inputs, base_image_id=base_image_id)
        outputs["build_seconds"] = result.seconds
        return local, outputs

    @staticmethod
    def _outputs(client: Any, inputs: Props, *, base_image_id: str | None) -> dict[str, Any]:
        name, tag, registry = inputs.get("name"), inputs.get("tag"), inputs.get("registry")
        local = f"{name}:{tag}"
        state = engine.image_state(client, local)
        if state is None:
            return {}
        plan = engine.plan_push(name=name, tag=tag, registry=registry)
        repo_digest: str | None = state.id
        if plan is not None:
            pushed = [d for d in state.repo_digests if d.startswith(plan.repository + "@")]
            repo_digest = pushed[0] if pushed else None
        return {
            "name": name,
            "dockerfile": inputs.get("dockerfile"),
            "tag": tag,
            "base": inputs.get("base"),
            "registry": registry,
            "image_id": state.id,
            "reference": local if plan is None else plan.reference,
            "repo_digest": repo_digest,
            "base_image_id": base_image_id,
            "size_bytes": state.size_bytes,
            "build_seconds": inputs.get("build_seconds", 0.0),
        }

    def read(self, resource_id: str, state: Props) -> dict[str, Any] | None:
        """The image under ``name:tag``; None when the tag is gone or names another image.

        Another image holds the tag when its content-hash label (or, for Dockerfiles
        without one, its id) differs from the one built: then the built image is gone.
        """
        with _engine() as client:
            found = engine.image_state(client, resource_id)
            if found is None:
                return None
            expected = _HASH_LABEL.search(str(state.get("dockerfile", "")))
            if expected is not None:
                if found.labels.get(CONTENT_HASH_LABEL) != expected.group(1):
                    return None
            elif state.get("image_id") not in (None, found.id):
                return None
            outputs = self._outputs(client, state, base_image_id=state.get("base_image_id"))
        return outputs or None

    def update(self, resource_id: str, olds: Props, news: Props) -> dict[str, Any]:
        """Only ``registry`` changes in place: the image (rebuilt if missing) is pushed there."""
        _, outputs = self.create(news)
        return outputs

    def delete(self, resource_id: str, state: Props) -> None:
        """Remove the image's tags (the pushed one's local tag first); never the base.

        The image itself goes with its last tag; images in a registry stay there.
        """
        plan = engine.plan_push(
            name=state.get("name"), tag=state.get("tag"), registry=state.get("registry")
        )
        with _engine() as client:
            if plan is not None:
                engine.remove_image(client, plan.reference)
            engine.remove_image(client, resource_id)
