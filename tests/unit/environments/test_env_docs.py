"""The package's surface: documented, examples that run, and pure (imports nothing above)."""

from __future__ import annotations

import doctest
import inspect
import subprocess
import sys

import unkai.environments

FORBIDDEN = (
    "pulumi",
    "docker",
    "libvirt",
    "ansible_runner",
    "kubernetes",
    "unkai.cli",
    "unkai.toolchain",
    "unkai.drivers",
    "unkai.provider",
    "unkai.components",
    "unkai.placement",
    "unkai.render",
)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(unkai.environments, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_every_public_symbol_is_documented() -> None:
    for name in unkai.environments.__all__:
        obj = getattr(unkai.environments, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name
            assert obj.__module__.startswith("unkai.environments._"), name


def test_importing_the_package_loads_no_engine_driver_or_upper_layer() -> None:
    code = "import sys, unkai.environments\nprint('\\n'.join(sorted(sys.modules)))\n"
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == []
