"""Replicating an environment: the plan of ``unkai env new <name> --from <env>``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unkai.environments._errors import ConfigProblem
from unkai.environments._loader import (
    ENVIRONMENTS_DIR,
    NAME_RULE,
    environment_file,
    is_environment_name,
    load_environment,
)
from unkai.environments._python import PROJECT_FILE, SOURCE_KEY, python_source

__all__ = ["NewEnvironment", "plan_new_environment"]


@dataclass(frozen=True)
class NewEnvironment:
    """A new environment file to write: where, and what.

    Attributes:
        path: The file to create (``root/environments/<name>.yaml``).
        display: The same path relative to the project root, for messages.
        text: Its whole content: a comment and ``extends: <source>``.
    """

    path: Path
    display: str
    text: str


def plan_new_environment(name: str, *, source: str, root: Path) -> NewEnvironment:
    """Check that ``name`` can be made as a replica of ``source``, and say what to write.

    Nothing is written: the caller creates :attr:`NewEnvironment.path` exclusively
    (refusing to overwrite) with :attr:`NewEnvironment.text`. Reads the files of
    ``source`` to validate it; no other side effect.

    Args:
        name: The new environment's name (a DNS label).
        source: The environment it extends; it must load without error.
        root: The project root.

    Returns:
        The plan.

    Raises:
        ConfigError: ``name`` is not a DNS label or is already defined, or ``source``
            is unknown or invalid.
    """
    if not is_environment_name(name):
        raise ConfigProblem("not an environment name", value=name, allowed=NAME_RULE)
    python = python_source(root)
    if python is not None:
        raise ConfigProblem(
            f"this project declares its environments in Python ({python}); a new one is"
            f" added there, not as a file",
            file=PROJECT_FILE,
            key_path=SOURCE_KEY,
        )
    path = environment_file(name, root=root)
    display = f"{ENVIRONMENTS_DIR}/{name}.yaml"
    if path.exists():
        raise ConfigProblem(
            f"environment {name!r} already exists",
            file=display,
            allowed="a name not yet used; edit the existing file to change it",
        )
    load_environment(source, root=root)
    text = (
        f"# {name}: a replica of {source} (made by `unkai env new {name} --from {source}`).\n"
        f"# Add only what differs from {source}: mappings merge key by key, lists are\n"
        f"# replaced whole, and null removes a key. `unkai env diff {source} {name}` shows\n"
        "# the result.\n"
        f"extends: {source}\n"
    )
    return NewEnvironment(path=path, display=display, text=text)
