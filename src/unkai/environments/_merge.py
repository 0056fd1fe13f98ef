"""Deep merge of environment documents: how ``extends:`` layers one file on another."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["deep_merge"]


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Layer ``overlay`` on ``base`` and return the result; neither input is changed.

    The rules, key by key of ``overlay``:

    - a mapping merges recursively into the base's mapping at the same key (into ``{}``
      when the base has none there, or something that is not a mapping);
    - an explicit ``None`` (YAML ``null`` or ``~``) removes the key;
    - anything else, lists included, replaces the base's value whole.

    Consequences the property tests check: ``deep_merge(d, {}) == d``; ``deep_merge({},
    d) == d`` when ``d`` holds no ``None`` in its mappings; the result never holds ``None``
    as a mapping value unless ``base`` did at a key ``overlay`` leaves alone; and merging
    is associative when no ``None`` appears and each key holds a mapping in every
    document or in none. An ``extends:`` chain is a left fold, ``((base ⊕ a) ⊕ b)``.

    Args:
        base: The document extended.
        overlay: The document that extends it.

    Returns:
        A new dict sharing no mutable value with either input.
    """
    merged = {key: copy.deepcopy(value) for key, value in base.items()}
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            under = merged.get(key)
            merged[key] = deep_merge(under if isinstance(under, Mapping) else {}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
