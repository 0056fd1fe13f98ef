"""Environments declared in Python: ``[project] environments = "<module>:<function>"``.

A project may declare its environments in Python instead of ``environments/*.yaml``::

    # unkai.toml
    [project]
    name = "acme"
    environments = "cloud:environments"

    # cloud.py, at the project root
    from unkai.model import Environment, ...
    def environments() -> list[Environment]:
        return [Environment(name="local", ...)]

The function takes no argument and returns the environments (an iterable of
:class:`~unkai.model.Environment`, or a mapping of them by name). It may read per-environment
values from YAML with :func:`~unkai.environments.load_yaml_environment` and change or add
to them in Python. Every command then finds the environment by name here, exactly as it
would find a file: nothing else in unkai knows where an environment came from.

Running the project's module is this package's only side effect beyond reading files; the
module should declare, not deploy.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
import tomllib
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel, ValidationError

from unkai.environments._errors import ConfigProblem, is_secret_path
from unkai.errors import ConfigError, UnkaiError
from unkai.model import Environment

PROJECT_FILE = "unkai.toml"
SOURCE_KEY = "project.environments"
_PYDANTIC_PREFIX = re.compile(r"^(?:Value error|Assertion failed), ")
_ALLOWED = 'a function of a module of the project, as "<module>:<function>" (cloud:environments)'


@dataclass(frozen=True)
class PythonSource:
    """Where a project declares its environments in Python.

    Attributes:
        module: The module's name (``cloud``), imported from the project root.
        function: The function that returns the environments.
        path: The module's file (``cloud.py`` or ``cloud/__init__.py``).
        display: The file as errors show it, relative to the project root.
    """

    module: str
    function: str
    path: Path
    display: str

    def __str__(self) -> str:
        return f"{self.display}: {self.function}()"


def project_table(root: Path) -> dict[str, object]:
    """The ``[project]`` table of ``root/unkai.toml``; empty when there is none.

    The file itself is checked by the commands that find the project
    (:func:`unkai.toolchain.load_project`); here only its keys are read.
    """
    try:
        with (root / PROJECT_FILE).open("rb") as handle:
            table = tomllib.load(handle).get("project")
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return table if isinstance(table, dict) else {}


def python_source(root: Path) -> PythonSource | None:
    """The project's Python declaration of its environments, or None (they are YAML files).

    Raises:
        ConfigError: ``[project] environments`` is not ``<module>:<function>`` or names
            no module of the project.
    """
    value = project_table(root).get("environments")
    if value is None:
        return None
    if not isinstance(value, str) or value.count(":") != 1:
        raise _bad_source("must name a module and a function", value)
    module, function = value.split(":")
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts) or not function.isidentifier():
        raise _bad_source("must name a module and a function", value)
    base = root.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return PythonSource(module, function, path, str(path.relative_to(root)))
    raise _bad_source(
        f"names module {module}, and the project has no {base.relative_to(root)}.py", value
    )


def _bad_source(message: str, value: object) -> ConfigProblem:
    return ConfigProblem(
        message, file=PROJECT_FILE, key_path=SOURCE_KEY, value=value, allowed=_ALLOWED
    )


# Roots whose module is running now: a module that calls load_environment on its own
# project would run itself again, without end.
_DECLARING: set[Path] = set()
_LOCK = threading.RLock()


@contextmanager
def _declaring(root: Path, source: PythonSource) -> Iterator[None]:
    key = root.resolve()
    with _LOCK:
        if key in _DECLARING:
            raise ConfigError(
                f"{source} calls load_environment on its own project, which runs"
                f" {source.function}() again; read the YAML values with"
                " unkai.environments.load_yaml_environment instead"
            )
        _DECLARING.add(key)
        try:
            yield
        finally:
            _DECLARING.discard(key)


def declared_environments(root: Path, source: PythonSource) -> dict[str, Environment]:
    """Run ``source`` and return the environments it declares, by name.

    Raises:
        ConfigError: The module fails to import or run (the message names its file and
            line and says what failed, without a traceback), returns something other than
            environments, or declares one name twice.
    """
    with _declaring(root, source):
        module = _import(root, source)
        function = getattr(module, source.function, None)
        if not callable(function):
            raise _bad_source(
                f"{source.display} has no function {source.function}",
                f"{source.module}:{source.function}",
            )
        try:
            returned = function()
            items = list(returned.values() if isinstance(returned, Mapping) else returned)
        except UnkaiError as err:
            raise ConfigError(f"{source} failed: {err}") from None
        except Exception as err:  # the project's code: any failure is said, not raised
            raise _failure(source, err) from None
    found: dict[str, Environment] = {}
    for item in items:
        if not isinstance(item, Environment):
            raise ConfigError(
                f"{source} returned {type(item).__name__} {item!r:.60}; it must return"
                " unkai.model.Environment values"
            )
        if item.name in found:
            raise ConfigError(f"{source} declares environment {item.name!r} twice")
        found[item.name] = item
    return found


def _import(root: Path, source: PythonSource) -> ModuleType:
    """Run the module afresh (a changed file is read again), its project on ``sys.path``."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    spec = importlib.util.spec_from_file_location(source.module, source.path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {source.display}", file=PROJECT_FILE, key_path=SOURCE_KEY)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the project's code: any failure is said, not raised
        raise _failure(source, err, importing=True) from None
    return module


