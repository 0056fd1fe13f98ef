"""The one way a component registers a resource of unkai's provider."""

from __future__ import annotations

import pulumi

from unkai.kinds import Inputs, State, component_props


class KindResource(pulumi.CustomResource):
    """A resource of unkai's provider, registered from its kind's inputs.

    ``inputs`` is the kind's inputs model; build it with ``Kind.model_construct(...)``
    when a value is a ``pulumi.Output`` (the provider's check validates it once the
    value is known). Its token names the resource type; the state model's outputs are
    registered unset, so the engine fills them in.
    """

    def __init__(
        self,
        name: str,
        inputs: Inputs,
        state: type[State],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(inputs.token, name, component_props(inputs, state), opts)
