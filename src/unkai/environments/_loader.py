"""Loading ``environments/<name>.yaml``: ``extends:`` chains, deep merge, validation."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from unkai.environments._errors import (
    ConfigProblem,
    ConfigProblems,
    KeyPath,
    format_key_path,
    is_secret_path,
    raise_problems,
)
from unkai.environments._merge import deep_merge
from unkai.environments._python import (
    declared_environments,
    project_table,
    python_source,
)
from unkai.environments._references import missing_files
from unkai.environments._versions import unbuildable_versions
from unkai.environments._yaml import ParsedFile, parse_file
from unkai.errors import ConfigError
from unkai.model import NAME_PATTERN, NAME_RULE, CrossReferenceError, Environment

__all__ = [
    "ENVIRONMENTS_DIR",
    "LOADER_KEYS",
    "NAME_RULE",
    "environment_file",
    "environment_source",
    "is_environment_name",
    "list_environments",
    "load_environment",
    "load_yaml_environment",
    "resolve_document",
]

ENVIRONMENTS_DIR = "environments"
"""The folder of the project root that holds ``<name>.yaml`` environment files."""

LOADER_KEYS: tuple[str, ...] = ("extends",)
"""Keys the loader reads and removes before merging: they belong to one file only."""

_VALUE_ERROR = re.compile(r"^(?:Value error|Assertion failed), ")
_PATH_PREFIX = re.compile(r"^([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+): (.*)$", re.DOTALL)
_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_]*): (.*)$", re.DOTALL)


def is_environment_name(name: object) -> bool:
    """Whether ``name`` is a valid environment name (a DNS label, see :data:`NAME_RULE`)."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def environment_file(name: str, *, root: Path) -> Path:
    """The path of the file of environment ``name``: ``root/environments/<name>.yaml``.

    Pure: the file need not exist.

    Args:
        name: The environment name.
        root: The project root.

    Returns:
        The path.
    """
    return root / ENVIRONMENTS_DIR / f"{name}.yaml"


def list_environments(root: Path) -> list[str]:
    """The names of the environments the project at ``root`` declares.

    Those its Python function returns, when ``unkai.toml`` names one; otherwise every
    ``environments/<name>.yaml`` whose stem is a DNS label, including files only meant to
    be extended (``base``; the files are not read).

    Args:
        root: The project root.

    Returns:
        The names, sorted; empty when there are none.

    Raises:
        ConfigError: The project's Python failed.
    """
    source = python_source(root)
    if source is not None:
        return sorted(declared_environments(root, source))
    folder = root / ENVIRONMENTS_DIR
    if not folder.is_dir():
        return []
    paths = folder.glob("*.yaml")
    return sorted(path.stem for path in paths if path.is_file() and is_environment_name(path.stem))


def environment_source(name: str, *, root: Path) -> str:
    """Where environment ``name`` is declared, as messages show it, relative to ``root``.

    ``environments/<name>.yaml``, or ``cloud.py: environments()`` for a project that
    declares its environments in Python. Pure but for reading ``unkai.toml``.
    """
    source = python_source(root)
    return str(source) if source is not None else f"{ENVIRONMENTS_DIR}/{name}.yaml"


@dataclass(frozen=True)
class _Resolved:
    """A merged document and the files it came from, base first."""

    document: dict[str, Any]
    chain: tuple[ParsedFile, ...]


def resolve_document(name: str, *, root: Path) -> dict[str, Any]:
    """The merged document of environment ``name``, before validation.

    Reads ``root/environments/<name>.yaml`` and every file its ``extends:`` chain names,
    drops the ``extends`` keys, merges the documents base first with
    :func:`~unkai.environments.deep_merge`, and puts ``name`` (the file's stem) first.
    ``Environment.model_validate(resolve_document(...))`` is what
    :func:`load_environment` does, with errors made readable. Reading the files is the
    only side effect.

    Args:
        name: The environment name (a DNS label).
        root: The project root.

    Returns:
        A new dict; values are as YAML gave them (no defaults filled in).

    Raises:
        ConfigError: The name is invalid or unknown, a file is not valid YAML or not a
            mapping with string keys, ``extends`` names an unknown environment or forms
            a cycle, or a file sets ``name``.
    """
    return _resolve(name, root).document


