"""References to secrets. The model never holds a secret value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from unkai.model._base import EnvVarName, UnkaiModel, sorted_mapping

__all__ = ["SecretEnv", "SecretRef"]

_CONFIG_KEY = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_-]*:)?[A-Za-z][A-Za-z0-9_.-]{0,127}$")


class SecretRef(UnkaiModel):
    """A reference to a secret stored as a Pulumi config secret.

    The model, its JSON dump, the rendered artifacts and the environment files only ever
    contain this reference; the value is read from the stack's encrypted config
    (``pulumi config set --secret <name> ...``) by the provider at deploy time.

    In input, a bare string is accepted as shorthand: ``"db-password"`` is
    ``SecretRef(name="db-password")``.
    """

    name: str = Field(
        description=(
            "Key of the Pulumi config secret, optionally namespaced (``db-password``,"
            " ``app:dbPassword``). Pulumi config keys, not DNS labels."
        )
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _check_name(self) -> SecretRef:
        if not _CONFIG_KEY.fullmatch(self.name):
            raise ValueError(
                f"{self.name!r} is not a Pulumi config key; allowed: [namespace:]key, letters,"
                " digits, '-', '_' and '.', starting with a letter"
            )
        return self


SecretEnv = Annotated[Mapping[EnvVarName, SecretRef], AfterValidator(sorted_mapping)]
"""Environment variable name → the secret whose value it receives, sorted by name."""
