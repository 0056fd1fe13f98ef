"""The building blocks of a resource kind's declaration: markers, base classes, check.

A kind is two frozen pydantic models: its inputs (a subclass of :class:`Inputs`) and its
state (a subclass of the inputs that adds the outputs, :class:`State`). Each field's
docstring is its documentation (``use_attribute_docstrings``); its metadata says what
forces a replacement (:class:`Replace`) and what is always secret (:class:`Secret`).
Defaults live on the fields, once. Everything else — the provider's check, diff and
schema, the components' props, the docs — is derived from these two classes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from unkai.environments import explain_validation_error
from unkai.errors import ConfigError

__all__ = [
    "UNKNOWN",
    "Inputs",
    "Replace",
    "Secret",
    "State",
    "check_inputs",
    "component_props",
    "explained",
    "has_unknown",
    "input_names",
    "input_values",
    "known",
    "output_names",
    "parse_state",
    "replace_reasons",
    "secret_names",
]


class _Unknown:
    """A value the engine does not know yet (an output of a resource not yet created)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""The plain value of a property the engine does not know yet (during a preview)."""


@dataclass(frozen=True)
class Replace:
    """Field metadata: a change of this input replaces the resource, and why.

    Attributes:
        reason: Why it cannot change in place, as the user reads it in a preview.
    """

    reason: str


@dataclass(frozen=True)
class Secret:
    """Field metadata: this property is always a Pulumi secret in the state."""


class Inputs(BaseModel):
    """Base of a kind's inputs: frozen, no unknown keys, docstrings as descriptions.

    Attributes:
        token: The Pulumi type token (``unkai:<module>:<Type>``), set by each kind.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    token: ClassVar[str]


class State(Inputs):
    """Base of a kind's state: its inputs and its outputs (every output optional)."""


In = TypeVar("In", bound=Inputs)
St = TypeVar("St", bound=State)


@cache
def input_names(kind: type[Inputs]) -> tuple[str, ...]:
    """The input properties of ``kind`` (its inputs model's fields), in declaration order."""
    inputs = _inputs_of(kind)
    return tuple(inputs.model_fields)


@cache
def output_names(state: type[State]) -> tuple[str, ...]:
    """The properties ``state`` adds to its inputs: the outputs."""
    inputs = set(input_names(state))
    return tuple(name for name in state.model_fields if name not in inputs)


def _inputs_of(kind: type[Inputs]) -> type[Inputs]:
    """The inputs model of a kind (the class itself, or the inputs a State extends)."""
    for cls in kind.__mro__:
        if isinstance(cls, type) and issubclass(cls, Inputs) and not issubclass(cls, State):
            return cls
    return kind


def _marker(kind: type[Inputs], name: str, marker: type[Any]) -> Any:
    return next((m for m in kind.model_fields[name].metadata if isinstance(m, marker)), None)


@cache
def replace_reasons(kind: type[Inputs]) -> Mapping[str, str]:
    """Input property → why its change replaces the resource (from :class:`Replace`)."""
    reasons = {}
    for name in input_names(kind):
        found = _marker(_inputs_of(kind), name, Replace)
        if found is not None:
            reasons[name] = found.reason
    return reasons


@cache
def secret_names(kind: type[Inputs]) -> frozenset[str]:
    """Properties of ``kind`` that are always secret (from :class:`Secret`)."""
    return frozenset(n for n in kind.model_fields if _marker(kind, n, Secret) is not None)


def has_unknown(value: Any) -> bool:
    """Whether ``value`` is or holds (deeply) an :data:`UNKNOWN`."""
    if value is UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_unknown(v) for v in value)
    return False


@cache
def _partial(kind: type[In], unknown: frozenset[str]) -> type[In]:
    """``kind`` with the ``unknown`` fields accepting anything (their value is not known)."""
    if not unknown:
        return kind
    fields: dict[str, Any] = {name: (Any, None) for name in unknown}
    return create_model(
        f"{kind.__name__}Preview", __base__=kind, __module__=kind.__module__, **fields
    )


def check_inputs(kind: type[Inputs], values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate plain input values against ``kind``; defaults filled, JSON-able out.

    A property not known yet (:data:`UNKNOWN`, during a preview) passes as it is; the
    others are validated as usual. Cross-field checks (model validators) skip what is
    not known (see :func:`known`).

    Args:
        kind: The inputs model.
        values: Property name → plain value (numbers may arrive as floats).

    Returns:
        The normalised inputs (``model_dump(mode="json")``), unknowns kept.

    Raises:
        ConfigError: A property is missing, unknown or invalid; the key path names it
            (``disks.0.size_gb``) and says what is allowed.
    """
    unknown = frozenset(name for name, value in values.items() if has_unknown(value))
    model = _partial(kind, unknown)
    try:
        checked = model.model_validate(dict(values))
    except ValidationError as err:
        raise explain_validation_error(
            err, document=values, root=kind, headline=f"inputs of {kind.token} are invalid"
        ) from err
    out: dict[str, Any] = checked.model_dump(mode="json", exclude=set(unknown))
    out.update({name: values[name] for name in unknown})
    return out


@contextmanager
def explained(kind: type[Inputs], what: str) -> Iterator[None]:
    """Within this block, a kind's ``ValidationError`` becomes a :class:`ConfigError`.

    For the code that builds a kind's inputs from model values (the components'
    ``*_inputs`` functions): the error names ``what`` is being built, the property and
    what is allowed, like every other configuration error.
    """
    try:
        yield
    except ValidationError as err:
        problem = explain_validation_error(
            err, document={}, root=kind, headline=f"inputs of {kind.token} are invalid"
        )
        raise ConfigError(f"{what}: {problem}") from err


def known(*values: Any) -> bool:
    """Whether none of ``values`` is (or holds) :data:`UNKNOWN`: for cross-field checks."""
    return not any(has_unknown(value) for value in values)


def parse_state(state: type[St], values: Mapping[str, Any]) -> St:
    """The typed state of plain state values, ignoring properties the kind no longer has.

    State written by an older unkai may lack an output or hold one since dropped: a
    value that does not validate is taken as it is rather than refused, so ``refresh``
    and ``destroy`` of an old stack keep working.
    """
    fields = state.model_fields
    kept = {k: v for k, v in values.items() if k in fields}
    try:
        return state.model_validate(kept)
    except ValidationError:
        return state.model_construct(**kept)  # type: ignore[return-value]


def _plain(value: Any) -> Any:
    """Models and tuples as JSON-able values; anything else (an Output) as it is."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def input_values(value: Inputs) -> dict[str, Any]:
    """The input fields of ``value`` (inputs or state), as a state's constructor takes them."""
    return {name: getattr(value, name) for name in input_names(type(value))}


def component_props(inputs: Inputs, state: type[State]) -> dict[str, Any]:
    """The props a component registers: every input of ``inputs``, every output unset.

    ``inputs`` is built with ``Kind.model_construct(...)`` so its values may be
    ``pulumi.Output`` objects; the names are the model's own, checked by mypy.
    """
    props: dict[str, Any] = {
        name: _plain(getattr(inputs, name)) for name in input_names(type(inputs))
    }
    props.update(dict.fromkeys(output_names(state)))
    return props
