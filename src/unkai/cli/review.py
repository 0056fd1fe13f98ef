"""``unkai review --base <ref> [env…]``: what a pull request does to each environment.

The head is the working tree (the pull request's checkout), the base a Git ref (its
target branch). Each environment is loaded, placed and rendered on both sides; the ones
the change touches — their resolved values, or any artifact they render — are then
previewed against their stack with their policies, as ``unkai preview`` would. The
report goes to standard output (Markdown, or ``--json``); progress and the engine's
notes go to standard error, so ``unkai review --base origin/main > review.md`` is a
pull-request comment.

Exit status: 0 nothing changes, 3 changes that pass, 4 the change fails (a mandatory
policy, or an environment that does not load, place or render); 1 and 2 stay unkai's
own errors.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from unkai.cli._workspace import Root, resolve_root
from unkai.environments import list_environments, load_environment
from unkai.errors import ConfigError, UnkaiError
from unkai.model import Environment
from unkai.placement import CapacityReport, capacity_report, place
from unkai.render import Templates, render_tree
from unkai.review import (
    EnvironmentReview,
    PolicyResult,
    ResourceChange,
    Review,
    base_checkout,
    capacity_changes,
    environment_changes,
    file_changes,
    head_label,
    markdown,
)

progress = Console(stderr=True, soft_wrap=True, highlight=False)


@dataclass
class _Side:
    """One environment on one side of the change."""

    env: Environment | None = None
    tree: dict[PurePosixPath, str] | None = None
    capacity: CapacityReport | None = None
    error: str | None = None


def _side(name: str, root: Path, names: set[str], accelerator: str) -> _Side:
    """The environment ``name`` of the project at ``root``: loaded, rendered, placed."""
    if name not in names:
        return _Side()
    try:
        env = load_environment(name, root=root)
    except UnkaiError as err:
        return _Side(error=f"does not load: {err}")
    side = _Side(env=env)
    if not env.hosts:
        return side  # only extended by others: nothing renders or deploys it
    try:
        side.capacity = capacity_report(env, place(env))
        kind: Literal["kvm", "tcg"] = "kvm" if accelerator == "kvm" else "tcg"
        side.tree = render_tree(env, accelerator=kind, templates=Templates(root))
    except UnkaiError as err:
        side.error = f"does not place or render: {err}"
    return side


def compare(
    name: str, base: _Side, head: _Side, *, in_base: bool, in_head: bool
) -> EnvironmentReview | None:
    """What the change does to ``name`` without the engine; None when it does nothing."""
    status: Literal["added", "removed", "changed"] = (
        "changed" if in_base and in_head else "added" if in_head else "removed"
    )
    review = EnvironmentReview(
        name=name,
        status=status,
        environment=environment_changes(base.env, head.env),
        artifacts=file_changes(base.tree, head.tree),
        capacity=capacity_changes(base.capacity, head.capacity),
    )
    touched = (
        status != "changed" or review.environment or review.artifacts or base.error != head.error
    )
    if not touched:
        return None
    if base.error and not head.error:
        # An environment this unkai refuses at the base (a version it no longer builds):
        # the change that fixes it is shown from the head's side alone.
        review.notes.append(
            f"At the base, {name} {base.error}. Only the working tree's side is shown."
        )
    if head.error:
        review.problems.append(f"{name} {head.error}")
    elif status == "removed":
        review.notes.append(
            f"The file of {name} is removed; its stack keeps what it deployed until"
            f" `unkai destroy {name}`."
        )
    elif head.env is not None and not head.env.hosts:
        review.notes.append(
            f"{name} declares no hosts: it is only extended by other environments, which"
            " are reviewed on their own."
        )
    return review


def _preview(name: str, root: Path, review: EnvironmentReview) -> None:
    """Preview ``name``'s head against its stack with its policies, into ``review``."""
    from pulumi import automation as auto

    from unkai.cli.app import _engine_error
    from unkai.cli.cloud import cloud_stack, policy_packs
    from unkai.cli.drift import LAYERS, step_changes
    from unkai.provider import parse_replace_reason

    try:
        policies = policy_packs(None, name, root)
        stack = cloud_stack(name, root)
    except UnkaiError as err:
        # A host that does not answer, a stack locked by a running update: the change
        # may be fine, but this review cannot tell. --no-preview reviews without it.
        review.problems.append(f"{name} could not be previewed against its stack: {err}")
        return
    steps: list[auto.StepEventMetadata] = []
    reasons: dict[str, list[str]] = {}

    def on_event(event: auto.EngineEvent) -> None:
        if event.resource_pre_event is not None:
            steps.append(event.resource_pre_event.metadata)
        diagnostic = event.diagnostic_event
        found = parse_replace_reason(diagnostic.message) if diagnostic is not None else None
        if diagnostic is not None and found is not None:
            why = reasons.setdefault((diagnostic.urn or "").rsplit("::", 1)[-1], [])
            if f"{found[0]}: {found[1]}" not in why:
                why.append(f"{found[0]}: {found[1]}")
        policy = event.policy_event
        if policy is not None:
            result = PolicyResult(
                pack=policy.policy_pack_name,
                policy=policy.policy_name,
                level=policy.enforcement_level.lower(),
                resource=(policy.resource_urn or "(the stack)").rsplit("::", 1)[-1],
                message=policy.message.strip(),
            )
            if result not in review.policies:
                review.policies.append(result)

    try:
        stack.preview(on_event=on_event, diff=True, **policies.engine_options())
    except auto.errors.CommandError as err:
        if not any(p.level == "mandatory" for p in review.policies):
            review.problems.append(f"the preview of {name} failed: {_engine_error(err)}")
    order = list(dict.fromkeys(LAYERS.values()))
    changes = sorted(
        step_changes(steps, inputs_only=True).values(),
        key=lambda c: (order.index(c.layer), c.resource),
    )
    review.resources = [
        ResourceChange(
            layer=change.layer,
            resource=change.resource,
            type=change.type,
            op="migrate" if change.op == "update" and "host" in change.properties else change.op,
            properties={
                prop: {"before": values["live"], "after": values["declared"]}
                for prop, values in change.properties.items()
            },
            reasons=reasons.get(change.resource, []),
        )
        for change in changes
    ]


