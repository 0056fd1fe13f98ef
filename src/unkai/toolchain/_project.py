"""Which unkai project a command works on: the folder holding ``unkai.toml``.

A project is a cloud repository: ``environments/``, optional ``templates/`` and
``playbooks/`` that override unkai's built-ins, and the Pulumi program that deploys it.
Every command finds it the way git finds a repository, from the current directory
upward, unless ``--root`` names it. ``unkai init`` writes a new one; unkai's own checkout
is one too (its program is ``stacks/cloud``).

Example ``unkai.toml``::

    [project]
    name = "acme"
    program = "."        # the folder of the Pulumi program (Pulumi.yaml), from the root
    # environments = "cloud:environments"   # optional: declared in Python, not YAML

``environments`` (see :mod:`unkai.environments`) names a function of the project's own
Python that returns its environments; without it they are ``environments/*.yaml``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from unkai.errors import ConfigError

PROJECT_FILE = "unkai.toml"
"""The file that marks a project's root."""


@dataclass(frozen=True)
class Project:
    """An unkai project.

    Attributes:
        root: Its folder (holds ``unkai.toml`` and ``environments/``).
        name: Its name (``[project] name``).
        program: The folder of its Pulumi program (``Pulumi.yaml`` and ``__main__.py``);
            checked by the commands that run it.
    """

    root: Path
    name: str
    program: Path


def load_project(root: Path) -> Project:
    """The project whose ``unkai.toml`` is in ``root``.

    Raises:
        ConfigError: The file is missing, is not TOML, or its keys are wrong (names the
            key and what is allowed).
    """
    path = root / PROJECT_FILE
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError as err:
        raise ConfigError(
            f"{root} is not an unkai project: it has no {PROJECT_FILE}. Run `unkai init"
            f" {root}` to make one there"
        ) from err
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read it: {err}", file=str(path)) from err
    table = document.get("project")
    if not isinstance(table, dict):
        raise ConfigError("missing [project] table", file=str(path), key_path="project")
    unknown = sorted(set(table) - {"name", "program", "environments"})
    if unknown:
        raise ConfigError(
            "unknown key", file=str(path), key_path=f"project.{unknown[0]}",
            allowed="name, program, environments",
        )  # fmt: skip
    name, program = table.get("name"), table.get("program", ".")
    if not isinstance(name, str) or not name:
        raise ConfigError("must be a non-empty string", file=str(path), key_path="project.name")
    if not isinstance(program, str) or Path(program).is_absolute() or ".." in Path(program).parts:
        raise ConfigError(
            "must be a folder inside the project", file=str(path), key_path="project.program",
            value=program, allowed="a relative path such as . or stacks/cloud",
        )  # fmt: skip
    return Project(root=root.resolve(), name=name, program=(root / program).resolve())


def find_project(start: Path | None = None) -> Project:
    """The project around ``start`` (default: the current directory), searching upward.

    Raises:
        ConfigError: No folder from ``start`` up to ``/`` holds ``unkai.toml``; names the
            folders searched and how to make or name a project.
    """
    here = (start or Path.cwd()).resolve()
    searched = [here, *here.parents]
    for folder in searched:
        if (folder / PROJECT_FILE).is_file():
            return load_project(folder)
    shown = ", ".join(str(f) for f in searched[:4]) + (" and up" if len(searched) > 4 else "")
    raise ConfigError(
        f"no unkai project here: no {PROJECT_FILE} in {shown}. Run the command inside a"
        " project, pass --root <project>, or make one with `unkai init <dir>`"
    )
