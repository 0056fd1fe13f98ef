"""What a change does to each environment, and the report of it: pure data and text.

:mod:`unkai.cli.review` gathers the pieces — both sides loaded and rendered, the preview
against the stack, the policies' verdicts — and this module compares and writes them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

from unkai.environments import compact, diff_environments, is_secret_path
from unkai.model import Environment
from unkai.placement import CapacityReport
from unkai.render import INDEX_FILE

__all__ = [
    "EXIT_CODES",
    "EnvironmentReview",
    "FileChange",
    "HostCapacity",
    "PolicyResult",
    "ResourceChange",
    "Review",
    "capacity_changes",
    "environment_changes",
    "file_changes",
    "markdown",
]

Outcome = Literal["no change", "changes", "failed"]

EXIT_CODES: Mapping[Outcome, int] = {"no change": 0, "changes": 3, "failed": 4}
"""``unkai review``'s exit status for each outcome (1 and 2 stay unkai's errors)."""

HIDDEN = "(hidden: a secret's key)"
"""What an environment change under a secret-looking key shows instead of its values."""

MAX_DIFF_LINES = 120
"""The lines of one file's diff the report shows; the rest is counted."""

MAX_REPORT_CHARS = 60_000
"""A pull-request comment's room (GitHub takes 65,536): artifact diffs are cut to fit."""

_BAR = 20


@dataclass(frozen=True)
class FileChange:
    """One rendered artifact that the change adds, removes or changes.

    Attributes:
        path: Its path in ``unkai render``'s output.
        op: ``add``, ``remove`` or ``change``.
        diff: The unified diff (base → head), at most :data:`MAX_DIFF_LINES` lines.
    """

    path: str
    op: Literal["add", "remove", "change"]
    diff: str


@dataclass(frozen=True)
class ResourceChange:
    """What ``up`` would do to one resource of the environment's stack.

    Attributes:
        layer: hosts, networks, images, vms, kubernetes or files.
        resource: Its name.
        type: Its type token.
        op: ``create``, ``update``, ``replace``, ``migrate`` (an instance moving host,
            live) or ``delete``.
        properties: Each property that changes → ``{"before", "after"}`` (values only
            when short and not secret).
        reasons: For a replacement, why: ``property: reason`` each.
    """

    layer: str
    resource: str
    type: str
    op: str
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HostCapacity:
    """One host's allocation before and after: ``[used, schedulable]`` per resource.

    ``before`` or ``after`` is None where the host is not in that side's environment.
    """

    host: str
    zone: str
    before: dict[str, list[int]] | None
    after: dict[str, list[int]] | None

    @property
    def changed(self) -> bool:
        """Whether anything about the host differs."""
        return self.before != self.after


@dataclass(frozen=True)
class PolicyResult:
    """One policy violation the engine reported in the preview."""

    pack: str
    policy: str
    level: str
    resource: str
    message: str