def review(
    base: Annotated[
        str,
        typer.Option(
            "--base", help="The Git ref the working tree is compared with (e.g. origin/main)."
        ),
    ],
    envs: Annotated[
        list[str] | None,
        typer.Argument(help="Environments to review (default: every one the change touches)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview/--no-preview",
            help="Preview each touched environment against its stack (the default).",
        ),
    ] = True,
    chart: Annotated[
        Path | None,
        typer.Option("--chart", help="Also draw each touched host's capacity to this PNG."),
    ] = None,
    root: Root = None,
) -> None:
    """Report what the working tree changes against BASE, per environment, for a pull request.

    Exit status: 0 nothing changes, 3 changes, 4 the change fails (a mandatory policy,
    or an environment that does not load, place or render).
    """
    from unkai.toolchain import cached_probe

    project = resolve_root(root)
    accelerator = cached_probe().accelerator
    say: Callable[[str], None] = lambda line: progress.print(escape(line))  # noqa: E731
    with base_checkout(project, base) as checkout, contextlib.redirect_stdout(sys.stderr):
        # Everything below prints progress; the report alone goes to standard output.
        in_head = set(list_environments(project))
        in_base = set(list_environments(checkout.root)) if checkout.root.is_dir() else set()
        names = list(envs) if envs else sorted(in_head | in_base)
        found: list[EnvironmentReview] = []
        unchanged: list[str] = []
        for name in names:
            if name not in in_head | in_base:
                raise ConfigError(
                    f"no environment {name!r} in the working tree or at {base}",
                    allowed=", ".join(sorted(in_head | in_base)),
                )
            say(f"review {name}: comparing {checkout.label} with the working tree")
            before = _side(name, checkout.root, in_base, accelerator)
            after = _side(name, project, in_head, accelerator)
            result = compare(name, before, after, in_base=name in in_base, in_head=name in in_head)
            if result is None:
                unchanged.append(name)
                continue
            found.append(result)
            deployable = after.env is not None and after.env.hosts and result.status != "removed"
            if result.problems or not deployable:
                continue
            if preview:
                say(f"review {name}: previewing against its stack, with its policies")
                _preview(name, project, result)
            else:
                result.notes.append("Not previewed against its stack (--no-preview).")
        report = Review(
            base=checkout.label, head=head_label(project), environments=found, unchanged=unchanged
        )
    if chart is not None:
        from unkai.cli._plan_chart import draw_capacity_change

        draw_capacity_change(report, chart)
        say(f"chart: {chart}")
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        typer.echo(markdown(report), nl=False)
    raise typer.Exit(report.exit_code)