def _failure(source: PythonSource, err: Exception, *, importing: bool = False) -> ConfigError:
    """What the project's code raised, as a sentence that names its own file and line."""
    line = _project_line(source, err)
    where = f"{source.display}:{line}" if line else source.display
    doing = f"importing {source.display}" if importing else f"{source.function}()"
    if isinstance(err, ValidationError):
        detail = _validation(err)
        gap = "" if detail.startswith("\n") else " "
        return ConfigError(f"{where}: {doing} declared an invalid value:{gap}{detail}")
    if isinstance(err, SyntaxError):
        return ConfigError(f"{source.display}:{err.lineno}: {err.msg}")
    said = str(err) or "it raised without a message"
    return ConfigError(f"{where}: {doing} failed: {_sentence(err, said)}")


def _project_line(source: PythonSource, err: Exception) -> int | None:
    """The last line of the project's module in ``err``'s traceback."""
    own = source.path.resolve()
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(err.__traceback__)
        if Path(frame.filename).resolve() == own
    ]
    return lines[-1] if lines else None


def _sentence(err: Exception, said: str) -> str:
    """Python's message, with what kind of failure it is said in words (no class names)."""
    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (ModuleNotFoundError, "a module it imports is not installed"),
        (ImportError, "an import failed"),
        (NameError, "a name is not defined"),
        (AttributeError, "an attribute does not exist"),
        (KeyError, "a key is missing"),
        (TypeError, "a value has the wrong type"),
        (ValueError, "a value is wrong"),
        (FileNotFoundError, "a file does not exist"),
    )
    for kind, words in kinds:
        if isinstance(err, kind):
            return f"{words} ({said})"
    return said


def _validation(err: ValidationError) -> str:
    """A model's validation errors: ``Instance machine_type: <why> (got <value>)``.

    Several go on lines of their own; a value under a secret-looking key is never shown.
    """
    parts = []
    for detail in err.errors(include_url=False):
        loc = detail["loc"]
        got = detail.get("input")
        message = _PYDANTIC_PREFIX.sub("", detail["msg"])
        if detail["type"] == "extra_forbidden":
            message = "not a field of the model"
        hidden = is_secret_path(loc) or isinstance(got, (dict, list, BaseModel))
        shown = "" if hidden or repr(got) in message else f" (got {got!r:.60})"
        where = " " + ".".join(str(p) for p in loc) if loc else ""
        parts.append(f"{err.title}{where}: {message}{shown}")
    return parts[0] if len(parts) == 1 else "".join(f"\n  {part}" for part in parts)
