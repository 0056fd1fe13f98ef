"""Hypothesis: whatever is in the files, the loader answers an Environment or a ConfigError."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from env_helpers import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from unkai.environments import (
    ConfigProblem,
    ConfigProblems,
    load_environment,
    resolve_document,
)
from unkai.errors import ConfigError
from unkai.model import COLLECTIONS, Environment

_counter = itertools.count()
_LOCAL = yaml.safe_load((REPO / "environments" / "local.yaml").read_text())
_BASE_TEXT = (REPO / "environments" / "base.yaml").read_text()

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_ints = st.integers(-(10**30), 10**30) | st.sampled_from([0, -1, 2**63, 10**400])
_scalars = st.none() | st.booleans() | _ints | st.floats() | _text
_keys = (
    st.sampled_from(
        [*COLLECTIONS, "extends", "settings", "name", "size", "machine_type", "image", "secret_env"]
    )
    | _text
    | st.integers(0, 3)
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=25,
)
_documents = st.dictionaries(st.sampled_from([*COLLECTIONS, "settings", "description"]), _values)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("props")
    (path / "environments").mkdir()
    (path / "environments" / "base.yaml").write_text(_BASE_TEXT, encoding="utf-8")
    return path


def _fresh(root: Path, text: str, *, extra: dict[str, str] | None = None) -> str:
    """Write ``text`` as a new environment (and ``extra`` files); return its name."""
    name = f"p{next(_counter)}"
    (root / "environments" / f"{name}.yaml").write_text(text, encoding="utf-8")
    for other, other_text in (extra or {}).items():
        (root / "environments" / f"{other}.yaml").write_text(other_text, encoding="utf-8")
    return name


def _answers_cleanly(root: Path, name: str) -> Environment | ConfigError:
    try:
        env = load_environment(name, root=root)
    except ConfigError as err:
        text = str(err)
        assert text and "Traceback" not in text
        for problem in getattr(err, "problems", (err,)):
            assert isinstance(problem, ConfigProblem)
            assert problem.file is None or problem.file.endswith(".yaml")
            assert problem.line is None or problem.line >= 1
        return err
    assert env.name == name
    return env


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True)


@settings(max_examples=150, deadline=None)
@given(doc=_values)
def test_any_yaml_value_is_an_environment_or_a_config_error(root: Path, doc: Any) -> None:
    _answers_cleanly(root, _fresh(root, _dump(doc)))


@settings(max_examples=150, deadline=None)
@given(doc=_documents, extends=st.sampled_from([None, "base"]))
def test_environment_shaped_documents(root: Path, doc: dict[str, Any], extends: str | None) -> None:
    if extends:
        doc = {"extends": extends, **doc}
    _answers_cleanly(root, _fresh(root, _dump(doc)))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


_LOCAL_PATHS = [p for p in _paths(_LOCAL) if p and p != ("extends",)]


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(_LOCAL_PATHS), value=_values)
def test_one_bad_value_in_local_is_located(root: Path, path: tuple[Any, ...], value: Any) -> None:
    doc = copy.deepcopy(_LOCAL)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    result = _answers_cleanly(root, _fresh(root, _dump(doc)))
    if isinstance(result, ConfigProblems):
        assert len(result.problems) >= 2


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text(root: Path, text: str) -> None:
    text = text.encode("utf-8", "replace").decode("utf-8")
    _answers_cleanly(root, _fresh(root, text))


@settings(max_examples=100, deadline=None)
@given(
    data=st.binary(max_size=200)
    | st.sampled_from(
        [
            b"\xef\xbb\xbfa: 1\n",
            b"a: [" * 1000,
            b"{" * 5000,
            b"- " * 2000 + b"x",
            b"&a [*a, *a]",
            b"!!binary aGVsbG8=",
            b"? [a, b]\n: c\n",
            b"a: !!set {x, y}\n",
            b"%YAML 1.1\n---\na: 1\n",
        ]
    )
)
def test_arbitrary_bytes(root: Path, data: bytes) -> None:
    name = f"p{next(_counter)}"
    (root / "environments" / f"{name}.yaml").write_bytes(data)
    _answers_cleanly(root, name)


_names = st.sampled_from(["a", "b", "c", "d"])


@settings(max_examples=150, deadline=None)
@given(
    links=st.dictionaries(
        _names,
        st.none() | _names | st.sampled_from(["zz", "Bad Name", "../x", 3, ["a"], {"a": 1}]),
        min_size=1,
    ),
    start=_names,
)
def test_random_extends_graphs(
    tmp_path_factory: pytest.TempPathFactory, links: dict[str, Any], start: str
) -> None:
    root = tmp_path_factory.mktemp("graph")
    (root / "environments").mkdir()
    for name, parent in links.items():
        text = _dump({"extends": parent, "settings": {name: 1}})
        (root / "environments" / f"{name}.yaml").write_text(text, encoding="utf-8")
    result = _answers_cleanly(root, start)
    # Follow the chain by hand: a cycle or a bad link must be the error.
    seen: list[str] = []
    current: Any = start
    while isinstance(current, str) and current in links and current not in seen:
        seen.append(current)
        current = links[current]
    if current is None:
        assert isinstance(result, Environment)
        assert dict(result.settings) == {name: 1 for name in seen}
        assert list(resolve_document(start, root=root)["settings"]) == seen[::-1]
    else:
        assert isinstance(result, ConfigError)
        if current in seen:
            assert "cycle" in str(result)


@pytest.mark.parametrize("special", [".nan", ".inf", "-.inf"])
def test_float_specials_are_refused(root: Path, special: str) -> None:
    result = _answers_cleanly(
        root, _fresh(root, f"host_pools:\n  p: {{cpu_overcommit: {special}}}\n")
    )
    assert isinstance(result, ConfigProblem)
    assert result.line == 2 and "a number must be finite" in result.message
