"""The Jinja filters of unkai's templates, and the pure helpers behind them.

Every filter a template may use is defined here and listed in :data:`FILTERS`, which
the one Jinja environment factory (:func:`unkai.render.make_jinja_environment`)
registers. Logic that a template would otherwise spell out lives here, where it has
unit tests. Every function is pure: its result depends only on its arguments.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "FILTERS",
    "ansible_group",
    "canonical_json",
    "content_hash",
    "mac_address",
    "to_json",
    "to_yaml",
    "yaml_scalar",
]

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
# Words YAML 1.1 parsers (PyYAML, Ansible, Go's yaml.v2) read as booleans or null.
_AMBIGUOUS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null"])
_GROUP_INVALID = re.compile(r"[^A-Za-z0-9_]")
# Printable ASCII except '"' and '\\': stays as is inside a double-quoted scalar.
_QUOTE_SAFE = re.compile(r"[ !#-\[\]-~]*")
# Printable ASCII, tab excluded, plus newlines: may go into a literal block as is.
_BLOCK_SAFE = re.compile(r"[ -~\n]*")


def content_hash(text: str) -> str:
    """The SHA-256 of ``text`` encoded as UTF-8, as 64 lowercase hex digits.

    Args:
        text: Any text, typically a rendered artifact.

    Returns:
        The hex digest; equal texts always give equal hashes.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no whitespace, UTF-8 text.

    Args:
        value: A JSON-able value (``model_dump(mode="json")`` output).

    Returns:
        The same string for equal values, whatever order their mappings were built in.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def to_json(value: Any) -> str:
    """``value`` as compact canonical JSON (a filter for one-line values and annotations).

    Args:
        value: A JSON-able value.

    Returns:
        :func:`canonical_json` of ``value``.
    """
    return canonical_json(value)


@functools.lru_cache(maxsize=65536)
def mac_address(*parts: str) -> str:
    """A deterministic, locally administered unicast MAC address derived from ``parts``.

    The address starts with ``52:54`` (QEMU's locally administered prefix) followed by
    four bytes of the SHA-256 of the parts joined by ``/``, so the same parts (for
    example an instance name and a network name) always give the same address and
    32 bits make collisions unlikely.

    Args:
        parts: The strings that identify the NIC.

    Returns:
        The address, such as ``52:54:1f:a0:3b:c4``.
    """
    # Cached: a tree asks for each NIC's address several times (domain, network-config).
    digest = hashlib.sha256("/".join(parts).encode("utf-8")).digest()
    return ":".join(f"{byte:02x}" for byte in (0x52, 0x54, *digest[:4]))


def ansible_group(name: str) -> str:
    """An Ansible group name for ``name``: every character but letters, digits, ``_`` → ``_``.

    Ansible warns about (and may rewrite) group names that are not Python identifiers,
    so ``zone-a`` becomes ``zone_a``; a leading digit gets a ``_`` prefix.

    Args:
        name: A pool or zone name, such as ``zone-a``.

    Returns:
        The group name.
    """
    group = _GROUP_INVALID.sub("_", name)
    return f"_{group}" if group[:1].isdigit() else group


def _escape_char(char: str) -> str:
    code = ord(char)
    if char == '"':
        return '\\"'
    if char == "\\":
        return "\\\\"
    if char == "\n":
        return "\\n"
    if char == "\t":
        return "\\t"
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code < 0x80 or not unicodedata.category(char).startswith("C"):
        return char
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _quoted(text: str) -> str:
    if _QUOTE_SAFE.fullmatch(text):
        return f'"{text}"'
    return '"' + "".join(_escape_char(char) for char in text) + '"'


