"""Facts about an environment that several renderers need, computed once per environment."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from unkai.errors import RenderError
from unkai.model import Environment, Instance, UnkaiModel
from unkai.render.filters import canonical_json, content_hash

__all__ = ["EnvIndex", "definition_hash", "env_index"]


def definition_hash(value: UnkaiModel) -> str:
    """The content hash of a model value's canonical JSON dump.

    Args:
        value: Any model value (an instance, an image, a workload).

    Returns:
        64 hex digits; equal definitions give equal hashes.
    """
    return content_hash(canonical_json(value.model_dump(mode="json")))


@dataclass(frozen=True)
class EnvIndex:
    """The concrete instances of an environment and their positions.

    Attributes:
        instances: ``env.all_instances()``, sorted by name.
        positions: Instance name → index in ``instances``.
    """

    instances: tuple[Instance, ...]
    positions: Mapping[str, int]


_lock = threading.Lock()
_last: tuple[Environment, EnvIndex] | None = None


def env_index(env: Environment) -> EnvIndex:
    """The :class:`EnvIndex` of ``env``, computed once for the latest environment seen.

    Environments are immutable, so the index of the very same object can be reused;
    rendering a tree asks for it once per instance and recomputing it each time would
    make rendering quadratic in the number of instances.

    Args:
        env: The environment.

    Returns:
        Its index.
    """
    global _last
    with _lock:
        if _last is not None and _last[0] is env:
            return _last[1]
    instances = env.all_instances()
    index = EnvIndex(instances, {instance.name: i for i, instance in enumerate(instances)})
    with _lock:
        _last = (env, index)
    return index


def position(env: Environment, instance: Instance) -> int:
    """The index of ``instance`` in ``env.all_instances()``.

    Raises:
        RenderError: The instance is not part of the environment.
    """
    found = env_index(env).positions.get(instance.name)
    if found is None:
        raise RenderError(f"instance {instance.name!r} is not part of environment {env.name!r}")
    return found
