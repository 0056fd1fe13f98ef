"""What differs between two environments: a flat, stable list of changes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from unkai.environments._errors import KeyPath, format_key_path
from unkai.model import Environment

__all__ = ["Change", "diff_environments", "diff_values"]

Op = Literal["add", "remove", "change"]

_SYMBOL: dict[str, str] = {"add": "+", "remove": "-", "change": "~"}


@dataclass(frozen=True)
class Change:
    """One difference between two documents.

    Attributes:
        path: Where, as keys and indices; list entries that are mappings with a ``name``
            are addressed by that name (``clusters.apps.node_pools.default.size``).
        op: ``add`` (only in the new document), ``remove`` (only in the old one) or
            ``change`` (in both, different).
        old: The old value (``None`` for ``add``).
        new: The new value (``None`` for ``remove``).
    """

    path: KeyPath
    op: Op
    old: Any = None
    new: Any = None

    @property
    def key_path(self) -> str:
        """The path as dotted text (see :func:`~unkai.environments.format_key_path`)."""
        return format_key_path(self.path)

    def to_json(self) -> dict[str, Any]:
        """The change as ``{"path", "op", "old", "new"}``, the form ``env diff --json`` prints."""
        return {"path": self.key_path, "op": self.op, "old": self.old, "new": self.new}

    def __str__(self) -> str:
        where = self.key_path or "(document)"
        if self.op == "add":
            return f"+ {where}: {compact(self.new)}"
        if self.op == "remove":
            return f"- {where}: {compact(self.old)}"
        return f"~ {where}: {compact(self.old)} → {compact(self.new)}"


def compact(value: Any) -> str:
    """A value as one line of JSON (non-ASCII kept), for showing in a diff.

    Args:
        value: A JSON-able value.

    Returns:
        The text.
    """
    return json.dumps(value, ensure_ascii=False, sort_keys=False, default=str)


def diff_values(old: Any, new: Any, path: KeyPath = ()) -> list[Change]:
    """Every difference between two JSON-like values, as leaf-most changes.

    Mappings are compared key by key (keys of ``old`` in its order, then keys only in
    ``new`` in theirs). Lists whose items are all mappings with distinct string
    ``name`` values, in both lists, are compared by name; other lists index by index,
    extra items being added or removed. Anything else is compared by value and type
    (``1`` and ``True`` differ). Pure.

    Args:
        old: The value before.
        new: The value after.
        path: The path of both values (prefix of every change's path).

    Returns:
        The changes in a deterministic order; empty when the values are equal.
    """
    changes: list[Change] = []
    _diff(old, new, path, changes)
    return changes


def diff_environments(old: Environment, new: Environment) -> list[Change]:
    """What differs between two validated environments, as :func:`diff_values` sees it.

    Both are compared in their JSON form (``model_dump(mode="json")``), so defaults and
    derived values count; ``name`` is left out (it always differs). Secrets appear only
    as references, as in the model. Pure.

    Args:
        old: The environment compared from (``a`` of ``unkai env diff a b``).
        new: The environment compared to.

    Returns:
        The changes.
    """
    before = old.model_dump(mode="json", exclude={"name"})
    after = new.model_dump(mode="json", exclude={"name"})
    return diff_values(before, after)


def _names(items: Sequence[Any]) -> list[str] | None:
    names = [item.get("name") if isinstance(item, Mapping) else None for item in items]
    if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        return None
    return [str(name) for name in names]


def _diff(old: Any, new: Any, path: KeyPath, out: list[Change]) -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key, value in old.items():
            if key in new:
                _diff(value, new[key], (*path, key), out)
            else:
                out.append(Change((*path, key), "remove", old=value))
        out.extend(Change((*path, k), "add", new=v) for k, v in new.items() if k not in old)
        return
    if isinstance(old, list) and isinstance(new, list):
        old_names, new_names = _names(old), _names(new)
        if old and new and old_names is not None and new_names is not None:
            _diff(
                dict(zip(old_names, old, strict=True)),
                dict(zip(new_names, new, strict=True)),
                path,
                out,
            )
            return
        for index in range(max(len(old), len(new))):
            if index >= len(new):
                out.append(Change((*path, index), "remove", old=old[index]))
            elif index >= len(old):
                out.append(Change((*path, index), "add", new=new[index]))
            else:
                _diff(old[index], new[index], (*path, index), out)
        return
    if type(old) is not type(new) or old != new:
        out.append(Change(path, "change", old=old, new=new))
