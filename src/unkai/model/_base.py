"""Shared building blocks of the model: the base class and the validated string types.

Every validator here raises :class:`ValueError` with a message that states what is
allowed, because pydantic turns ``ValueError`` into a ``ValidationError`` entry whose
``loc`` is the key path; the environment loader adds the file name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

__all__ = [
    "DNS_LABEL",
    "DNS_NAME",
    "LABEL_NAME",
    "LABEL_PREFIX",
    "MAX_MEMBERS",
    "NAME_PATTERN",
    "NAME_RULE",
    "DnsLabel",
    "EnvVarName",
    "Labels",
    "Metadata",
    "UnkaiModel",
    "dns_label",
    "size_bound",
    "sorted_mapping",
]

V = TypeVar("V")

DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
"""An RFC 1123 DNS label: 1-63 lowercase letters, digits and ``-``, starting and ending
with a letter or digit. What Kubernetes calls a DNS-1123 label (namespaces, Services).

Match it with ``fullmatch``; its ``pattern`` composes into longer names (it has no
anchors). unkai's own names are stricter: see :data:`NAME_PATTERN`.
"""

DNS_NAME = re.compile(rf"(?=.{{1,253}}$){DNS_LABEL.pattern}(?:\.{DNS_LABEL.pattern})*")
"""A lowercase DNS name: labels (:data:`DNS_LABEL`) joined by ``.``, 1-253 characters."""

NAME_PATTERN = re.compile(rf"(?=[a-z]){DNS_LABEL.pattern}")
"""The name of every named thing (:func:`dns_label`): a :data:`DNS_LABEL` that starts
with a letter (an RFC 1035 label). Match it with ``fullmatch``."""

NAME_RULE = "1-63 lowercase letters, digits and '-', starting with a letter and not ending with '-'"
""":data:`NAME_PATTERN` in words, for error messages."""

# Kubernetes label syntax: labels end up on libvirt metadata and Kubernetes objects alike,
# so the stricter of the two rules applies everywhere.
LABEL_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
"""A label value, or a label key's name part; unanchored like :data:`DNS_LABEL`."""
LABEL_PREFIX = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")
"""A label key's optional prefix (a DNS subdomain, before the ``/``); unanchored."""
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class UnkaiModel(BaseModel):
    """Base of every model class: frozen, no unknown keys, JSON-able.

    Instances are immutable values. Mapping fields are plain ``dict`` objects under the
    hood (pydantic cannot freeze them) but are typed as :class:`~collections.abc.Mapping`:
    callers must not mutate them. Data leaves the model only as
    ``model_dump(mode="json")``, and ``Model.model_validate(dumped) == model`` holds.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


def dns_label(value: str) -> str:
    """Check that ``value`` is a DNS label (RFC 1035) and return it unchanged.

    Args:
        value: The candidate name.

    Returns:
        ``value``.

    Raises:
        ValueError: ``value`` is not 1-63 lowercase letters, digits and ``-``, starting
            with a letter and not ending with ``-``.
    """
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"{value!r} is not a DNS label; allowed: {NAME_RULE}")
    return value


DnsLabel = Annotated[str, AfterValidator(dns_label)]
"""The name of every named thing: a DNS label such as ``web`` or ``n2-standard-4``."""


def _env_var_name(value: str) -> str:
    if not _ENV_VAR.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an environment variable name; allowed: letters, digits and"
            " '_', not starting with a digit"
        )
    return value


EnvVarName = Annotated[str, AfterValidator(_env_var_name)]
"""The name of a process environment variable, such as ``DATABASE_URL``."""


def _label_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if (prefix and not LABEL_PREFIX.fullmatch(prefix)) or not LABEL_NAME.fullmatch(name):
        raise ValueError(
            f"label key {key!r} is invalid; allowed: an optional DNS-subdomain prefix and"
            " '/', then 1-63 letters, digits, '-', '_' or '.', starting and ending with a"
            " letter or digit"
        )


def _label_value(key: str, value: str) -> None:
    if value and not LABEL_NAME.fullmatch(value):
        raise ValueError(
            f"label {key!r} has invalid value {value!r}; allowed: empty, or 1-63 letters,"
            " digits, '-', '_' or '.', starting and ending with a letter or digit"
        )


def sorted_mapping(value: Mapping[str, V]) -> dict[str, V]:
    """Return ``value`` as a new dict ordered by key, so dumps are deterministic.

    Args:
        value: Any mapping with string keys.

    Returns:
        A dict with the same items, keys in sorted order.
    """
    return {key: value[key] for key in sorted(value)}


def _labels(value: Mapping[str, str]) -> dict[str, str]:
    for key, item in value.items():
        _label_key(key)
        _label_value(key, item)
    return sorted_mapping(value)


Labels = Annotated[Mapping[str, str], AfterValidator(_labels)]
"""Labels in Kubernetes syntax (``tier: web``, ``unkai.dev/role: db``), sorted by key."""


def _metadata(value: Mapping[str, Any]) -> dict[str, Any]:
    return sorted_mapping(value)


Metadata = Annotated[Mapping[str, str], AfterValidator(_metadata)]
"""Free string key/value pairs (GCE instance metadata), sorted by key."""


MAX_MEMBERS = 1000
"""Most members an instance group or node pool may have: every member is named, placed and
rendered when an environment loads, so a size must be one a cloud could hold."""


def size_bound(value: int, info: ValidationInfo) -> int:
    """Validate ``min_size``/``max_size``: the default ``-1`` becomes the field ``size``.

    Args:
        value: The bound as given (``-1`` when omitted).
        info: Pydantic's validation info; ``size`` is validated before the bounds.

    Returns:
        The bound.

    Raises:
        ValueError: The bound is negative or above :data:`MAX_MEMBERS`.
    """
    if value == -1:
        # Without a valid size its own error is reported; keep the placeholder quiet.
        return int(info.data["size"]) if "size" in info.data else value
    if value < 0:
        raise ValueError(f"{info.field_name} must be ≥ 0")
    if value > MAX_MEMBERS:
        raise ValueError(f"{info.field_name} must be ≤ {MAX_MEMBERS}")
    return value
