"""The unkai provider: dispatches each engine call to the resource kind's handler."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pulumi.provider.experimental import provider as p
from pulumi.provider.experimental.property_value import PropertyValue

from unkai.errors import ConfigError, UnkaiError
from unkai.kinds import has_unknown, input_names, parse_state, secret_names
from unkai.provider._log import replace_reason, say, working_on
from unkai.provider._resource import Resource
from unkai.provider._schema import package_schema
from unkai.provider._values import Props, unwrap, wrap

T = TypeVar("T")


def _shown(problem: ConfigError, *, secrets: frozenset[str]) -> str:
    """`` (got …)`` for a bad value, unless the property it is in is a secret."""
    top = (problem.key_path or "").split(".", 1)[0]
    if problem.value is None or top in secrets:
        return ""
    return f" (got {problem.value!r})"


class ProviderError(UnkaiError):
    """An error the engine shows to the user: the resource, then what went wrong."""


class UnkaiProvider(p.Provider):
    """The ``unkai`` provider plugin.

    Args:
        resources: The resource handlers it serves, one per type token.
        version: The plugin's version (the package's).
    """

    def __init__(self, resources: Iterable[Resource[Any, Any]], version: str = "0.0.0") -> None:
        self.resources = {r.token: r for r in resources}
        self.version = version

    def _handler(self, token: str) -> Resource[Any, Any]:
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
        self, handler: Resource[Any, Any], state: Any, secrets: Iterable[str]
    ) -> dict[str, PropertyValue]:
        values = state.model_dump(mode="json")
        return wrap(values, {*secrets, *secret_names(handler.state_model)})

    def _state(self, handler: Resource[Any, Any], props: Props) -> Any:
        return parse_state(handler.state_model, props.values)

    def _inputs(self, handler: Resource[Any, Any], props: Props) -> Any:
        names = set(input_names(handler.inputs_model))
        return handler.inputs_model.model_validate(
            {k: v for k, v in props.values.items() if k in names}
        )

    async def _call(self, urn: str, name: str, fn: Callable[..., T], *args: Any) -> T:
        def run() -> T:
            with working_on(urn):
                return fn(*args)

        try:
            return await asyncio.to_thread(run)
        except UnkaiError as err:
            raise ProviderError(f"{name}: {err}") from err

    async def get_schema(self, request: p.GetSchemaRequest) -> p.GetSchemaResponse:
        """The Pulumi package schema, generated from the kinds' declarations."""
        schema = package_schema(
            [(h.inputs_model, h.state_model) for h in self.resources.values()],
            version=self.version,
        )
        return p.GetSchemaResponse(schema=json.dumps(schema, indent=2, sort_keys=True))

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
            problems = getattr(err, "problems", (err,))
            return p.CheckResponse(
                inputs=request.new_inputs,
                failures=[
                    p.CheckFailure(
                        property=problem.key_path or "",
                        reason=problem.message
                        + _shown(problem, secrets=news.secrets)
                        + (f"; allowed: {problem.allowed}" if problem.allowed else ""),
                    )
                    for problem in problems
                ],
            )
        # A value not known yet goes back exactly as the engine sent it.
        unknown = {k for k, v in inputs.items() if has_unknown(v) and k in request.new_inputs}
        checked = wrap({k: v for k, v in inputs.items() if k not in unknown}, news.secrets)
        checked.update({k: request.new_inputs[k] for k in unknown})
        return p.CheckResponse(inputs=checked)

    async def diff(self, request: p.DiffRequest) -> p.DiffResponse:
        """Which properties change, which force a replacement, and why (logged on the URN)."""
        handler = self._handler(request.type)
        olds, news = unwrap(request.old_state), unwrap(request.new_inputs)
        result = await self._call(request.urn, request.name, handler.diff, olds, news)
        with working_on(request.urn):
            for key in result.replaces:
                say(replace_reason(key, result.reasons.get(key, "")))
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
        props = unwrap(request.properties)
        inputs = self._inputs(handler, props)
        resource_id, state = await self._call(request.urn, request.name, handler.create, inputs)
        return p.CreateResponse(resource_id, self._outputs(handler, state, props.secrets))

    async def read(self, request: p.ReadRequest) -> p.ReadResponse:
        """Read the real thing, so that ``refresh`` tells the truth; gone means empty id."""
        handler = self._handler(request.type)
        props = unwrap(request.properties)
        state = await self._call(
            request.urn,
            request.name,
            handler.read,
            request.resource_id,
            self._state(handler, props),
        )
        if state is None:
            return p.ReadResponse(resource_id="")
        outputs = self._outputs(handler, state, props.secrets)
        names = set(input_names(handler.inputs_model))
        inputs = {k: v for k, v in outputs.items() if k in names}
        return p.ReadResponse(request.resource_id, outputs, inputs)

    async def update(self, request: p.UpdateRequest) -> p.UpdateResponse:
        """Change the real thing in place."""
        handler = self._handler(request.type)
        olds, news = unwrap(request.olds), unwrap(request.news)
        state = await self._call(
            request.urn,
            request.name,
            handler.update,
            request.resource_id,
            self._state(handler, olds),
            self._inputs(handler, news),
        )
        return p.UpdateResponse(self._outputs(handler, state, news.secrets))

    async def delete(self, request: p.DeleteRequest) -> None:
        """Delete the real thing."""
        handler = self._handler(request.type)
        props = unwrap(request.properties)
        await self._call(
            request.urn,
            request.name,
            handler.delete,
            request.resource_id,
            self._state(handler, props),
        )
