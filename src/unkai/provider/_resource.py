"""The contract of one resource type of the unkai provider."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from unkai.provider._values import UNKNOWN, Props


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
    reasons: Mapping[str, str] | None = None

    @property
    def has_changes(self) -> bool:
        """Whether anything changes."""
        return bool(self.changed)


class Resource(ABC):
    """One resource type: how it is checked, diffed, created, read, updated and deleted.

    Handlers work on plain values (:class:`~unkai.provider._values.Props`) and call
    drivers for every side effect. Class attributes declare the type's shape:

    Attributes:
        token: The Pulumi type token (``unkai:<module>:<Type>``).
        inputs: Names of the input properties; the generic :meth:`diff` compares these.
        replace_on: Input properties whose change forces a replacement, each with why.
        secret_outputs: Output properties that are always secret (derived from secrets).
    """

    token: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]]
    replace_on: ClassVar[Mapping[str, str]] = {}
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def check(self, news: Props) -> dict[str, Any]:
        """Validate and normalise new inputs; raise ConfigError naming the property."""
        return dict(news.values)

    def diff(self, olds: Props, news: Props) -> Diff:
        """Compare each input of the state with the new inputs.

        An input not known yet (preview) counts as changed.
        """
        changed = [
            key
            for key in self.inputs
            if news.get(key) is UNKNOWN or olds.get(key) != news.get(key)
        ]
        replaces = [key for key in changed if key in self.replace_on]
        return Diff(tuple(changed), tuple(replaces), {k: self.replace_on[k] for k in replaces})

    @abstractmethod
    def create(self, inputs: Props) -> tuple[str, dict[str, Any]]:
        """Create the resource; return its id and all its properties."""

    @abstractmethod
    def read(self, resource_id: str, state: Props) -> dict[str, Any] | None:
        """Read the real resource; None when it no longer exists."""

    def update(self, resource_id: str, olds: Props, news: Props) -> dict[str, Any]:
        """Change the resource in place; return all its properties.

        Only called for diffs without replacements. The default creates it anew under
        the same id, which suits resources whose create is an idempotent write.
        """
        _, outputs = self.create(news)
        return outputs

    @abstractmethod
    def delete(self, resource_id: str, state: Props) -> None:
        """Delete the resource; one already gone is not an error."""
