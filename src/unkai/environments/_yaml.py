"""Reading one environment file: safe YAML, with the line of every key and clear errors.

The loader is PyYAML's safe loader with these changes, each to turn a surprise into an
error or a plain value:

- duplicate keys in one mapping are an error (PyYAML keeps the last one silently);
- timestamps stay strings (``version: 2024-06-01`` is a version, not a date);
- NaN and infinities are refused (JSON has neither and no field wants them);
- a scalar that cannot be constructed (an integer of 5,000 digits, ``!!float abc``) is a
  YAML error at its line instead of a bare ``ValueError``;
- nesting deeper than :data:`MAX_DEPTH` is refused before composing (the composer
  recurses), and documents whose aliases expand past :data:`MAX_VALUES` values or refer
  to themselves are refused.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from unkai.environments._errors import ConfigProblem, KeyPath, format_key_path

__all__ = ["MAX_DEPTH", "MAX_VALUES", "ParsedFile", "parse_file", "parse_text"]

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted in an environment file."""

MAX_VALUES = 200_000
"""Most values (after expanding aliases) accepted in one environment file."""

_TIMESTAMP = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True)
class ParsedFile:
    """One environment file, read.

    Attributes:
        display: The file name used in errors (relative to the project root).
        data: The document: a dict with string keys (an empty file is ``{}``).
        lines: The 1-based line of every key path in ``data``.
    """

    display: str
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)


