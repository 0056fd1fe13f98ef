"""Between Pulumi property values and plain Python values, keeping track of secrets.

A resource handler sees plain values (``dict``, ``list``, ``str``, ``float``, ``bool``,
``None``, or :data:`UNKNOWN` for a value not known during a preview) and the set of
top-level properties that are secret. Secretness is tracked per top-level property: a
property that holds a secret anywhere inside is secret as a whole on the way back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi.provider.experimental.property_value import Computed, PropertyValue

from unkai.kinds import UNKNOWN, has_unknown

UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""How the engine's wire protocol writes a value not known yet (``pulumi.runtime.rpc.UNKNOWN``)."""


@dataclass(frozen=True)
class Props:
    """Plain property values and the names of the secret ones.

    Attributes:
        values: Property name → plain value.
        secrets: Names of the top-level properties that are secret.
    """

    values: Mapping[str, Any]
    secrets: frozenset[str] = field(default_factory=frozenset)

    def get(self, key: str, default: Any = None) -> Any:
        """The plain value of ``key``."""
        return self.values.get(key, default)

    def unknown(self) -> frozenset[str]:
        """Names of the top-level properties that hold an unknown value."""
        return frozenset(k for k, v in self.values.items() if has_unknown(v))


def to_plain(value: PropertyValue) -> Any:
    """The plain Python value of a property value (secrets unwrapped)."""
    inner = value.value
    # The engine still writes some unknowns (an output not known during a preview, nested
    # in an input) as the wire protocol's sentinel string, not as a computed value.
    if isinstance(inner, Computed) or inner == UNKNOWN_SENTINEL:
        return UNKNOWN
    if isinstance(inner, Mapping):
        return {k: to_plain(v) for k, v in inner.items()}
    if isinstance(inner, tuple):
        return [to_plain(v) for v in inner]
    return inner


def unwrap(props: Mapping[str, PropertyValue]) -> Props:
    """Plain values and secret names of a property map from the engine."""
    return Props(
        values={k: to_plain(v) for k, v in props.items()},
        secrets=frozenset(k for k, v in props.items() if v.contains_secret()),
    )


def from_plain(value: Any) -> PropertyValue:
    """A property value for a plain Python value (ints become floats, as in Pulumi)."""
    if value is UNKNOWN:
        return PropertyValue.computed()
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return PropertyValue(value)
    if isinstance(value, int):
        return PropertyValue(float(value))
    if isinstance(value, Mapping):
        return PropertyValue({str(k): from_plain(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return PropertyValue([from_plain(v) for v in value])
    raise TypeError(f"cannot send {type(value).__name__} to the engine")


def wrap(values: Mapping[str, Any], secrets: Iterable[str] = ()) -> dict[str, PropertyValue]:
    """A property map for the engine, with the named top-level properties secret."""
    secret = frozenset(secrets)
    return {k: from_plain(v).with_secret(k in secret) for k, v in values.items()}