def load_environment(
    name: str, *, root: Path, overrides: Mapping[str, Any] | None = None
) -> Environment:
    """Environment ``name`` of the project at ``root``, validated, wherever it is declared.

    From ``environments/<name>.yaml`` (:func:`load_yaml_environment`), or, when the
    project's ``unkai.toml`` names a Python function (``[project] environments =
    "cloud:environments"``), from what that function returns. Either way the project's
    name is set, ``overrides`` are merged over it and every file it names must exist; every
    command loads environments through here, so none knows where one came from.

    Args:
        name: The environment name (a DNS label).
        root: The project root.
        overrides: A last layer merged over the environment (a stack's
            ``unkai:overrides`` config).

    Returns:
        The validated environment, named ``name``.

    Raises:
        ConfigError: The environment is unknown or invalid, or the project's Python
            failed (named by file and line).
    """
    source = python_source(root)
    if source is None:
        return load_yaml_environment(name, root=root, overrides=overrides)
    declared = declared_environments(root, source)
    env = declared.get(_check_name(name, file=None, line=None, referrer=False))
    if env is None:
        known = (
            f"one of {', '.join(sorted(declared))}"
            if declared
            else f"none is declared: {source.function}() returned no environment"
        )
        raise ConfigProblem(f"unknown environment {name!r}", file=str(source), allowed=known)
    project = _project_name(root)
    if env.project is not None and env.project != project:
        raise ConfigProblem(
            "an environment may not set project: unkai.toml names it", file=str(source),
            key_path=f"{name}.project", value=env.project, allowed=f"no project, or {project!r}",
        )  # fmt: skip
    document = env.model_dump(mode="json")
    document["project"] = project
    if overrides:
        document = deep_merge(document, _override_layer(overrides))
    return _validated(name, document, _Explainer(document, Environment, source=str(source)), root)


def load_yaml_environment(
    name: str, *, root: Path, overrides: Mapping[str, Any] | None = None
) -> Environment:
    """Load, merge and validate ``environments/<name>.yaml`` of the project at ``root``.

    What :func:`load_environment` does for a project of YAML files; a project that
    declares its environments in Python calls it to read per-environment values from
    YAML and build on them. See :func:`resolve_document` for how the files are found and
    merged. Every problem becomes a :class:`~unkai.errors.ConfigError` naming the file
    that supplied the bad value (the last file of the chain that sets it), its line, the
    key path, the bad value (unless the key looks secret) and what is allowed. The files
    it names (Dockerfile templates, image playbooks) must exist: a missing one is named
    with the closest that do. Reading files is the only side effect.

    Args:
        name: The environment name (a DNS label).
        root: The project root.
        overrides: A last layer merged over the chain, like one more file (a stack's
            ``unkai:overrides`` config); problems in it are reported against the last
            file of the chain.

    Returns:
        The validated environment, named ``name``.

    Raises:
        ConfigError: Anything is wrong. One problem is a
            :class:`~unkai.environments.ConfigProblem`; several found together are one
            :class:`~unkai.environments.ConfigProblems` listing all of them.
    """
    resolved = _resolve(name, root)
    if overrides:
        layer = _override_layer(overrides)
        resolved = _Resolved(deep_merge(resolved.document, layer), resolved.chain)
    explainer = _Explainer(resolved.document, Environment, resolved)
    return _validated(name, resolved.document, explainer, root)


