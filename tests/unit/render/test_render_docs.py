from __future__ import annotations

import doctest
import inspect

import unkai.render
import unkai.render.filters

_SECTIONS = ("Args:", "Returns:", "Raises:")


def test_docstring_examples_run() -> None:
    result = doctest.testmod(unkai.render, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_every_public_symbol_is_documented() -> None:
    for module in (unkai.render, unkai.render.filters):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                doc = inspect.getdoc(obj)
                assert doc, name
                if inspect.isfunction(obj) and inspect.signature(obj).parameters:
                    assert "Args:" in doc, f"{name} documents no arguments"


def test_templates_are_documented_in_the_package_docstring() -> None:
    doc = unkai.render.__doc__ or ""
    assert "templates/" in doc and "project" in doc and "editable" in doc
