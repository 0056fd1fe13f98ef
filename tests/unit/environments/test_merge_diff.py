"""deep_merge and diff_values: examples and the laws hypothesis checks."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from unkai.environments import Change, deep_merge, diff_values

# --- deep_merge ---------------------------------------------------------------------


def test_merge_rules() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"d": 1}}
    overlay = {"a": {"y": [3], "z": None}, "b": None, "c": 5, "e": {"f": None, "g": 1}}
    assert deep_merge(base, overlay) == {"a": {"x": 1, "y": [3]}, "c": 5, "e": {"g": 1}}


def test_merge_replaces_a_scalar_with_a_mapping() -> None:
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}


def test_merge_shares_nothing_with_its_inputs() -> None:
    base = {"a": {"l": [1]}}
    overlay = {"b": {"l": [2]}}
    merged = deep_merge(base, overlay)
    merged["a"]["l"].append(9)
    merged["b"]["l"].append(9)
    assert base == {"a": {"l": [1]}} and overlay == {"b": {"l": [2]}}


_keys = st.sampled_from(["a", "b", "c", "web", "雲"])
_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_keys, children, max_size=3),
    max_leaves=12,
)
_documents = st.dictionaries(_keys, _values, max_size=4)


def _no_null(value: Any) -> bool:
    if isinstance(value, dict):
        return all(v is not None and _no_null(v) for v in value.values())
    return True


# Documents where a key holds a mapping in every document or in none ("m" keys hold
# mappings, the others leaves), without nulls: the class where merging is associative.
_leaves = st.integers() | st.text(max_size=3) | st.lists(st.integers(), max_size=2)
_shaped = st.deferred(
    lambda: st.fixed_dictionaries(
        {},
        optional={
            "m1": _shaped,
            "m2": _shaped,
            "x": _leaves,
            "y": _leaves,
        },
    )
)


@given(_documents)
def test_merging_nothing_is_identity(doc: dict[str, Any]) -> None:
    assert deep_merge(doc, {}) == doc


@given(_documents.filter(_no_null))
def test_merging_onto_nothing_is_identity_without_nulls(doc: dict[str, Any]) -> None:
    assert deep_merge({}, doc) == doc


@given(_documents, _documents)
def test_null_removes_and_other_keys_win(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    before = (copy.deepcopy(base), copy.deepcopy(overlay))
    merged = deep_merge(base, overlay)
    assert (base, overlay) == before
    for key, value in overlay.items():
        if value is None:
            assert key not in merged
        elif not isinstance(value, dict):
            assert merged[key] == value
        else:
            assert isinstance(merged[key], dict)
    for key in base.keys() - overlay.keys():
        assert merged[key] == base[key]


@given(_documents, _documents)
def test_merge_is_idempotent_for_the_overlay(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    once = deep_merge(base, overlay)
    assert deep_merge(once, overlay) == once


@given(_shaped, _shaped, _shaped)
def test_merge_is_associative_where_shapes_agree(
    a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]
) -> None:
    assert deep_merge(deep_merge(a, b), c) == deep_merge(a, deep_merge(b, c))


def test_merge_is_not_associative_across_nulls() -> None:
    # Why extends chains are a left fold: grouping would lose the null's effect.
    a, b, c = {"k": 1}, {"k": 2}, {"k": None}
    assert deep_merge(deep_merge(a, b), c) == {}
    assert deep_merge(a, deep_merge(b, c)) == {"k": 1}


# --- diff ---------------------------------------------------------------------------


def test_diff_reports_adds_removes_and_changes_with_paths() -> None:
    old = {"hosts": {"a": {"cpus": 2}}, "x": 1, "tags": ["a"], "flag": 1}
    new = {"hosts": {"a": {"cpus": 4}, "b": {"cpus": 8}}, "tags": ["a", "b"], "flag": True}
    changes = diff_values(old, new)
    assert [c.to_json() for c in changes] == [
        {"path": "hosts.a.cpus", "op": "change", "old": 2, "new": 4},
        {"path": "hosts.b", "op": "add", "old": None, "new": {"cpus": 8}},
        {"path": "x", "op": "remove", "old": 1, "new": None},
        {"path": "tags.1", "op": "add", "old": None, "new": "b"},
        {"path": "flag", "op": "change", "old": 1, "new": True},
    ]
    assert str(changes[0]) == "~ hosts.a.cpus: 2 → 4"
    assert str(changes[2]) == "- x: 1"


def test_diff_aligns_named_list_items_by_name() -> None:
    old = {"pools": [{"name": "a", "size": 1}, {"name": "b", "size": 1}]}
    new = {"pools": [{"name": "b", "size": 2}, {"name": "c", "size": 1}]}
    assert [str(c) for c in diff_values(old, new)] == [
        '- pools.a: {"name": "a", "size": 1}',
        "~ pools.b.size: 1 → 2",
        '+ pools.c: {"name": "c", "size": 1}',
    ]


def test_diff_quotes_keys_with_dots() -> None:
    (change,) = diff_values({"labels": {}}, {"labels": {"unkai.dev/role": "db"}})
    assert change == Change(("labels", "unkai.dev/role"), "add", new="db")
    assert change.key_path == 'labels."unkai.dev/role"'


def test_diff_of_whole_documents_of_different_types() -> None:
    assert [str(c) for c in diff_values([1], {"a": 1})] == ['~ (document): [1] → {"a": 1}']


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


def _apply(doc: Any, changes: list[Change]) -> Any:
    """Apply changes made by diff_values on plain paths (no named-list alignment)."""
    doc = copy.deepcopy(doc)
    for change in sorted(changes, key=lambda c: c.op != "remove"):
        if not change.path:
            return change.new
        parent = doc
        for part in change.path[:-1]:
            parent = parent[part]
        last = change.path[-1]
        if change.op == "remove":
            if isinstance(parent, list):
                parent[last] = _REMOVED
            else:
                del parent[last]
        elif isinstance(parent, list) and last == len(parent):
            parent.append(change.new)
        else:
            parent[last] = change.new
    return _strip(doc)


_REMOVED = object()


def _strip(value: Any) -> Any:
    if isinstance(value, list):
        return [_strip(v) for v in value if v is not _REMOVED]
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items()}
    return value


@given(_json, _json)
def test_diff_is_empty_exactly_when_equal_and_applying_it_gives_the_new(old: Any, new: Any) -> None:
    changes = diff_values(old, new)
    assert (changes == []) == (old == new and _same_types(old, new))
    assert diff_values(old, old) == []
    for change in changes:
        assert change.op in ("add", "remove", "change")
    if not _has_named_lists(old) and not _has_named_lists(new):
        assert _apply(old, changes) == new


def _same_types(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_types(x, y) for x, y in zip(a, b, strict=True))
    return True


def _has_named_lists(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_named_lists(v) for v in value.values())
    if isinstance(value, list):
        return any(isinstance(v, dict) and "name" in v for v in value) or any(
            _has_named_lists(v) for v in value
        )
    return False
