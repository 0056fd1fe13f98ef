"""``unkai init``: a new cloud repository from the scaffold unkai ships."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import re
import string
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from unkai.errors import ConfigError
from unkai.toolchain import find_project

console = Console(highlight=False)

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
_TEMPLATE_SUFFIX = ".tmpl"
# Files a package would lose or a tool would read as its own: stored under another name.
# Pipelines live in folders of their own: ``ci/`` holds them, and they are written where
# GitHub Actions and GitLab CI look.
_RENAMED = {
    "gitignore": ".gitignore",
    "ci/github-review.yml": ".github/workflows/unkai-review.yml",
    "ci/gitlab-ci.yml": ".gitlab-ci.yml",
}


def _version() -> str:
    """The version of unkai that makes the project: what its pipelines install."""
    return importlib.metadata.version("unkai")


def scaffold_files(name: str, *, python: bool = False) -> dict[Path, str]:
    """The files of a new project called ``name``: relative path → text; pure.

    ``*.tmpl`` files of ``unkai/scaffold/project`` get the name and unkai's version filled
    in (``${name}``, ``${version}``; ``$$`` is a ``$``); every other file is copied as it
    is (the project's own Jinja templates among them). A file of ``_RENAMED`` is written
    under its other name (the pipelines where GitHub and GitLab look for them).
    With ``python``, the environments are ``cloud.py`` (``unkai/scaffold/python``, laid
    over the project's files) instead of ``environments/*.yaml``.
    """
    scaffold = Path(str(importlib.resources.files("unkai"))) / "scaffold"
    files = _files(scaffold / "project", name)
    if python:
        files = {p: t for p, t in files.items() if p.parts[0] != "environments"}
        files.update(_files(scaffold / "python", name))
    return dict(sorted(files.items()))


def _files(source: Path, name: str) -> dict[Path, str]:
    files: dict[Path, str] = {}
    for path in sorted(source.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(source)
        text = path.read_text(encoding="utf-8")
        if relative.suffix == _TEMPLATE_SUFFIX:
            relative = relative.with_suffix("")
            text = string.Template(text).substitute(name=name, version=_version())
        relative = Path(_RENAMED.get(relative.as_posix(), relative.as_posix()))
        files[relative] = text
    return files


def init(
    directory: Annotated[Path, typer.Argument(help="Folder of the new project (new or empty).")],
    name: Annotated[
        str | None,
        typer.Option("--name", help="The project's name (default: the folder's name)."),
    ] = None,
    python: Annotated[
        bool,
        typer.Option(
            "--python", help="Declare the environments in Python (cloud.py), not YAML files."
        ),
    ] = False,
) -> None:
    """Make a new cloud repository: environments, templates, playbooks and its program.

    The project deploys on this machine as it is (``unkai up local`` inside it), with
    its own Dockerfile template and image playbook; every command run inside it finds it.
    """
    target = directory.resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(
            f"{target} is not an empty folder: unkai init makes a project in a new or empty"
            " folder and never overwrites files"
        )
    chosen = name or target.name
    if not _NAME.match(chosen):
        raise ConfigError(
            "not a project name", key_path="--name", value=chosen,
            allowed="2-40 lowercase letters, digits and dashes, starting with a letter",
        )  # fmt: skip
    try:
        outer = find_project(target.parent)
    except ConfigError:
        outer = None
    files = scaffold_files(chosen, python=python)
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    console.print(f"[green]made[/] project [bold]{escape(chosen)}[/] in {escape(str(target))}:")
    for relative in files:
        console.print(f"  {escape(str(relative))}")
    if outer is not None:
        console.print(
            f"[yellow]note:[/] it is inside the project {escape(outer.name)} at"
            f" {escape(str(outer.root))}; commands run in it use the new project"
        )
    console.print(
        f"next: cd {escape(str(directory))} && unkai plan local && unkai up local;"
        " under Git, `unkai review --base main` tells what a branch changes (its pipelines"
        " for GitHub and GitLab are written)"
    )
