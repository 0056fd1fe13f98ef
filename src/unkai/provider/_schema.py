"""The Pulumi package schema of the unkai provider, generated from the kinds.

``pulumi package get-schema`` asks the plugin for it (GetSchema); SDK generators and
docs read it. Every resource's properties, their types, descriptions (the fields'
docstrings), which are required and which are secret come from the kind's two
models, so the schema cannot drift from what check and diff enforce.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from unkai.kinds import Inputs, State, input_names, secret_names

__all__ = ["package_schema"]

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


class _Types:
    """Collects the object types (nested models) the resources refer to."""

    def __init__(self) -> None:
        self.specs: dict[str, dict[str, Any]] = {}

    def token(self, model: type[BaseModel], module: str) -> str:
        token = f"unkai:{module}:{model.__name__}"
        if token not in self.specs:
            self.specs[token] = {}  # reserve first: a model may refer to itself
            props = {n: self.prop(model, n, module) for n in model.model_fields}
            required = [n for n, f in model.model_fields.items() if f.is_required()]
            self.specs[token] = {
                "type": "object",
                "description": _doc(model),
                "properties": props,
                "required": sorted(required),
            }
        return token

    def type_of(self, annotation: Any, module: str) -> dict[str, Any]:
        origin = get_origin(annotation)
        if origin is Annotated:
            return self.type_of(get_args(annotation)[0], module)
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                return self.type_of(members[0], module)
            return {"oneOf": [self.type_of(m, module) for m in members]}
        if origin is Literal:
            values = get_args(annotation)
            return self.type_of(type(values[0]), module)
        if origin in (tuple, list):
            args = [a for a in get_args(annotation) if a is not Ellipsis]
            return {"type": "array", "items": self.type_of(args[0] if args else Any, module)}
        if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
            return {
                "type": "object",
                "additionalProperties": self.type_of(get_args(annotation)[1], module),
            }
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return {"$ref": f"#/types/{self.token(annotation, module)}"}
        if annotation in _SCALARS:
            return {"type": _SCALARS[annotation]}
        return {"$ref": "pulumi.json#/Any"}

    def prop(self, model: type[BaseModel], name: str, module: str) -> dict[str, Any]:
        field = model.model_fields[name]
        spec = self.type_of(field.annotation, module)
        if field.description:
            spec["description"] = field.description
        if issubclass(model, Inputs) and name in secret_names(model):
            spec["secret"] = True
        if not field.is_required() and field.default is not None:
            default = field.get_default(call_default_factory=True)
            if isinstance(default, str | int | float | bool) and "$ref" not in spec:
                spec["default"] = default
        return spec


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


def package_schema(
    kinds: Iterable[tuple[type[Inputs], type[State]]], *, version: str
) -> dict[str, Any]:
    """The package schema (a JSON document) of the kinds the provider serves.

    Args:
        kinds: Each kind's inputs and state models.
        version: The plugin's version.

    Returns:
        The schema: ``name``, ``version``, ``resources`` by type token and the object
        ``types`` they refer to.
    """
    found = _Types()
    resources: dict[str, Any] = {}
    for inputs, state in sorted(kinds, key=lambda pair: pair[0].token):
        module = inputs.token.split(":")[1]
        ins = input_names(inputs)
        resources[inputs.token] = {
            "description": _doc(inputs),
            "properties": {n: found.prop(state, n, module) for n in state.model_fields},
            # Inputs are always in the state; outputs may be unset (null).
            "required": sorted(ins),
            "inputProperties": {n: found.prop(inputs, n, module) for n in ins},
            "requiredInputs": sorted(n for n in ins if inputs.model_fields[n].is_required()),
        }
    return {
        "name": "unkai",
        "displayName": "unkai",
        "version": version,
        "description": "A GCE-style private cloud of KVM hosts, images, VMs, containers and "
        "Kubernetes, declared in Python and deployed with Pulumi.",
        "license": "Apache-2.0",
        "resources": resources,
        "types": found.specs,
    }
