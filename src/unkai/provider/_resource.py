"""The contract of one resource kind of the unkai provider."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from unkai.kinds import (
    UNKNOWN,
    Inputs,
    State,
    check_inputs,
    has_unknown,
    input_names,
    replace_reasons,
)
from unkai.provider._values import Props

In = TypeVar("In", bound=Inputs)
St = TypeVar("St", bound=State)


@dataclass(frozen=True)
class Diff:
    """What changes between the state and the new inputs.

    Attributes:
        changed: Properties whose value changes (update in place unless also in replaces).
        replaces: Properties whose change forces a replacement.
        reasons: For each replacing property, why it cannot be changed in place.
    """

    changed: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    reasons: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        """Whether anything changes."""
        return bool(self.changed)


class Resource(ABC, Generic[In, St]):
    """One resource kind: how it is created, read, updated and deleted.

    The kind's declaration (:mod:`unkai.kinds`) is the single source of its shape:
    :meth:`check` validates against it, :meth:`diff` takes the replace reasons from it,
    the provider's schema is generated from it. Handlers receive typed values: the
    inputs model for create/update, the state model for read/update/delete.

    Attributes:
        inputs_model: The kind's inputs.
        state_model: The kind's state (inputs and outputs).
    """

    inputs_model: ClassVar[type[Inputs]]
    state_model: ClassVar[type[State]]

    @property
    def token(self) -> str:
        """The Pulumi type token."""
        return self.inputs_model.token

    def check(self, news: Props) -> dict[str, Any]:
        """Validate and normalise new inputs against the kind; then :meth:`validate`.

        Raises:
            ConfigError: naming the property (``disks.0.size_gb``) and what is allowed.
        """
        values = check_inputs(self.inputs_model, news.values)
        if not has_unknown(values):
            self.validate(self.inputs_model.model_validate(values), secrets=news.secrets)  # type: ignore[arg-type]
        return values

    def validate(self, inputs: In, *, secrets: frozenset[str]) -> None:
        """Checks the declaration cannot make (the toolchain, a parse by a driver).

        Args:
            inputs: The checked inputs, all known.
            secrets: Names of the inputs that arrived as secrets.

        Raises:
            ConfigError: naming the property.
        """

    def diff(self, olds: Props, news: Props) -> Diff:
        """Compare each input of the state with the new inputs.

        An input not known yet (preview) counts as changed; the kind's
        :class:`~unkai.kinds.Replace` metadata says which changes replace, and why.
        """
        changed = [
            key
            for key in input_names(self.inputs_model)
            if has_unknown(news.get(key)) or olds.get(key) != news.get(key)
        ]
        reasons = replace_reasons(self.inputs_model)
        replaces = [key for key in changed if key in reasons]
        return Diff(tuple(changed), tuple(replaces), {k: reasons[k] for k in replaces})

    @abstractmethod
    def create(self, inputs: In) -> tuple[str, St]:
        """Create the resource; return its id and state."""

    @abstractmethod
    def read(self, resource_id: str, state: St) -> St | None:
        """Read the real resource as it is now; None when it no longer exists."""

    def update(self, resource_id: str, olds: St, news: In) -> St:
        """Change the resource in place; return its state.

        Only called for diffs without replacements. The default creates it anew under
        the same id, which suits resources whose create is an idempotent write.
        """
        _, state = self.create(news)
        return state

    @abstractmethod
    def delete(self, resource_id: str, state: St) -> None:
        """Delete the resource; one already gone is not an error."""


__all__ = ["UNKNOWN", "Diff", "Resource"]
