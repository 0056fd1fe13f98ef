"""Promoting values from one environment to another: ``unkai env promote <from> <to>``.

What was tried in ``staging`` (its images, say) goes to ``prod`` as a change to
``environments/prod.yaml`` that a reviewer reads in Git: each chosen key of ``prod``'s file
is set to ``staging``'s resolved value of that key, everything else of the file (other
keys, comments, order) stays as it was. The result is checked like a load before anything
is written; the plan carries the new text and what it changes in ``prod``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from unkai.environments._diff import Change, diff_environments
from unkai.environments._errors import ConfigProblem
from unkai.environments._loader import (
    ENVIRONMENTS_DIR,
    environment_file,
    load_environment,
    load_with_own_file,
    resolve_document,
)
from unkai.environments._python import PROJECT_FILE, SOURCE_KEY, python_source

__all__ = ["PROMOTABLE", "PROMOTED_BY_DEFAULT", "Promotion", "plan_promotion"]

PROMOTABLE = (
    "clusters",
    "container_images",
    "instance_groups",
    "instance_templates",
    "instances",
    "networks",
    "settings",
    "vm_images",
    "workloads",
)
"""The keys a promotion may carry: what a change is tried with, not where it runs (hosts,
zones and host pools belong to each environment)."""

PROMOTED_BY_DEFAULT = ("container_images", "vm_images")
"""What ``promote`` carries without ``--only``: the artifacts."""


@dataclass(frozen=True)
class Promotion:
    """What promoting writes.

    Attributes:
        path: The target's own file.
        display: The same, relative to the project root.
        text: Its new content.
        changes: What changes in the target environment (resolved, before → after); empty
            when the target already has the source's values.
    """

    path: Path
    display: str
    text: str
    changes: tuple[Change, ...]


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, order and quoting of the file are kept
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def plan_promotion(
    source: str, target: str, *, root: Path, only: Sequence[str] = PROMOTED_BY_DEFAULT
) -> Promotion:
    """Check that ``source``'s values of ``only`` can go to ``target``, and say what to write.

    Nothing is written: the caller replaces :attr:`Promotion.path` with
    :attr:`Promotion.text`. Reads the files of both environments.

    Raises:
        ConfigError: The project declares its environments in Python, the environments
            are one, a key is not promotable, either environment is unknown or invalid,
            or the target would be invalid with the new values (nothing is written).
    """
    python = python_source(root)
    if python is not None:
        raise ConfigProblem(
            f"this project declares its environments in Python ({python}); promote a value"
            " there, in the code",
            file=PROJECT_FILE, key_path=SOURCE_KEY,
        )  # fmt: skip
    if source == target:
        raise ConfigProblem(
            "an environment is promoted to another", value=target, allowed=f"not {source}"
        )
    unknown = [key for key in only if key not in PROMOTABLE]
    if unknown or not only:
        raise ConfigProblem(
            "cannot be promoted" if unknown else "nothing to promote", key_path="--only",
            value=",".join(unknown) or None, allowed=f"some of {', '.join(PROMOTABLE)}",
        )  # fmt: skip
    before = load_environment(target, root=root)
    load_environment(source, root=root)  # the source must be valid itself
    values = resolve_document(source, root=root)
    path = environment_file(target, root=root)
    yaml = _yaml()
    data: Any = yaml.load(path.read_text(encoding="utf-8")) or {}
    for key in only:
        if key in values:  # a key no file of the source sets is left as the target has it
            data[key] = values[key]
    out = io.StringIO()
    yaml.dump(data, out)
    text = out.getvalue()
    plain = YAML(typ="safe").load(text) or {}
    after = load_with_own_file(target, root=root, own=plain)
    return Promotion(
        path=path,
        display=f"{ENVIRONMENTS_DIR}/{target}.yaml",
        text=text,
        changes=tuple(diff_environments(before, after)),
    )
