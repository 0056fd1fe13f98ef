"""unkai's Python language host: Pulumi's ``LanguageRuntime`` protocol for Python programs.

The engine runs a plugin called ``pulumi-language-python`` for projects whose
``Pulumi.yaml`` says ``runtime: python``. The Go implementation of that plugin is not
served by the Go module proxy this project builds from, so when no matching one is on
PATH the bootstrap installs this one under that name (see ``unkai.toolchain``).

It serves the protocol over gRPC with the stubs the pulumi SDK ships, and runs each
program in a fresh interpreter (:mod:`unkai.langhost._exec`) so that nothing of one run
leaks into the next. Runtime options honoured: ``virtualenv`` (relative to the project
root; the program runs with that venv's python).
"""

from __future__ import annotations

from unkai.langhost._server import LanguageHost, main, program_python, run_config

__all__ = ["LanguageHost", "main", "program_python", "run_config"]
