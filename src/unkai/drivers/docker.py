"""Container images on a Docker engine: unkai's Debian base, builds, pushes.

Three side effects, each with a pure plan beside it (STYLE #2):

* the **base image**: the Debian rootfs of :func:`unkai.drivers.images.build_image`,
  without kernel and modules (:func:`~unkai.drivers.images.docker_rootfs_members`),
  imported with ``docker import`` semantics as ``unkai/debian:12-<digest12>`` and
  ``unkai/debian:12`` (:func:`plan_base_import`, :func:`ensure_base_image`). The rootfs
  digest is kept in the label ``dev.unkai.rootfs-digest``; an engine that already has
  it is not touched again.
* a **build** of a rendered Dockerfile: an in-memory tar context, the engine's classic
  builder with ``pull=False`` (nothing comes from a registry) and ``network_mode="none"``
  (``RUN`` steps have no network), progress streamed line by line to a callback
  (:func:`plan_build`, :func:`build_image`).
* a **push** to a registry when one is configured (:func:`plan_push`, :func:`push_image`).

The client is the ``docker`` SDK's :class:`docker.DockerClient` (``docker.from_env()``
honours ``DOCKER_HOST``, so ``ssh://host`` reaches a remote engine). Every engine error
becomes a :class:`~unkai.errors.DriverError`.

Build args are recorded in the image's history: never pass a secret as one. unkai's
templates take none, and a rendered Dockerfile never holds a secret value.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

import docker
import docker.errors

from unkai.drivers.images import BuiltImage, BuiltRootfs, docker_rootfs_members
from unkai.errors import DriverError

__all__ = [
    "BASE_CHANGES",
    "DEBIAN_BASE_REF",
    "MANAGED_LABEL",
    "ROOTFS_DIGEST_LABEL",
    "BaseImportPlan",
    "BuildPlan",
    "BuildResult",
    "ImageState",
    "PushPlan",
    "build_image",
    "connect",
    "container_memory_mb",
    "context_tar",
    "ensure_base_image",
    "filtered_rootfs",
    "image_state",
    "plan_base_import",
    "plan_build",
    "plan_push",
    "push_image",
    "remove_image",
    "run_build",
    "run_commands",
    "split_reference",
]

DEBIAN_BASE_REF = "unkai/debian:12"
"""The base every built-in Dockerfile starts ``FROM`` (``unkai.model.DEBIAN_BASE_IMAGE``)."""

ROOTFS_DIGEST_LABEL = "dev.unkai.rootfs-digest"
"""Label of the base image: the digest of the rootfs it was imported from."""

MANAGED_LABEL = "dev.unkai.managed-by"
"""Label of every image unkai makes (value ``unkai``)."""

BASE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["/bin/bash"]',
)
"""Dockerfile instructions applied on import: an imported tarball has no config at all."""

Progress = Callable[[str], None]


def _ignore(_: str) -> None:
    pass


@dataclass(frozen=True)
class ImageState:
    """An image as the engine has it.

    Attributes:
        id: Its id (``sha256:…``).
        labels: Its labels.
        tags: Every reference that names it (``api:3f9a…``).
        size_bytes: Its size, layers shared with other images included.
        repo_digests: ``repository@sha256:…`` of each registry it was pushed to.
    """

    id: str
    labels: Mapping[str, str]
    tags: tuple[str, ...] = ()
    size_bytes: int = 0
    repo_digests: tuple[str, ...] = ()


@contextlib.contextmanager
def session(*, base_url: str | None = None) -> Iterator[Any]:
    """A client of the Docker engine (:func:`connect`), closed when the block ends.

    Raises:
        DriverError: The engine does not answer, or the connection to it was lost inside
            the block (dockerd restarted or stopped).
    """
    client = connect(base_url=base_url)
    try:
        yield client
    except OSError as err:  # requests' connection errors are OSErrors
        raise DriverError(
            f"the connection to the Docker engine was lost (dockerd restarted or stopped:"
            f" {_cause(err)}). Run again once it answers: what was done is kept, a build"
            " starts over from its cached steps"
        ) from err
    finally:
        client.close()


def _cause(err: BaseException) -> str:
    """The innermost reason of a connection error, as a sentence (no class names)."""
    inner = err
    while True:
        nested = next((a for a in inner.args if isinstance(a, BaseException)), None)
        if nested is None:
            break
        inner = nested
    return getattr(inner, "strerror", None) or str(inner.args[0] if inner.args else inner)


def connect(*, base_url: str | None = None, timeout: int = 900) -> Any:
    """A client of the Docker engine.

    Args:
        base_url: The engine (``unix:///var/run/docker.sock``, ``ssh://host``); None:
            ``DOCKER_HOST`` or the local socket.
        timeout: Seconds an API call may wait for the engine (imports and builds are long).

    Returns:
        A :class:`docker.DockerClient`; the caller closes it (``client.close()``).

    Raises:
        DriverError: The engine does not answer.
    """
    client = None
    try:
        if base_url is None:
            client = docker.from_env(timeout=timeout)
        else:
            client = docker.DockerClient(base_url=base_url, timeout=timeout)
        client.ping()
    except docker.errors.DockerException as err:
        if client is not None:
            client.close()
        raise DriverError(
            f"the Docker engine does not answer ({err}); start it with scripts/bootstrap"
        ) from err
    return client


def split_reference(ref: str) -> tuple[str, str]:
    """``[registry[:port]/]repository[:tag]`` → (repository, tag); the tag defaults to latest.

    >>> split_reference("registry.local:5000/team/api:3f9a")
    ('registry.local:5000/team/api', '3f9a')
    >>> split_reference("unkai/debian")
    ('unkai/debian', 'latest')
    """
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


def image_state(client: Any, ref: str) -> ImageState | None:
    """The image ``ref`` (a reference or an id) names, or None when the engine has none.

    Raises:
        DriverError: The engine failed.
    """
    try:
        data = client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as err:
        raise DriverError(f"cannot inspect image {ref}: {err.explanation or err}") from err
    config = data.get("Config") or {}
    return ImageState(
        id=str(data["Id"]),
        labels=dict(config.get("Labels") or {}),
        tags=tuple(data.get("RepoTags") or ()),
        size_bytes=int(data.get("Size") or 0),
        repo_digests=tuple(data.get("RepoDigests") or ()),
    )


# --- the base image ----------------------------------------------------------------


@dataclass(frozen=True)
class BaseImportPlan:
    """How a rootfs becomes the Docker base image.

    Attributes:
        rootfs: The rootfs tarball.
        digest: The rootfs digest (its :class:`~unkai.drivers.images.ImageSpec` digest).
        repository: Repository of the base (``unkai/debian``).
        digest_tag: The tag that names this rootfs (``12-<digest12>``).
        aliases: Further references pointed at it (``unkai/debian:12``).
        changes: Dockerfile instructions applied on import (labels, PATH, CMD).
    """

    rootfs: Path
    digest: str
    repository: str
    digest_tag: str
    aliases: tuple[str, ...]
    changes: tuple[str, ...]

    @property
    def reference(self) -> str:
        """The digest-tagged reference (``unkai/debian:12-<digest12>``)."""
        return f"{self.repository}:{self.digest_tag}"


def plan_base_import(
    built: BuiltImage | BuiltRootfs,
    *,
    ref: str = DEBIAN_BASE_REF,
    changes: Sequence[str] = BASE_CHANGES,
) -> BaseImportPlan:
    """The import of ``built``'s rootfs as the base image ``ref``; nothing runs.

    Args:
        built: The Debian image (or container-only tree) in the cache.
        ref: The reference Dockerfiles use (``FROM unkai/debian:12``).
        changes: Dockerfile instructions applied on import after the labels (default:
            PATH and ``CMD ["/bin/bash"]``; a tree with an entrypoint passes its own).

    Returns:
        The plan; its digest tag is ``<tag of ref>-<first 12 hex digits of the digest>``.
    """
    repository, tag = split_reference(ref)
    labels = {ROOTFS_DIGEST_LABEL: built.digest, MANAGED_LABEL: "unkai"}
    labels_changes = tuple(f"LABEL {k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return BaseImportPlan(
        rootfs=built.rootfs,
        digest=built.digest,
        repository=repository,
        digest_tag=f"{tag}-{built.digest[:12]}",
        aliases=(ref,),
        changes=labels_changes + tuple(changes),
    )


class _Buffer:
    """A write-only sink whose bytes are taken out after each tar member."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: bytes) -> int:
        self.data += b
        return len(b)

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


def filtered_rootfs(
    rootfs: Path,
    *,
    keep: Callable[[list[tarfile.TarInfo]], list[tarfile.TarInfo]] = docker_rootfs_members,
) -> Iterator[bytes]:
    """Stream the rootfs tarball without what ``keep`` leaves out, as tar bytes.

    Both tarballs are read and written as streams, one member at a time, so memory
    holds at most one file of the rootfs, never the whole 400 MB.

    Args:
        rootfs: The rootfs tarball (as mmdebstrap wrote it).
        keep: Chooses the members to keep (default: no kernel, initramfs or modules).

    Yields:
        Consecutive chunks of a tar archive.

    Raises:
        DriverError: The tarball cannot be read.
    """
    sink = _Buffer()
    try:
        with (
            tarfile.open(rootfs, mode="r|*") as src,
            tarfile.open(
                fileobj=cast(IO[bytes], sink), mode="w|", format=tarfile.PAX_FORMAT
            ) as out,
        ):
            for member in src:
                if not keep([member]):
                    continue
                body = src.extractfile(member) if member.isreg() else None
                out.addfile(member, body)
                if len(sink.data) >= 1 << 20:
                    yield sink.take()
        yield sink.take()
    except (OSError, tarfile.TarError) as err:
        raise DriverError(f"cannot read the rootfs tarball {rootfs}: {err}") from err


def _import_id(response: str) -> str:
    """The image id in the JSON lines ``/images/create`` answers an import with."""
    for line in reversed(response.strip().splitlines()):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if "error" in item:
            raise DriverError(f"docker import failed: {item['error']}")
        status = str(item.get("status", ""))
        if status.startswith("sha256:"):
            return status
    raise DriverError(f"docker import gave no image id: {response[-500:]}")


def ensure_base_image(
    client: Any,
    built: BuiltImage | BuiltRootfs,
    *,
    ref: str = DEBIAN_BASE_REF,
    changes: Sequence[str] = BASE_CHANGES,
    say: Progress = _ignore,
) -> str:
    """Make ``ref`` (and its digest tag) name the base image imported from ``built``.

    Side effects: when no image carries ``built``'s rootfs digest, imports the filtered
    rootfs (streamed, about 10 s); then tags it ``<repository>:<tag>-<digest12>`` and
    ``ref``. When ``ref`` already names an image of that digest, nothing happens.

    Args:
        client: A Docker client (:func:`connect`).
        built: The Debian image in the cache (its ``rootfs.tar``).
        ref: The reference Dockerfiles start ``FROM``.
        changes: Dockerfile instructions applied on import (see :func:`plan_base_import`).
        say: Receives a line for each step taken.

    Returns:
        The base image's id.

    Raises:
        DriverError: The rootfs cannot be read or the engine refused it.
    """
    plan = plan_base_import(built, ref=ref, changes=changes)
    current = image_state(client, ref)
    if current is not None and current.labels.get(ROOTFS_DIGEST_LABEL) == plan.digest:
        return current.id
    found = image_state(client, plan.reference)
    if found is not None and found.labels.get(ROOTFS_DIGEST_LABEL) == plan.digest:
        image_id = found.id
    else:
        say(f"importing the Debian rootfs {plan.digest[:12]} as {plan.reference}")
        try:
            response = client.api.import_image(
                src=filtered_rootfs(plan.rootfs),
                repository=plan.repository,
                tag=plan.digest_tag,
                changes=list(plan.changes),
                stream_src=True,
            )
        except docker.errors.APIError as err:
            raise DriverError(f"docker import of {plan.rootfs} failed: {err}") from err
        image_id = _import_id(str(response))
    for alias in plan.aliases:
        repository, tag = split_reference(alias)
        _tag(client, image_id, repository, tag)
    return image_id


def _tag(client: Any, image: str, repository: str, tag: str) -> None:
    try:
        client.api.tag(image, repository, tag, force=True)
    except docker.errors.APIError as err:
        raise DriverError(f"cannot tag {image} as {repository}:{tag}: {err}") from err


# --- builds --------------------------------------------------------------------------


def context_tar(dockerfile: str, files: Mapping[str, str | bytes] | None = None) -> bytes:
    """The build context: ``Dockerfile`` and ``files``, as deterministic tar bytes.

    Members are sorted, owned by root, mode 0644 (0755 for a program) and dated 0, so
    the same inputs give the same bytes.

    Args:
        dockerfile: The rendered Dockerfile.
        files: Further files, relative POSIX path → text, or bytes of a program.

    Returns:
        An uncompressed tar archive.

    Raises:
        DriverError: A path is absolute, leaves the context or is ``Dockerfile``.
    """
    members: dict[str, str | bytes] = {"Dockerfile": dockerfile}
    for name, text in (files or {}).items():
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or str(path) in ("", ".", "Dockerfile"):
            raise DriverError(
                f"context file {name!r} must be a relative path inside the context,"
                " other than Dockerfile"
            )
        members[str(path)] = text
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            content = members[name]
            data = content if isinstance(content, bytes) else content.encode("utf-8")
            info = tarfile.TarInfo(name)
            mode = 0o755 if isinstance(content, bytes) else 0o644
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass(frozen=True)
class BuildPlan:
    """A build, ready to hand to the engine.

    Attributes:
        tag: The reference the image is tagged (``api:3f9a0c1d2e4b5a69``).
        context: The build context (tar bytes, :func:`context_tar`).
        labels: Labels added to the image (after the Dockerfile's own).
        build_args: ``--build-arg`` values (recorded in the history: never secrets).
        run_commands: The command of each ``RUN`` step, whitespace collapsed
            (:func:`run_commands`): what a step container of this build runs.
    """

    tag: str
    context: bytes
    labels: Mapping[str, str] = field(default_factory=dict)
    build_args: Mapping[str, str] = field(default_factory=dict)
    run_commands: frozenset[str] = frozenset()

    def api_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``APIClient.build`` (the context comes separately)."""
        return {
            "tag": self.tag,
            "custom_context": True,
            "rm": True,
            "forcerm": True,
            "pull": False,
            "network_mode": "none",
            "labels": dict(self.labels),
            "buildargs": dict(self.build_args),
            "decode": True,
        }


def plan_build(
    *,
    dockerfile: str,
    tag: str,
    context_files: Mapping[str, str | bytes] | None = None,
    labels: Mapping[str, str] | None = None,
    build_args: Mapping[str, str] | None = None,
) -> BuildPlan:
    """The build of ``dockerfile`` as ``tag``; nothing runs.

    Every image gets the label ``dev.unkai.managed-by=unkai`` besides ``labels``.

    Raises:
        DriverError: A context path is not inside the context.
    """
    return BuildPlan(
        tag=tag,
        context=context_tar(dockerfile, context_files),
        labels={MANAGED_LABEL: "unkai", **(labels or {})},
        build_args=dict(sorted((build_args or {}).items())),
        run_commands=run_commands(dockerfile),
    )


def _collapse(text: str) -> str:
    return " ".join(text.split())


def run_commands(dockerfile: str) -> frozenset[str]:
    """The command of each ``RUN`` instruction of ``dockerfile``, whitespace collapsed.

    Continuation lines are joined and comment lines inside them dropped, as the engine's
    parser does; the exec form (``RUN ["a", "b"]``) gives its words joined by spaces.
    """
    logical: list[str] = []
    pending = ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    found: set[str] = set()
    for line in logical:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() != "RUN" or not rest.strip():
            continue
        rest = rest.strip()
        if rest.startswith("["):
            with contextlib.suppress(ValueError):
                words = json.loads(rest)
                if isinstance(words, list):
                    rest = " ".join(str(w) for w in words)
        found.add(_collapse(rest))
    return frozenset(found)


def _remove_cut_steps(client: Any, plan: BuildPlan) -> int:
    """Remove the stopped step containers an earlier, cut-off build of ``plan`` left.

    The classic builder removes a step's container when the step ends (``forcerm``),
    but a dockerd stopped in the middle of a step (a restart) never does: the container
    stays, exited. It is known by what it ran, one of ``plan``'s ``RUN`` commands,
    from a bare image id, as only the builder starts one. Returns how many went.
    """
    if not plan.run_commands:
        return 0
    try:
        stopped = client.api.containers(all=True, filters={"status": ["created", "exited", "dead"]})
    except docker.errors.APIError as err:
        raise DriverError(f"cannot list the containers of the Docker engine: {err}") from err
    removed = 0
    for container in stopped:
        image = str(container.get("Image") or "")
        if not (image.startswith("sha256:") or _is_image_id(image)):
            continue
        try:
            argv = client.api.inspect_container(container["Id"])["Config"]["Cmd"] or []
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as err:
            raise DriverError(f"cannot inspect container {container['Id'][:12]}: {err}") from err
        # The shell form runs [shell…, command]; the exec form runs its words.
        words = [str(word) for word in argv]
        ran = {_collapse(words[-1]), _collapse(" ".join(words))} if words else set()
        if not ran & plan.run_commands:
            continue
        try:
            client.api.remove_container(container["Id"], force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as err:
            raise DriverError(
                f"cannot remove the step container {container['Id'][:12]} an earlier"
                f" build of {plan.tag} left: {err}"
            ) from err
        removed += 1
    return removed


def _is_image_id(text: str) -> bool:
    return len(text) >= 12 and all(c in "0123456789abcdef" for c in text)


@dataclass(frozen=True)
class BuildResult:
    """A built image.

    Attributes:
        image_id: Its id (``sha256:…``).
        tag: The reference it is tagged.
        seconds: How long the build took.
        cached_steps: How many steps the layer cache answered.
        steps: How many steps the Dockerfile has.
    """

    image_id: str
    tag: str
    seconds: float
    cached_steps: int = 0
    steps: int = 0


class _BuildLog:
    """Reads the engine's JSON progress, keeping the output of the current step."""

    def __init__(self, say: Progress, tag: str) -> None:
        self.say = say
        self.tag = tag
        self.step = ""
        self.step_output: list[str] = []
        self.image_id: str | None = None
        self.steps = 0
        self.cached = 0
        self.error: DriverError | None = None

    def feed(self, item: Mapping[str, Any]) -> None:
        """Take one progress item; the first error is kept for :meth:`raise_error`."""
        if self.error is not None:
            return
        if "error" in item or "errorDetail" in item:
            detail = item.get("errorDetail") or {}
            message = str(detail.get("message") or item.get("error") or "unknown error")
            output = "\n".join(self.step_output[-40:])
            where = f" at {self.step}" if self.step else ""
            self.error = DriverError(
                f"docker build of {self.tag} failed{where}: {message}\n{output}".rstrip()
            )
            return
        aux = item.get("aux")
        if isinstance(aux, Mapping) and "ID" in aux:
            self.image_id = str(aux["ID"])
        for line in str(item.get("stream", "")).splitlines():
            line = line.rstrip()
            if not line:
                continue
            if line.startswith("Step "):
                self.step, self.step_output = line, []
                self.steps += 1
            elif line.strip() == "---> Using cache":
                self.cached += 1
            else:
                self.step_output.append(line)
            self.say(line)

    def raise_error(self) -> None:
        """Raise the build's error, if it had one."""
        if self.error is not None:
            raise self.error


def run_build(client: Any, plan: BuildPlan, *, say: Progress = _ignore) -> BuildResult:
    """Run ``plan`` on the engine, streaming each line of its output to ``say``.

    Side effects: a new image tagged ``plan.tag`` (intermediate containers removed,
    even when a step fails, and first those a build cut off by a dockerd restart left);
    the engine's layer cache answers unchanged steps.

    Raises:
        DriverError: A step failed (its instruction and output in the message), or the
            engine refused the build.
    """
    start = time.monotonic()
    log = _BuildLog(say, plan.tag)
    try:
        if removed := _remove_cut_steps(client, plan):
            say(f"removed {removed} step container(s) a cut-off build of {plan.tag} left")
        stream: Iterable[Mapping[str, Any]] = client.api.build(
            fileobj=io.BytesIO(plan.context), **plan.api_arguments()
        )
        # Read to the end even after an error, so that the connection is released.
        for item in stream:
            log.feed(item)
        log.raise_error()
        state = image_state(client, plan.tag)
    except docker.errors.APIError as err:
        raise DriverError(f"docker build of {plan.tag} failed: {err}") from err
    except OSError as err:  # requests' connection errors are OSErrors
        raise DriverError(
            f"docker build of {plan.tag} was cut off: the connection to the Docker engine"
            f" was lost (dockerd restarted or stopped: {_cause(err)}). Run again once it answers:"
            " the build starts over from its cached steps"
        ) from err
    if state is None:
        raise DriverError(f"docker build of {plan.tag} ended without an image")
    if log.image_id is not None and log.image_id != state.id:
        raise DriverError(f"{plan.tag} names {state.id}, not the image just built ({log.image_id})")
    return BuildResult(
        image_id=state.id,
        tag=plan.tag,
        seconds=round(time.monotonic() - start, 3),
        cached_steps=log.cached,
        steps=log.steps,
    )


def build_image(
    client: Any,
    *,
    dockerfile: str,
    tag: str,
    context_files: Mapping[str, str | bytes] | None = None,
    labels: Mapping[str, str] | None = None,
    build_args: Mapping[str, str] | None = None,
    say: Progress = _ignore,
) -> BuildResult:
    """Build ``dockerfile`` as ``tag``: :func:`plan_build`, then :func:`run_build`.

    The base image must already be on the engine (``pull=False``): for unkai's Debian
    base, call :func:`ensure_base_image` first.

    Raises:
        DriverError: A context path is bad, a step failed, or the engine refused.
    """
    plan = plan_build(
        dockerfile=dockerfile,
        tag=tag,
        context_files=context_files,
        labels=labels,
        build_args=build_args,
    )
    return run_build(client, plan, say=say)


def container_memory_mb(client: Any, ref: str, *, settle: float = 3.0) -> int:
    """Resident memory of a container of image ``ref`` running its own command, in MiB.

    Side effects: runs the container (no network, unkai's labels) for ``settle``
    seconds, reads the engine's statistics once, and removes it.

    Returns:
        Its anonymous memory (cgroup v2 ``anon``, v1 ``rss``; page cache left out), MiB
        rounded up.

    Raises:
        DriverError: The container could not run or stopped before it was measured.
    """
    try:
        container = client.containers.run(
            ref, detach=True, network_mode="none", labels={MANAGED_LABEL: "unkai"}
        )
    except docker.errors.DockerException as err:
        raise DriverError(f"cannot run a container of {ref}: {err}") from err
    try:
        time.sleep(settle)
        container.reload()
        if container.status != "running":
            raise DriverError(f"the container of {ref} stopped ({container.status}) at once")
        memory = container.stats(stream=False).get("memory_stats") or {}
        detail = memory.get("stats") or {}
        used = detail.get("anon", detail.get("rss", memory.get("usage", 0)))
        return -(-int(used) // 2**20)
    except docker.errors.DockerException as err:
        raise DriverError(f"cannot read the statistics of a container of {ref}: {err}") from err
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)


def remove_image(client: Any, ref: str, *, protect: Iterable[str] = (DEBIAN_BASE_REF,)) -> bool:
    """Remove the reference ``ref``; the image goes too when no other reference names it.

    Untagged parent layers of that image go with it (the engine's prune), but never an
    image another reference still names, so the shared base stays.

    Args:
        client: A Docker client.
        ref: The reference to remove (``api:3f9a…``).
        protect: Repositories or references never removed (the shared base).

    Returns:
        Whether there was anything to remove.

    Raises:
        DriverError: ``ref`` is protected, or a container still uses the image.
    """
    repository, _ = split_reference(ref)
    guarded = {r for p in protect for r in (p, split_reference(p)[0])}
    if ref in guarded or repository in guarded:
        raise DriverError(f"{ref} is a shared base image; unkai never removes it")
    try:
        client.api.remove_image(ref, force=False, noprune=False)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as err:
        raise DriverError(f"cannot remove image {ref}: {err.explanation or err}") from err
    return True


# --- pushes --------------------------------------------------------------------------


@dataclass(frozen=True)
class PushPlan:
    """A push of a local image to a registry.

    Attributes:
        source: The local reference (``api:3f9a…``).
        repository: The remote repository (``registry.local:5000/team/api``).
        tag: The remote tag (the same content-hash tag).
    """

    source: str
    repository: str
    tag: str

    @property
    def reference(self) -> str:
        """The remote reference (``registry.local:5000/team/api:3f9a…``)."""
        return f"{self.repository}:{self.tag}"


def plan_push(*, name: str, tag: str, registry: str | None) -> PushPlan | None:
    """The push of ``name:tag`` to ``registry``; None when no registry is configured.

    >>> plan_push(name="api", tag="3f9a", registry="registry.local:5000/team").reference
    'registry.local:5000/team/api:3f9a'
    >>> plan_push(name="api", tag="3f9a", registry=None) is None
    True
    """
    if registry is None:
        return None
    return PushPlan(source=f"{name}:{tag}", repository=f"{registry.rstrip('/')}/{name}", tag=tag)


def push_image(client: Any, plan: PushPlan, *, say: Progress = _ignore) -> str:
    """Tag ``plan.source`` as the remote reference and push it.

    Side effects: a second local tag (the remote reference) and the image's layers
    uploaded to the registry, with the engine's credentials (``docker login``).

    Returns:
        The pushed image's ``repository@sha256:…`` digest.

    Raises:
        DriverError: The registry refused or could not be reached.
    """
    _tag(client, plan.source, plan.repository, plan.tag)
    errors: list[str] = []
    try:
        # Read to the end even after an error, so that the connection is released.
        for item in client.api.push(plan.repository, tag=plan.tag, stream=True, decode=True):
            if "error" in item or "errorDetail" in item:
                errors.append(str(item.get("error") or item.get("errorDetail")))
            elif item.get("status"):
                say(f"{item['status']} {item.get('progress', '')}".rstrip())
    except docker.errors.APIError as err:
        raise DriverError(f"docker push of {plan.reference} failed: {err}") from err
    if errors:
        raise DriverError(f"docker push of {plan.reference} failed: {errors[0]}")
    state = image_state(client, plan.reference)
    digests = [
        d for d in (state.repo_digests if state else ()) if d.startswith(plan.repository + "@")
    ]
    if not digests:
        raise DriverError(f"the engine reports no digest for {plan.reference} after the push")
    return digests[0]


def registry_digest(client: Any, reference: str) -> str | None:
    """The digest the registry of ``reference`` serves for it (asked through the engine).

    Returns:
        ``sha256:...``, or ``None`` when the registry has no such image.

    Raises:
        DriverError: the registry could not be asked.
    """
    try:
        found = client.api.inspect_distribution(reference)
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError as err:
        if err.status_code in (401, 403, 404) or "manifest unknown" in str(err):
            return None
        raise DriverError(f"cannot ask the registry for {reference}: {err}") from err
    return str(found["Descriptor"]["digest"])


def in_registry(client: Any, reference: str) -> bool:
    """Whether the registry of ``reference`` has it (asked through the engine)."""
    return registry_digest(client, reference) is not None
