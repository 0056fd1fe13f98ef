from __future__ import annotations

import string
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from unkai.render.filters import (
    FILTERS,
    ansible_group,
    canonical_json,
    content_hash,
    mac_address,
    to_json,
    to_yaml,
    yaml_scalar,
)


def test_content_hash_is_sha256_hex() -> None:
    assert content_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert content_hash("é") == content_hash("é")
    assert len(content_hash("x")) == 64


def test_canonical_json_ignores_key_order() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == canonical_json(
        {"a": [1, {"c": 3, "d": 2}], "b": 1}
    )
    assert to_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_mac_address_is_stable_local_unicast() -> None:
    mac = mac_address("web-0", "default")
    assert mac == mac_address("web-0", "default")
    assert mac != mac_address("web-1", "default")
    assert mac.startswith("52:54:")
    octets = [int(part, 16) for part in mac.split(":")]
    assert len(octets) == 6
    assert octets[0] & 0x02 and not octets[0] & 0x01  # locally administered, unicast


@pytest.mark.parametrize(
    ("name", "group"), [("zone-a", "zone_a"), ("general", "general"), ("1a.b", "_1a_b")]
)
def test_ansible_group(name: str, group: str) -> None:
    assert ansible_group(name) == group


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("web", "web"),
        ("/etc/motd", "/etc/motd"),
        ("yes", '"yes"'),
        ("No", '"No"'),
        ("null", '"null"'),
        ("8080", '"8080"'),
        ("1.31", '"1.31"'),
        ("a: b", '"a: b"'),
        ("-x", '"-x"'),
        ("", '""'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("tab\there", '"tab\\there"'),
        ("\x7f", '"\\x7f"'),
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.5, "2.5"),
    ],
)
def test_yaml_scalar(value: Any, text: str) -> None:
    assert yaml_scalar(value) == text


def test_yaml_scalar_rejects_containers() -> None:
    with pytest.raises(TypeError):
        yaml_scalar([1])


def test_to_yaml_layout() -> None:
    value = {
        "b": [1, {"y": "2", "x": [[]]}, [3, 4]],
        "a": {"empty": {}, "script": "line one\nline two\n", "none": []},
    }
    assert to_yaml(value, 2) == (
        "  a:\n"
        "    empty: {}\n"
        "    none: []\n"
        "    script: |\n"
        "      line one\n"
        "      line two\n"
        "  b:\n"
        "    - 1\n"
        "    - x:\n"
        "        - []\n"
        '      "y": "2"\n'
        "    - - 3\n"
        "      - 4"
    )


def test_to_yaml_keeps_order_when_asked() -> None:
    assert to_yaml({"b": 1, "a": 2}, sort_keys=False) == "b: 1\na: 2"


def test_filters_registry_is_complete() -> None:
    assert set(FILTERS) == {
        "ansible_group",
        "content_hash",
        "mac_address",
        "to_json",
        "to_yaml",
        "yaml_scalar",
    }


_keys = st.text(alphabet=string.ascii_letters + string.digits + "_-./: #'\"", min_size=1)
_scalars = st.none() | st.booleans() | st.integers(min_value=-(2**53), max_value=2**53) | st.text()
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_to_yaml_round_trips_through_a_yaml_parser(value: Any) -> None:
    text = to_yaml(value)
    # Templates put the output on lines of its own, so a line break always follows it
    # (a "|" block keeps its final newline only then).
    assert yaml.safe_load(text + "\n") == value
    assert to_yaml(value) == text