def yaml_scalar(value: Any) -> str:
    """``value`` as a YAML scalar that every YAML 1.1 and 1.2 parser reads back unchanged.

    Strings stay plain only when they cannot be mistaken for anything else (a letter,
    ``_`` or ``/`` first, then letters, digits, ``_``, ``.``, ``/``, ``-``, and not a
    YAML 1.1 boolean or null word); every other string is double-quoted with YAML
    escapes. Numbers, booleans and ``None`` become ``123``, ``true``, ``null``.

    Args:
        value: A string, integer, float, boolean or ``None``.

    Returns:
        The scalar, on one line.

    Raises:
        TypeError: ``value`` is not a scalar.
    """
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _AMBIGUOUS:
            return value
        return _quoted(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    raise TypeError(f"{type(value).__name__} is not a YAML scalar")


def _literal_block(text: str) -> list[str] | None:
    """The header and lines of a literal block scalar for ``text``, or None if unsuitable."""
    if "\n" not in text or "\r" in text:
        return None
    if not _BLOCK_SAFE.fullmatch(text) and any(
        _escape_char(char) != char for char in text.replace("\n", "")
    ):
        return None
    lines = text.split("\n")
    first = next((line for line in lines if line), "")
    if not first:
        return None  # only newlines: a literal block would read back as ""
    if first[:1] in (" ", "\t") or any(line.endswith((" ", "\t")) for line in lines):
        return None
    if text.endswith("\n\n"):
        return None  # keep chomping simple: one trailing newline (|) or none (|-)
    header = "|" if text.endswith("\n") else "|-"
    body = text[:-1] if text.endswith("\n") else text
    return [header, *body.split("\n")]


def _emit(value: Any, level: int, sort_keys: bool) -> list[str]:
    """The lines of ``value`` as block YAML at indentation ``level`` (in spaces)."""
    pad = " " * level
    if isinstance(value, str):
        block = _literal_block(value)
        if block is not None:
            return [pad + block[0], *(pad + "  " + line if line else "" for line in block[1:])]
        return [pad + yaml_scalar(value)]
    if value is None or isinstance(value, bool | int | float):
        return [pad + yaml_scalar(value)]
    lines: list[str] = []
    if isinstance(value, dict | Mapping):
        if not value:
            return [pad + "{}"]
        keys = sorted(value) if sort_keys else list(value)
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"mapping key {key!r} is not a string")
            lines.extend(_entry(pad + yaml_scalar(key) + ":", value[key], level, sort_keys))
        return lines
    if isinstance(value, list | tuple | Sequence):
        if not value:
            return [pad + "[]"]
        for item in value:
            if isinstance(item, dict | list | tuple) and item:
                nested = _emit(item, level + 2, sort_keys)
                lines.append(pad + "- " + nested[0][level + 2 :])
                lines.extend(nested[1:])
            else:
                lines.extend(_entry(pad + "-", item, level, sort_keys))
        return lines
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def _entry(head: str, value: Any, level: int, sort_keys: bool) -> list[str]:
    """``head`` (``key:`` or ``-``) followed by ``value``, inline when it is short."""
    if isinstance(value, str):
        if "\n" not in value:
            return [f"{head} {yaml_scalar(value)}"]
        block = _literal_block(value)
        if block is not None:
            body = [" " * (level + 2) + line if line else "" for line in block[1:]]
            return [f"{head} {block[0]}", *body]
    elif value is None or isinstance(value, bool | int | float):
        pass
    elif isinstance(value, dict | list | tuple | Mapping | Sequence):
        if value:
            return [head, *_emit(value, level + 2, sort_keys)]
        return [f"{head} {{}}" if isinstance(value, dict | Mapping) else f"{head} []"]
    return [f"{head} {yaml_scalar(value)}"]


def to_yaml(value: Any, indent: int = 0, *, sort_keys: bool = True) -> str:
    """``value`` as block-style YAML, every line indented by ``indent`` spaces.

    Mappings are emitted with sorted keys (unless ``sort_keys`` is false), sequences as
    ``-`` items, scalars with :func:`yaml_scalar`, and multi-line strings as literal
    blocks when that is safe. The output has no trailing newline, so a template can
    place it on a line of its own: ``{{ labels | to_yaml(4) }}``.

    Args:
        value: A JSON-able value (mappings with string keys, sequences, scalars).
        indent: Spaces before every line.
        sort_keys: Whether mapping keys are sorted.

    Returns:
        The YAML text without a trailing newline.

    Raises:
        TypeError: ``value`` holds something that is not JSON-able.
    """
    return "\n".join(_emit(value, indent, sort_keys))


FILTERS: Mapping[str, Callable[..., Any]] = {
    "ansible_group": ansible_group,
    "content_hash": content_hash,
    "mac_address": mac_address,
    "to_json": to_json,
    "to_yaml": to_yaml,
    "yaml_scalar": yaml_scalar,
}
"""Every filter registered in unkai's Jinja environment, by name."""
