"""The unkai resource provider: dispatches each engine call to the resource's handler."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from pulumi.provider.experimental import provider as p
from pulumi.provider.experimental.property_value import PropertyValue

from unkai.errors import ConfigError, UnkaiError
from unkai.provider._resource import Resource
from unkai.provider._values import Props, unwrap, wrap


class ProviderError(Exception):
    """An error the engine shows to the user: the resource, then what went wrong."""


class UnkaiProvider(p.Provider):
    """The ``unkai`` provider plugin.

    Args:
        resources: The resource handlers it serves, one per type token.
    """

    def __init__(self, resources: Iterable[Resource]) -> None:
        self.resources = {r.token: r for r in resources}

    def _handler(self, token: str) -> Resource:
        # A URN's type holds the parents' types too: "unkai:index:Cloud$unkai:compute:VmImage".
        token = token.rsplit("$", 1)[-1]
        try:
            return self.resources[token]
        except KeyError:
            known = ", ".join(sorted(self.resources))
            raise ProviderError(
                f"unknown resource type {token}; this provider has: {known}"
            ) from None

    def _outputs(
        self, handler: Resource, values: dict[str, Any], secrets: Iterable[str]
    ) -> dict[str, PropertyValue]:
        return wrap(values, {*secrets, *handler.secret_outputs})

    async def _call(self, urn_name: str, fn, *args):  # type: ignore[no-untyped-def]
        try:
            return await asyncio.to_thread(fn, *args)
        except UnkaiError as err:
            raise ProviderError(f"{urn_name}: {err}") from err

    async def configure(self, request: p.ConfigureRequest) -> p.ConfigureResponse:
        """Accept secrets, so that secretness is kept exactly, property by property."""
        return p.ConfigureResponse(accept_secrets=True, supports_preview=False)

    async def check(self, request: p.CheckRequest) -> p.CheckResponse:
        """Validate inputs; each problem becomes a failure naming the property."""
        handler = self._handler(request.type)
        news = unwrap(request.new_inputs)
        try:
            inputs = await asyncio.to_thread(handler.check, news)
        except ConfigError as err:
            reason = err.message + (f"; allowed: {err.allowed}" if err.allowed else "")
            return p.CheckResponse(
                inputs=request.new_inputs,
                failures=[p.CheckFailure(property=err.key_path or "", reason=reason)],
            )
        return p.CheckResponse(inputs=wrap(inputs, news.secrets))

    async def diff(self, request: p.DiffRequest) -> p.DiffResponse:
        """Which properties change, and which of them force a replacement."""
        handler = self._handler(request.type)
        result = handler.diff(unwrap(request.old_state), unwrap(request.new_inputs))
        detailed = {
            key: p.PropertyDiff(
                p.PropertyDiffKind.UPDATE_REPLACE
                if key in result.replaces
                else p.PropertyDiffKind.UPDATE,
                input_diff=True,
            )
            for key in result.changed
        }
        return p.DiffResponse(
            changes=result.has_changes,
            replaces=list(result.replaces),
            diffs=list(result.changed),
            detailed_diff=detailed,
            delete_before_replace=bool(result.replaces),
        )

    async def create(self, request: p.CreateRequest) -> p.CreateResponse:
        """Create the real thing."""
        handler = self._handler(request.type)
        inputs = unwrap(request.properties)
        resource_id, outputs = await self._call(request.name, handler.create, inputs)
        return p.CreateResponse(resource_id, self._outputs(handler, outputs, inputs.secrets))

    async def read(self, request: p.ReadRequest) -> p.ReadResponse:
        """Read the real thing, so that ``refresh`` tells the truth; gone means empty id."""
        handler = self._handler(request.type)
        state = unwrap(request.properties)
        outputs = await self._call(request.name, handler.read, request.resource_id, state)
        if outputs is None:
            return p.ReadResponse(resource_id="")
        props = self._outputs(handler, outputs, state.secrets)
        inputs = {k: v for k, v in props.items() if k in handler.inputs}
        return p.ReadResponse(request.resource_id, props, inputs)

    async def update(self, request: p.UpdateRequest) -> p.UpdateResponse:
        """Change the real thing in place."""
        handler = self._handler(request.type)
        olds, news = unwrap(request.olds), unwrap(request.news)
        outputs = await self._call(request.name, handler.update, request.resource_id, olds, news)
        return p.UpdateResponse(self._outputs(handler, outputs, news.secrets))

    async def delete(self, request: p.DeleteRequest) -> None:
        """Delete the real thing."""
        handler = self._handler(request.type)
        state: Props = unwrap(request.properties)
        await self._call(request.name, handler.delete, request.resource_id, state)
