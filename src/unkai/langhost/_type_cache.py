"""A resource class's property types, worked out once per class rather than per resource.

When a registration's outputs come back, the Python SDK's ``rpc.resolve_outputs`` asks
``pulumi._types.resource_types`` for the types of the resource class's properties. The
pinned SDK works them out anew every time: ``typing.get_type_hints`` on the class's
annotations, compiling each string annotation (the SDK's own modules use postponed
annotations). A class's annotations do not change once it is made, so the answer for a
class is always the same. Measured with py-spy (``--gil``) on
``benchmarks/bench_preview.py --instances 1000``: 124 of the program's 1,175 samples, a
tenth of its time, for 1,180 registrations of a handful of classes.

:func:`install` puts a per-class cache in front of ``resource_types`` and
``resource_pulumi_to_py_names`` (looked up on the module at call time) for the pinned
SDK version only (:data:`unkai.langhost._drain.FOR_SDK`); any other version keeps its
own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from unkai.langhost._drain import FOR_SDK

__all__ = ["install"]

_CACHED = ("resource_types", "resource_pulumi_to_py_names")


def _per_class(compute: Callable[[type], dict[str, Any]]) -> Callable[[type], Any]:
    """``compute`` called once per class; its answer shared read-only after that."""

    @functools.cache
    def cached(resource_cls: type) -> MappingProxyType[str, Any]:
        return MappingProxyType(compute(resource_cls))

    return cached


def install() -> bool:
    """Cache the SDK's per-class type lookups if the SDK is the pinned one.

    Returns:
        Whether the caches were installed (idempotent: a second call changes nothing).
    """
    from importlib import metadata

    import pulumi._types as types

    if metadata.version("pulumi") != FOR_SDK:
        return False
    for name in _CACHED:
        current = getattr(types, name)
        if not hasattr(current, "cache_info"):
            setattr(types, name, _per_class(current))
    return True
