from __future__ import annotations

import pytest
from pydantic import ValidationError

from unkai.model import DNS_LABEL, NAME_PATTERN, HostPool, Zone, dns_label


@pytest.mark.parametrize("name", ["a", "web", "n2-standard-4", "a1", "x" * 63, "a-b-c"])
def test_dns_labels_accepted(name: str) -> None:
    assert Zone(name=name).name == name
    assert dns_label(name) == name


@pytest.mark.parametrize(
    "name", ["", "Web", "1web", "-web", "web-", "we_b", "web.a", "x" * 64, "wéb", "web "]
)
def test_dns_labels_rejected_with_the_rule(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        Zone(name=name)
    (error,) = info.value.errors()
    assert error["loc"] == ("name",)
    assert "is not a DNS label" in error["msg"]
    assert "lowercase letters, digits and '-'" in error["msg"]


def test_every_reference_field_is_a_dns_label_too() -> None:
    with pytest.raises(ValidationError) as info:
        HostPool(name="general", zone="Zone_A")
    assert info.value.errors()[0]["loc"] == ("zone",)


@pytest.mark.parametrize(
    "labels",
    [{"tier": "web"}, {"app.kubernetes.io/name": "api"}, {"empty": ""}, {"A_b.c": "X-1"}],
)
def test_labels_in_kubernetes_syntax_accepted(labels: dict[str, str]) -> None:
    assert HostPool(name="p", zone="z", labels=labels).labels == labels


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ({"-tier": "web"}, "label key '-tier' is invalid"),
        ({"tier": "web server"}, "label 'tier' has invalid value"),
        ({"Bad_Prefix/x": "y"}, "label key 'Bad_Prefix/x' is invalid"),
        ({"tier": "x" * 64}, "has invalid value"),
    ],
)
def test_labels_rejected(labels: dict[str, str], fragment: str) -> None:
    with pytest.raises(ValidationError, match="allowed") as info:
        HostPool(name="p", zone="z", labels=labels)
    assert fragment in str(info.value)


def test_mappings_are_sorted_by_key() -> None:
    pool = HostPool(name="p", zone="z", labels={"b": "2", "a": "1", "c": "3"})
    assert list(pool.labels) == ["a", "b", "c"]


def test_models_are_frozen_and_forbid_unknown_keys() -> None:
    zone = Zone(name="a")
    with pytest.raises(ValidationError, match="frozen"):
        zone.name = "b"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Zone.model_validate({"name": "a", "colour": "blue"})


@pytest.mark.parametrize(
    ("text", "is_label", "is_name"),
    [
        ("web", True, True),
        ("1web", True, False),  # a Kubernetes namespace may start with a digit
        ("0", True, False),
        ("a" * 63, True, True),
        ("a" * 64, False, False),
        ("-web", False, False),
        ("web-", False, False),
        ("Web", False, False),
        ("we.b", False, False),
        ("web\n", False, False),
    ],
)
def test_dns_label_and_name_patterns(text: str, is_label: bool, is_name: bool) -> None:
    assert bool(DNS_LABEL.fullmatch(text)) is is_label
    assert bool(NAME_PATTERN.fullmatch(text)) is is_name