def _override_layer(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A stack's overrides as a layer to merge: without the keys no layer may set."""
    return {k: v for k, v in overrides.items() if k not in ("name", "project", *LOADER_KEYS)}


def load_with_own_file(name: str, *, root: Path, own: Mapping[str, Any]) -> Environment:
    """Environment ``name`` as it would load if its own file held ``own`` instead.

    The files it extends are read as they are; nothing is written. What a change to one
    file would make of the environment, checked like a load (file names in errors are the
    real ones; lines of the changed file are not known).

    Raises:
        ConfigError: The environment would be invalid.
    """
    resolved = _resolve(name, root, own)
    return _validated(
        name, resolved.document, _Explainer(resolved.document, Environment, resolved), root
    )


def _validated(
    name: str, document: dict[str, Any], explainer: _Explainer, root: Path
) -> Environment:
    """``document`` as an environment whose files exist, or every problem, located."""
    try:
        env = Environment.model_validate(document)
    except ValidationError as err:
        raise_problems(f"environment {name!r} is invalid", explainer.explain(err))
        raise AssertionError("unreachable: a ValidationError has errors") from err
    raise_problems(
        f"environment {name!r} names files that do not exist",
        [
            explainer.problem(missing.path, missing.message, value=missing.value,
                              allowed=missing.allowed)
            for missing in missing_files(env, root)
        ],
    )  # fmt: skip
    raise_problems(
        f"environment {name!r} asks for versions unkai cannot build",
        [
            explainer.problem(wrong.path, wrong.message, value=wrong.value, allowed=wrong.allowed)
            for wrong in unbuildable_versions(env)
        ],
    )
    return env


def _project_name(root: Path) -> str | None:
    """The name in the project's ``unkai.toml`` (``[project] name``), if it has one.

    The file itself is checked by the commands that find the project; here only the name
    is taken, for the environment's ``project``.
    """
    name = project_table(root).get("name")
    return name if isinstance(name, str) and name else None


def _resolve(name: str, root: Path, own: Mapping[str, Any] | None = None) -> _Resolved:
    """Merge ``name``'s chain; ``own``, when given, stands for the data of its own file."""
    chain = _read_chain(name, root)
    if own is not None:
        chain[-1] = ParsedFile(chain[-1].display, dict(own))
    problems: list[ConfigProblem] = []
    document: dict[str, Any] = {"name": name}
    for parsed in chain:
        for key, why in (("name", "it is the file's name"), ("project", "unkai.toml names it")):
            if key in parsed.data:
                problems.append(
                    ConfigProblem(
                        f"an environment file may not set {key}: {why}",
                        file=parsed.display,
                        key_path=key,
                        line=parsed.lines.get((key,)),
                        allowed=f"no {key} key",
                    )
                )
        layer = {key: value for key, value in parsed.data.items() if key not in LOADER_KEYS}
        document = deep_merge(document, layer)
    raise_problems(f"environment {name!r} is invalid", problems)
    project = _project_name(root)
    if project is not None:
        document["project"] = project
    return _Resolved(document, tuple(chain))


def _check_name(name: object, *, file: str | None, line: int | None, referrer: bool) -> str:
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return name
    raise ConfigProblem(
        "extends is not an environment name" if referrer else "not an environment name",
        file=file,
        key_path="extends" if referrer else None,
        line=line,
        value=name,
        allowed=NAME_RULE,
    )


def _read_chain(name: str, root: Path) -> list[ParsedFile]:
    """The files of ``name`` and its ``extends:`` chain, base first."""
    current = _check_name(name, file=None, line=None, referrer=False)
    chain: list[ParsedFile] = []
    seen: list[str] = []
    while True:
        referrer = chain[-1] if chain else None
        where = referrer.display if referrer else None
        line = referrer.lines.get(("extends",)) if referrer else None
        if current in seen:
            raise ConfigProblem(
                f"extends forms a cycle: {' → '.join([*seen, current])}",
                file=where,
                key_path="extends",
                line=line,
                value=current,
                allowed="a chain that ends in a file without extends",
            )
        path = environment_file(current, root=root)
        if not path.is_file():
            known = list_environments(root)
            allowed = (
                f"one of {', '.join(known)}"
                if known
                else f"none is defined: add {ENVIRONMENTS_DIR}/<name>.yaml"
            )
            if referrer is None:
                raise ConfigProblem(f"unknown environment {current!r}", allowed=allowed)
            raise ConfigProblem(
                "extends an unknown environment",
                file=where,
                key_path="extends",
                line=line,
                value=current,
                allowed=allowed,
            )
        parsed = parse_file(path, f"{ENVIRONMENTS_DIR}/{current}.yaml")
        seen.append(current)
        chain.append(parsed)
        parent = parsed.data.get("extends")
        if parent is None:
            return chain[::-1]
        current = _check_name(
            parent, file=parsed.display, line=parsed.lines.get(("extends",)), referrer=True
        )


def _child(value: Any, part: str | int) -> tuple[bool, Any]:
    """Whether ``value`` has a key or index ``part``, and the value there."""
    if isinstance(value, Mapping) and isinstance(part, str) and part in value:
        return True, value[part]
    if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
        return True, value[part]
    return False, None


def _lookup(document: Any, path: KeyPath) -> tuple[bool, Any]:
    """Whether ``path`` exists in ``document``, and the value there."""
    value = document
    for part in path:
        found, value = _child(value, part)
        if not found:
            return False, None
    return True, value


class _Explainer:
    """Turns pydantic's errors about a document into located problems.

    Args:
        document: The document that was validated.
        root: The model class that validated it.
        resolved: The environment files it was merged from, to name the file and line
            of each problem; None for a document that comes from no file.
        source: What supplied a document that comes from no file (the project's Python
            function), named in each problem.
    """

    def __init__(
        self,
        document: Any,
        root: type[BaseModel],
        resolved: _Resolved | None = None,
        *,
        source: str | None = None,
    ) -> None:
        self.document = document
        self.root = root
        self.resolved = resolved
        self.source = source

    def explain(self, err: ValidationError) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        unions: dict[KeyPath, list[str]] = {}
        for detail in err.errors(include_url=False):
            if _short_only_after_validation(detail):
                continue  # its items failed, and each is reported where it is
            error = detail.get("ctx", {}).get("error")
            if not detail["loc"] and isinstance(error, CrossReferenceError):
                problems += [
                    self.problem(
                        _parse_key_path(problem.key_path),
                        problem.message,
                        value=problem.value,
                        allowed=problem.allowed,
                    )
                    for problem in error.problems
                ]
                continue
            path, exact = self.clean(detail["loc"])
            if not exact:
                unions.setdefault(path, []).append(_message(detail))
                continue
            problems.append(self.from_detail(path, detail))
        for path, messages in unions.items():
            forms = list(dict.fromkeys(_form(message) for message in messages))
            problems.append(
                self.problem(
                    path,
                    "is none of the accepted forms",
                    value=_lookup(self.document, path)[1],
                    allowed=" | ".join(forms),
                )
            )
        unique = {str(problem): problem for problem in problems}
        return sorted(
            unique.values(),
            key=lambda p: (p.file or "", p.line or 0, p.key_path or "", p.message),
        )

    def clean(self, loc: Sequence[str | int]) -> tuple[KeyPath, bool]:
        """Keep the parts of ``loc`` that are keys of the document (drop union tags)."""
        value: Any = self.document
        path: list[str | int] = []
        exact = True
        for index, part in enumerate(loc):
            found, child = _child(value, part)
            if found:
                value = child
            elif index == len(loc) - 1 and isinstance(value, Mapping) and isinstance(part, str):
                value = None  # a missing field or a key pydantic names
            elif part == "[key]":
                continue
            else:
                exact = False
                continue
            path.append(part)
        return tuple(path), exact

    def from_detail(self, path: KeyPath, detail: ErrorDetails) -> ConfigProblem:
        kind = detail["type"]
        if kind == "missing":
            hint = _fields_hint(self.root, path[:-1])
            return self.problem(path, "required key is missing", allowed=hint)
        if kind == "extra_forbidden":
            known = _field_names(self.root, path[:-1])
            close = difflib.get_close_matches(str(path[-1]), known, n=1)
            hint = f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"
            return self.problem(path, hint, allowed=_fields_hint(self.root, path[:-1]))
        message = _message(detail)
        root_path = _PATH_PREFIX.match(message) if not path else None
        own_field = _FIELD_PREFIX.match(message) if not path else None
        if own_field is not None and own_field[1] in self.root.model_fields:
            root_path = own_field  # a whole-document check naming one of its fields
        if root_path is not None:  # a whole-document check that names its own path
            path, message = _parse_key_path(root_path[1]), root_path[2]
        message, _, allowed = message.partition("; allowed: ")
        value = detail.get("input")
        echo = not (
            isinstance(value, Mapping | list)  # the whole sub-document: the path says which
            or kind.startswith(("model_", "dataclass_"))
            or (value is not None and repr(value) in message)  # the message shows it
        )
        return self.problem(path, message, value=value, allowed=allowed or None, echo=echo)

    def problem(
        self,
        path: KeyPath,
        message: str,
        *,
        value: object = None,
        allowed: str | None = None,
        echo: bool = True,
    ) -> ConfigProblem:
        file, line = self.origin(path)
        if is_secret_path(path):
            # Model messages may quote the value themselves: scrub it there too.
            if isinstance(value, str) and value:
                message = message.replace(repr(value), "<redacted>").replace(value, "<redacted>")
                if allowed:
                    allowed = allowed.replace(value, "<redacted>")
            echo = False
        if not echo:
            value = None
        return ConfigProblem(
            message,
            file=file,
            key_path=format_key_path(path) or None,
            value=value,
            allowed=allowed,
            line=line,
        )

    def origin(self, path: KeyPath) -> tuple[str | None, int | None]:
        """The file that supplied the value at ``path`` (the last one setting it), and line."""
        if self.resolved is None:
            return self.source, None
        prefix = path
        while prefix and not _lookup(self.document, prefix)[0]:
            prefix = prefix[:-1]
        chain = self.resolved.chain
        for parsed in reversed(chain):
            if prefix and _lookup(parsed.data, prefix)[0]:
                return parsed.display, _line(parsed, prefix)
        return chain[-1].display, None


def _line(parsed: ParsedFile, path: KeyPath) -> int | None:
    while path:
        if path in parsed.lines:
            return parsed.lines[path]
        path = path[:-1]
    return None


def _short_only_after_validation(detail: ErrorDetails) -> bool:
    """Whether a collection is "too short" only because some of its items failed.

    pydantic checks ``min_length`` on the items that validated, so one bad item of a
    one-item list also reads as an empty list; the item's own error says what is wrong.
    """
    given, needed = detail.get("input"), detail.get("ctx", {}).get("min_length")
    return (
        detail["type"] == "too_short"
        and isinstance(given, Sequence | Mapping)
        and isinstance(needed, int)
        and len(given) >= needed
    )


def _message(detail: ErrorDetails) -> str:
    return _VALUE_ERROR.sub("", detail["msg"])


def _form(message: str) -> str:
    """What one member of a union accepts, from its error message."""
    _, found, allowed = message.partition("; allowed: ")
    if found:
        return allowed
    if message.startswith("Input should be "):
        return message.removeprefix("Input should be ").split(", ")[0]
    return message


def _parse_key_path(text: str) -> KeyPath:
    return tuple(int(part) if part.isdigit() else part for part in text.split("."))


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            nested = [arg for arg in members if _is_model(arg) or get_origin(arg) is not None]
            if not nested:
                return annotation
            annotation = nested[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_at(root: type[BaseModel], path: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``path`` of a ``root`` document."""
    annotation: Any = root
    for part in path:
        annotation = _unwrap(annotation)
        origin = get_origin(annotation)
        if _is_model(annotation):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            annotation = field.annotation
        elif origin in (Mapping, dict) or (
            isinstance(origin, type) and issubclass(origin, Mapping)
        ):
            annotation = get_args(annotation)[1]
        elif origin is tuple:
            annotation = get_args(annotation)[0]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if _is_model(annotation) else None


def _field_names(root: type[BaseModel], path: KeyPath) -> list[str]:
    model = _model_at(root, path)
    if model is None:
        return []
    # `name` comes from the key in collections, and from the file name at the root;
    # `project` from unkai.toml.
    hidden = (
        ({"name", "project"} if len(path) == 0 else {"name"})
        if root is Environment and len(path) in (0, 2)
        else set()
    )
    return [name for name in model.model_fields if name not in hidden]


def _fields_hint(root: type[BaseModel], path: KeyPath) -> str | None:
    names = _field_names(root, path)
    if not names:
        return None
    keys = [*LOADER_KEYS, *names] if root is Environment and path == () else names
    return f"one of {', '.join(keys)}"


def explain_validation_error(
    err: ValidationError, *, document: Mapping[str, Any], root: type[BaseModel], headline: str
) -> ConfigError:
    """The problems of ``document`` that ``root`` refused, as one :class:`ConfigError`.

    The same explainer as for environment files, for documents that come from no file
    (a resource's inputs): one key-path format (``disks.0.size_gb``), did-you-mean for
    unknown keys, allowed values, secrets never echoed.

    Args:
        err: What ``root.model_validate(document)`` raised.
        document: The document validated.
        root: The model class that validated it.
        headline: What was validated, for several problems at once.

    Returns:
        One :class:`ConfigProblem`, or :class:`ConfigProblems` listing several.
    """
    problems = _Explainer(document, root).explain(err)
    if len(problems) == 1:
        return problems[0]
    return ConfigProblems(headline, problems)
