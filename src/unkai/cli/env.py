"""``unkai env``: show, compare and replicate the environments of a project.

Thin: loading, merging, diffing and checking a new environment live in
:mod:`unkai.environments`; this module only formats and writes. Errors are
:class:`~unkai.errors.ConfigError` and become ``error: ...`` with exit status 2 in
:func:`unkai.cli.app.main`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from unkai.cli._workspace import Root, resolve_root
from unkai.environments import (
    PROMOTABLE,
    PROMOTED_BY_DEFAULT,
    Change,
    compact,
    diff_environments,
    format_key_path,
    load_environment,
    plan_new_environment,
    plan_promotion,
)
from unkai.errors import ConfigError

env_app = typer.Typer(
    name="env",
    help="Show, compare and replicate environments (environments/<name>.yaml).",
    no_args_is_help=True,
)

_Root = Root
_STYLE = {"add": "green", "remove": "red", "change": "yellow"}
_SYMBOL = {"add": "+", "remove": "-", "change": "~"}


def _root(root: Path | None) -> Path:
    return resolve_root(root)


def _document(name: str, root: Path | None) -> dict[str, Any]:
    return load_environment(name, root=_root(root)).model_dump(mode="json")


@env_app.command("show")
def show(
    env: Annotated[str, typer.Argument(help="Environment name, such as local or prod.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
    root: _Root = None,
) -> None:
    """Print the fully resolved environment (defaults filled in, secrets as references)."""
    document = _document(env, root)
    if as_json:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        typer.echo(
            yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100),
            nl=False,
        )


@env_app.command("diff")
def diff(
    a: Annotated[str, typer.Argument(help="The environment compared from.")],
    b: Annotated[str, typer.Argument(help="The environment compared to.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of {path, op, old, new}.")
    ] = False,
    root: _Root = None,
) -> None:
    """Show what differs between two resolved environments: added, removed, changed."""
    base = _root(root)
    changes = diff_environments(load_environment(a, root=base), load_environment(b, root=base))
    if as_json:
        typer.echo(json.dumps([c.to_json() for c in changes], indent=2, ensure_ascii=False))
        return
    console = Console()
    if not changes:
        console.print(f"{escape(a)} and {escape(b)} do not differ", highlight=False)
        return
    console.print(_tree(a, b, changes), highlight=False)
    counts = {op: sum(1 for c in changes if c.op == op) for op in ("add", "remove", "change")}
    console.print(
        f"{len(changes)} differences: [green]{counts['add']} added[/], "
        f"[red]{counts['remove']} removed[/], [yellow]{counts['change']} changed[/]",
        highlight=False,
    )


def _tree(a: str, b: str, changes: list[Change]) -> Tree:
    root = Tree(f"[bold]{escape(a)} → {escape(b)}[/]")
    branches: dict[tuple[str | int, ...], Tree] = {(): root}
    for change in changes:
        parent = root
        for depth in range(1, len(change.path)):
            prefix = change.path[:depth]
            if prefix not in branches:
                label = escape(format_key_path(prefix[-1:]))
                branches[prefix] = parent.add(label)
            parent = branches[prefix]
        _leaf(parent, change)
    return root


def _leaf(parent: Tree, change: Change) -> None:
    style, symbol = _STYLE[change.op], _SYMBOL[change.op]
    key = escape(format_key_path(change.path[-1:])) if change.path else "(document)"
    if change.op == "change":
        text = f"{escape(compact(change.old))} → {escape(compact(change.new))}"
        parent.add(f"[{style}]{symbol} {key}: {text}[/]")
        return
    value = change.new if change.op == "add" else change.old
    if isinstance(value, Mapping) and value:
        # A named value's name is its key, shown already.
        shown = {k: v for k, v in value.items() if not (k == "name" and v == change.path[-1])}
        _expand(parent.add(f"[{style}]{symbol} {key}[/]"), shown, style)
    else:
        parent.add(f"[{style}]{symbol} {key}: {escape(compact(value))}[/]")


def _expand(node: Tree, value: Mapping[str, Any], style: str) -> None:
    for key, item in value.items():
        label = escape(format_key_path((key,)))
        if isinstance(item, Mapping) and item:
            _expand(node.add(f"[{style}]{label}[/]"), item, style)
        else:
            node.add(f"[{style}]{label}: {escape(compact(item))}[/]")


@env_app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="Name of the new environment (a DNS label).")],
    source: Annotated[str, typer.Option("--from", help="The environment it replicates.")],
    root: _Root = None,
) -> None:
    """Create environments/<name>.yaml extending <source>; never overwrites a file."""
    plan = plan_new_environment(name, source=source, root=_root(root))
    try:
        # Exclusive create: a file made since the check is not overwritten either.
        with plan.path.open("x", encoding="utf-8") as handle:
            handle.write(plan.text)
    except FileExistsError as err:
        raise ConfigError(f"environment {name!r} already exists", file=plan.display) from err
    typer.echo(f"created {plan.display} (extends {source})")


@env_app.command("promote")
def promote(
    source: Annotated[str, typer.Argument(help="The environment the values come from.")],
    target: Annotated[str, typer.Argument(help="The environment whose file gets them.")],
    only: Annotated[
        str,
        typer.Option(
            "--only",
            help=f"Comma-separated keys to promote, some of {', '.join(PROMOTABLE)}.",
        ),
    ] = ",".join(PROMOTED_BY_DEFAULT),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    root: _Root = None,
) -> None:
    """Set <target>'s file to <source>'s values of some keys (a change to review in Git).

    Each key of --only (default: the images) in environments/<target>.yaml becomes
    <source>'s resolved value; the file's other keys and comments stay. The new target is
    checked before the file is written; what changes in it is shown like `env diff`.
    """
    keys = [key.strip() for key in only.split(",") if key.strip()]
    plan = plan_promotion(source, target, root=_root(root), only=keys)
    console = Console()
    if not plan.changes:
        console.print(f"{escape(target)} already has {escape(source)}'s {', '.join(keys)}")
        return
    console.print(_tree(target, f"{target} with {source}'s {', '.join(keys)}", list(plan.changes)))
    if dry_run:
        console.print(f"{len(plan.changes)} changes; --dry-run: {escape(plan.display)} unchanged")
        return
    plan.path.write_text(plan.text, encoding="utf-8")
    console.print(f"{len(plan.changes)} changes; wrote {escape(plan.display)}", highlight=False)