# libyaml's parser when PyYAML was built with it (ten times faster); the constructor
# stays PyYAML's Python one either way, with the changes above.
_Parser: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Parser):  # type: ignore[valid-type,misc]
    """Safe loader that records key lines and rejects duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # id(constructed dict) -> {key: line}; the dicts stay alive in the document.
        self.key_lines: dict[int, dict[Hashable, int]] = {}

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as err:
            raise ConstructorError(
                None, None, f"cannot read this value: {err}", node.start_mark
            ) from err

    def construct_unkai_map(self, node: MappingNode) -> Iterator[dict[Hashable, Any]]:
        data: dict[Hashable, Any] = {}
        yield data
        _reject_duplicates(node)
        self.flatten_mapping(node)
        lines: dict[Hashable, int] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node)
            if not isinstance(key, Hashable):
                raise ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    "found a key that is not a plain value",
                    key_node.start_mark,
                )
            data[key] = self.construct_object(value_node)
            lines[key] = key_node.start_mark.line + 1
        self.key_lines[id(data)] = lines

    def construct_finite_float(self, node: ScalarNode) -> float:
        value = float(self.construct_yaml_float(node))
        if not math.isfinite(value):
            # No field of the model means anything by NaN or infinity, and JSON has
            # neither: `cpu_overcommit: .inf` would only fail later, in placement.
            raise ConstructorError(
                None, None, f"a number must be finite (got {node.value!r})", node.start_mark
            )
        return value

    def construct_timestamp_text(self, node: ScalarNode) -> str:
        return str(self.construct_scalar(node))


# Timestamps stay text: drop the resolver from a copy, leaving SafeLoader's own alone.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in _Parser.yaml_implicit_resolvers.items()
}
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_unkai_map)
_Loader.add_constructor(_TIMESTAMP, _Loader.construct_timestamp_text)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_finite_float)


def _reject_duplicates(node: MappingNode) -> None:
    seen: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        ident = (key_node.tag, key_node.value)
        if ident in seen:
            raise ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found duplicate key {key_node.value!r} (first on line {seen[ident]})",
                key_node.start_mark,
            )
        seen[ident] = key_node.start_mark.line + 1


def _check_depth(text: str, display: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_Parser):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigProblem(
                    f"nesting deeper than {MAX_DEPTH} levels",
                    file=display,
                    line=event.start_mark.line + 1 if event.start_mark else None,
                    allowed=f"at most {MAX_DEPTH} nested mappings and lists",
                )
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def _yaml_problem(err: yaml.YAMLError, display: str) -> ConfigProblem:
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        what = " ".join(p for p in (err.context, err.problem) if p) or "invalid YAML"
        if mark is not None:
            return ConfigProblem(
                f"invalid YAML: {what} (column {mark.column + 1})",
                file=display,
                line=mark.line + 1,
            )
        return ConfigProblem(f"invalid YAML: {what}", file=display)
    return ConfigProblem(f"invalid YAML: {err}", file=display)


def parse_text(text: str, display: str) -> ParsedFile:
    """Parse the text of one environment file.

    Args:
        text: The YAML text.
        display: The file name to put in errors.

    Returns:
        The document and the line of every key. Empty text (or only comments) is ``{}``.

    Raises:
        ConfigProblem: The text is not YAML, not a single mapping with string keys, or
            too deep or too large; the error names the line when there is one.
    """
    try:
        _check_depth(text, display)
        loader = _Loader(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise _yaml_problem(err, display) from err
    except RecursionError as err:
        raise ConfigProblem(
            "a YAML alias refers to the mapping it is part of", file=display
        ) from err
    if data is None:
        return ParsedFile(display, {}, {})
    if not isinstance(data, dict):
        raise ConfigProblem(
            f"the document is a {_kind(data)}, not a mapping",
            file=display,
            line=1,
            allowed="a mapping of keys such as extends, hosts, networks, instance_groups",
        )
    lines: dict[KeyPath, int] = {}
    _Index(loader.key_lines, lines, display).visit(data, ())
    return ParsedFile(display, data, lines)


class _Index:
    """Walks a document: records key lines, checks keys, aliases and size."""

    def __init__(
        self, key_lines: dict[int, dict[Hashable, int]], out: dict[KeyPath, int], display: str
    ) -> None:
        self.key_lines = key_lines
        self.out = out
        self.display = display
        self.count = 0
        self.open: set[int] = set()

    def visit(self, value: Any, path: KeyPath) -> None:
        self.count += 1
        if self.count > MAX_VALUES:
            raise ConfigProblem(
                f"the document expands to more than {MAX_VALUES} values (YAML aliases?)",
                file=self.display,
                key_path=format_key_path(path) or None,
            )
        if not isinstance(value, dict | list):
            return
        if id(value) in self.open:
            raise ConfigProblem(
                "a YAML alias refers to the value it is part of",
                file=self.display,
                key_path=format_key_path(path) or None,
                line=self._line(path),
            )
        self.open.add(id(value))
        if isinstance(value, dict):
            lines = self.key_lines.get(id(value), {})
            for key, item in value.items():
                line = lines.get(key)
                if not isinstance(key, str):
                    raise ConfigProblem(
                        f"key {key!r} is a {_kind(key)}, not a string",
                        file=self.display,
                        key_path=format_key_path(path) or None,
                        line=line,
                        allowed="string keys; quote keys such as 'no', 'on', '1' or 'null'",
                    )
                if line is not None:
                    self.out[(*path, key)] = line
                self.visit(item, (*path, key))
        else:
            for index, item in enumerate(value):
                self.visit(item, (*path, index))
        self.open.discard(id(value))

    def _line(self, path: KeyPath) -> int | None:
        while path:
            if path in self.out:
                return self.out[path]
            path = path[:-1]
        return None


def _kind(value: object) -> str:
    names = {dict: "mapping", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def parse_file(path: Path, display: str) -> ParsedFile:
    """Read and parse one environment file (the only I/O of the package).

    Args:
        path: The file.
        display: The file name to put in errors.

    Returns:
        See :func:`parse_text`.

    Raises:
        ConfigProblem: The file cannot be read, is not UTF-8, or see :func:`parse_text`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigProblem(
            f"not UTF-8 text (byte {err.start})", file=display, allowed="UTF-8 YAML"
        ) from err
    except OSError as err:
        raise ConfigProblem(f"cannot read: {err.strerror}", file=display) from err
    return parse_text(text, display)
