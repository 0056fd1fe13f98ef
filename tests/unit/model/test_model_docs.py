from __future__ import annotations

import doctest
import inspect

import pydantic

import unkai.model


def test_docstring_examples_run() -> None:
    result = doctest.testmod(unkai.model, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_every_public_symbol_and_field_is_documented() -> None:
    for name in unkai.model.__all__:
        obj = getattr(unkai.model, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name
        if inspect.isclass(obj) and issubclass(obj, pydantic.BaseModel):
            for field, info in obj.model_fields.items():
                assert info.description, f"{name}.{field}"