@dataclass
class EnvironmentReview:
    """Everything the change does to one environment.

    Attributes:
        name: The environment.
        status: ``added``, ``removed`` or ``changed`` (by the change under review).
        environment: The environment's resolved values that change, as
            ``{"path", "op", "old", "new"}`` (values under a secret's key hidden).
        artifacts: The rendered artifacts that change.
        resources: The preview against the environment's stack; None when there was
            none (see ``notes``).
        capacity: Each host's allocation before and after.
        policies: The policy violations of the preview.
        problems: What makes the change fail besides a mandatory policy: the head's
            environment does not load, place or render; its preview failed.
        notes: What the reader should know (why there was no preview).
    """

    name: str
    status: Literal["added", "removed", "changed"]
    environment: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[FileChange] = field(default_factory=list)
    resources: list[ResourceChange] | None = None
    capacity: list[HostCapacity] = field(default_factory=list)
    policies: list[PolicyResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether the change may not go in as it is for this environment."""
        return bool(self.problems) or any(p.level == "mandatory" for p in self.policies)

    def counts(self) -> dict[str, int]:
        """How many resources each operation touches."""
        found: dict[str, int] = {}
        for change in self.resources or []:
            found[change.op] = found.get(change.op, 0) + 1
        return found


@dataclass
class Review:
    """The whole review: base and head, each environment the change touches."""

    base: str
    head: str
    environments: list[EnvironmentReview]
    unchanged: list[str]

    @property
    def outcome(self) -> Outcome:
        """``failed``, ``changes`` or ``no change``."""
        if any(env.failed for env in self.environments):
            return "failed"
        return "changes" if self.environments else "no change"

    @property
    def exit_code(self) -> int:
        """The command's exit status (:data:`EXIT_CODES`)."""
        return EXIT_CODES[self.outcome]

    def to_json(self) -> dict[str, Any]:
        """The review as JSON-able data (``unkai review --json``)."""
        return {
            "base": self.base,
            "head": self.head,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "unchanged": self.unchanged,
            "environments": [
                asdict(env)
                | {"failed": env.failed, "counts": env.counts()}
                | {"capacity": [asdict(h) | {"changed": h.changed} for h in env.capacity]}
                for env in self.environments
            ],
        }


def file_changes(
    before: Mapping[PurePosixPath, str] | None, after: Mapping[PurePosixPath, str] | None
) -> list[FileChange]:
    """The artifacts that differ between two rendered trees (``index.json`` left out).

    The value of a secret-looking key in a diff line (``password: …``, ``ENV API_TOKEN=…``)
    is hidden: a secret typed into a plain field shows as a policy violation, not in the
    pull request's comment.
    """
    old, new = before or {}, after or {}
    changes = []
    for path in sorted((old.keys() | new.keys()) - {INDEX_FILE}):
        if old.get(path) == new.get(path):
            continue
        op: Literal["add", "remove", "change"] = (
            "add" if path not in old else "remove" if path not in new else "change"
        )
        lines = list(
            difflib.unified_diff(
                old.get(path, "").splitlines(),
                new.get(path, "").splitlines(),
                f"base/{path}",
                f"head/{path}",
                lineterm="",
                n=2,
            )
        )
        lines = [_masked_line(line) for line in lines]
        if len(lines) > MAX_DIFF_LINES:
            lines = [*lines[:MAX_DIFF_LINES], f"… {len(lines) - MAX_DIFF_LINES} more lines"]
        changes.append(FileChange(path=str(path), op=op, diff="\n".join(lines)))
    return changes


def environment_changes(
    before: Environment | None, after: Environment | None
) -> list[dict[str, Any]]:
    """The resolved values that differ, ``{"path", "op", "old", "new"}`` each.

    Both sides are compared as ``unkai env diff`` compares two environments. A value
    under a secret-looking key (``…password``, ``…token``) is never shown, only that it
    changed: :data:`HIDDEN` stands in for it.
    """
    if before is None or after is None:
        return []
    changes = []
    for change in diff_environments(before, after):
        entry = change.to_json()
        entry["old"], entry["new"] = (
            _masked(change.path, change.old),
            _masked(change.path, change.new),
        )
        changes.append(entry)
    return changes


def _masked(path: Sequence[str | int], value: Any) -> Any:
    """``value`` with whatever sits under a secret-looking key replaced by :data:`HIDDEN`."""
    if path and path[0] == "policies":
        return value  # policy names (secret-values) name no secret
    if value is None:
        return None
    if is_secret_path(path):
        return HIDDEN
    if isinstance(value, Mapping):
        return {key: _masked((*path, key), item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked((*path, index), item) for index, item in enumerate(value)]
    return value


_ASSIGNMENT = re.compile(
    r"^(?P<lead>[-+ ]\s*(?:ENV\s+|ARG\s+|export\s+|- )?)"  # a diff line, a Dockerfile's ENV
    r"(?P<key>[\w.-]+)(?P<sep>\s*[:=]\s*|\s+)(?P<value>\S.*)$"  # key: value, KEY=value
)


def _masked_line(line: str) -> str:
    """A diff line with the value of a secret-looking key (``password: …``) hidden."""
    found = _ASSIGNMENT.match(line)
    if found is None or line.startswith(("+++", "---")) or not is_secret_path((found["key"],)):
        return line
    return f"{found['lead']}{found['key']}{found['sep']}{HIDDEN}"


def capacity_changes(
    before: CapacityReport | None, after: CapacityReport | None
) -> list[HostCapacity]:
    """Each host's allocation on both sides, by host name."""

    def rows(report: CapacityReport | None) -> dict[str, tuple[str, dict[str, list[int]]]]:
        if report is None:
            return {}
        return {
            row.host: (
                row.zone,
                {
                    "cpus": [row.cpus.used, row.cpus.capacity],
                    "memory_mb": [row.memory_mb.used, row.memory_mb.capacity],
                    "disk_gb": [row.disk_gb.used, row.disk_gb.capacity],
                },
            )
            for row in report.hosts
        }

    old, new = rows(before), rows(after)
    return [
        HostCapacity(
            host=host,
            zone=(new.get(host) or old[host])[0],
            before=old[host][1] if host in old else None,
            after=new[host][1] if host in new else None,
        )
        for host in sorted(old.keys() | new.keys())
    ]


# The report, as Markdown for a pull-request comment.

_OPS = ("create", "update", "migrate", "replace", "delete")
_ICON = {"no change": "✅", "changes": "📝", "failed": "❌"}


def markdown(review: Review) -> str:
    """The review as one Markdown document, fit for a pull-request comment.

    A summary table, then per environment: what the environment's values change, what
    the preview against its stack plans (replacements with their reason), each host's
    capacity before and after as bars, the policies' verdicts, and the artifact diffs
    folded. Artifact diffs are cut so that the whole stays under
    :data:`MAX_REPORT_CHARS`.
    """
    head = [
        f"## unkai review: {_ICON[review.outcome]} {review.outcome}",
        "",
        f"`{review.base}` → `{review.head}`",
        "",
    ]
    if not review.environments:
        head.append("No environment changes: nothing renders or deploys differently.")
        return "\n".join(head) + "\n"
    head += [
        "| environment | | " + " | ".join(_OPS) + " | policy violations |",
        "|---|---|" + "---:|" * len(_OPS) + "---|",
    ]
    for env in review.environments:
        counts = env.counts()
        cells = [str(counts.get(op, "")) if env.resources is not None else "-" for op in _OPS]
        violations = _violations(env.policies) or "none"
        mark = "❌" if env.failed else env.status
        head.append(f"| `{env.name}` | {mark} | " + " | ".join(cells) + f" | {violations} |")
    if review.unchanged:
        head += ["", "Unchanged: " + ", ".join(f"`{n}`" for n in review.unchanged) + "."]
    bodies = [_environment(env) for env in review.environments]
    text = "\n".join(head) + "\n"
    room = MAX_REPORT_CHARS - len(text) - sum(len(body) for body, _ in bodies)
    for body, artifacts in bodies:
        text += body
        shown = _artifacts(artifacts, room)
        room -= len(shown)
        text += shown
    return text


def _violations(policies: Sequence[PolicyResult]) -> str:
    levels: dict[str, int] = {}
    for policy in policies:
        levels[policy.level] = levels.get(policy.level, 0) + 1
    return ", ".join(f"{n} {level}" for level, n in sorted(levels.items()))


def _environment(env: EnvironmentReview) -> tuple[str, list[FileChange]]:
    lines = ["", f"### `{env.name}` ({env.status})", ""]
    lines += [f"> ❌ {problem}" for problem in env.problems]
    lines += [f"> {note}" for note in env.notes]
    if env.problems or env.notes:
        lines.append("")
    if env.environment:
        lines += ["**Environment** (resolved values)", ""]
        lines += [f"- {_value_change(change)}" for change in env.environment]
        lines.append("")
    if env.resources is not None:
        lines += _resources(env.resources)
    if any(host.changed for host in env.capacity):
        lines += _capacity(env.capacity)
    if env.resources is not None or env.policies:
        lines += _policies(env.policies)
    return "\n".join(lines) + "\n", env.artifacts


def _value_change(change: Mapping[str, Any]) -> str:
    path = f"`{change['path'] or '(document)'}`"
    if change["op"] == "add":
        return f"{path} added: `{_short(change['new'])}`"
    if change["op"] == "remove":
        return f"{path} removed (was `{_short(change['old'])}`)"
    return f"{path}: `{_short(change['old'])}` → `{_short(change['new'])}`"


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else compact(value)
    text = text.replace("`", "'").replace("\n", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _resources(resources: Sequence[ResourceChange]) -> list[str]:
    lines = ["**Preview against the stack**", ""]
    if not resources:
        return [*lines, "Nothing to deploy: the stack already matches.", ""]
    lines += ["| resource | layer | change | what changes | why |", "|---|---|---|---|---|"]
    for change in resources:
        what = ", ".join(_property(name, values) for name, values in change.properties.items())
        lines.append(
            f"| `{change.resource}` | {change.layer} | **{change.op}** | {what or '-'}"
            f" | {'; '.join(change.reasons) or '-'} |"
        )
    return [*lines, ""]


def _property(name: str, values: Mapping[str, Any]) -> str:
    before, after = values.get("before"), values.get("after")
    if before is None or after is None or before == after:
        return f"`{name}`"
    return f"`{name}`: {_short(before, 30)} → {_short(after, 30)}"


def _bar(used: int, capacity: int) -> str:
    share = used / capacity if capacity else 0.0
    filled = min(_BAR, round(share * _BAR))
    return "█" * filled + "░" * (_BAR - filled) + f" {100 * share:3.0f} %"


def _capacity(hosts: Sequence[HostCapacity]) -> list[str]:
    lines = ["**Capacity** (allocated of schedulable, before → after; changed hosts)", ""]
    lines.append("```text")
    for host in hosts:
        if not host.changed:
            continue
        for resource, label in (("cpus", "vCPU"), ("memory_mb", "memory")):
            before = host.before[resource] if host.before else None
            after = host.after[resource] if host.after else None
            old = _bar(*before) if before else "(no host)".ljust(_BAR + 6)
            new = _bar(*after) if after else "(no host)"
            name = f"{host.host} ({host.zone})" if resource == "cpus" else ""
            lines.append(f"{name:<24} {label:<6} {old}  →  {new}")
    return [*lines, "```", ""]


def _policies(policies: Sequence[PolicyResult]) -> list[str]:
    if not policies:
        return ["**Policies**: no violation.", ""]
    lines = ["**Policies**", "", "| level | pack | policy | resource | message |"]
    lines.append("|---|---|---|---|---|")
    for p in policies:
        mark = "❌ mandatory" if p.level == "mandatory" else p.level
        message = p.message.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {mark} | {p.pack} | {p.policy} | `{p.resource}` | {message} |")
    return [*lines, ""]


def _artifacts(changes: Sequence[FileChange], room: int) -> str:
    if not changes:
        return ""
    counts = {op: sum(1 for c in changes if c.op == op) for op in ("add", "change", "remove")}
    done = {"add": "added", "change": "changed", "remove": "removed"}
    summary = ", ".join(f"{n} {done[op]}" for op, n in counts.items() if n)
    text = f"\n<details><summary>Rendered artifacts: {summary}</summary>\n\n"
    left = max(0, room - len(text) - 20)
    for change in changes:
        block = f"`{change.path}` ({change.op})\n\n```diff\n{change.diff}\n```\n\n"
        if len(block) > left:
            text += f"`{change.path}` ({change.op}): diff left out, the comment is full\n\n"
            continue
        text += block
        left -= len(block)
    return text + "</details>\n"
