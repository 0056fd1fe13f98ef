from __future__ import annotations

import doctest
import inspect
import subprocess
import sys

import pydantic

import unkai.placement


def test_docstring_examples_run() -> None:
    result = doctest.testmod(unkai.placement, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_every_public_symbol_and_field_is_documented() -> None:
    for name in unkai.placement.__all__:
        obj = getattr(unkai.placement, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name
        if inspect.isclass(obj) and issubclass(obj, pydantic.BaseModel):
            for field, info in obj.model_fields.items():
                assert info.description, f"{name}.{field}"


def test_placement_imports_no_io_or_plotting_library() -> None:
    code = (
        "import sys, unkai.placement; "
        "print(sorted(m for m in ('matplotlib', 'rich', 'typer', 'pulumi', 'yaml', 'jinja2')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
