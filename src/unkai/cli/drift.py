"""``unkai drift <env>``: what changed behind unkai's back, layer by layer.

Drift is what the real world holds that is not what unkai last applied. The engine
finds it the way ``up`` would repair it: a preview with a refresh first reads every
resource back through unkai's provider — the KvmHost playbook in check mode (the tasks
that would change), each VM's live libvirt definition, images and volumes on the hosts,
the cluster's objects — and diffs what it read against what the program declares.

That diff also holds the changes not applied yet (an environment file edited since the
last ``up``). A second preview, without the refresh, gives those alone; a property that
differs in the first and not in the second changed outside unkai. Changes of both kinds
are reported apart: ``pending`` is what the next ``up`` applies anyway, ``drift`` is
what ``refresh`` then ``up`` restore (``up`` alone trusts the state it has).

The report is a table per layer, or JSON (``--json``) for cron and CI; the exit status
is 2 when anything drifted, 0 when nothing did. Values are shown only when short and
never for a secret (the engine's events carry secrets as ``[secret]``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pulumi import automation as auto
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from unkai._files import atomic_write
from unkai.cli._workspace import SECRET_PLACEHOLDER, Root, resolve_root
from unkai.provider._values import UNKNOWN_SENTINEL

__all__ = [
    "LAYERS",
    "Change",
    "DriftReport",
    "drift",
    "drift_report",
    "keep_report",
    "latest_report",
    "report_file",
    "step_changes",
]

LAYERS: Mapping[str, str] = {
    "unkai:compute:KvmHost": "hosts",
    "unkai:compute:Network": "networks",
    "unkai:compute:ImageBuild": "images",
    "unkai:compute:VmImage": "images",
    "unkai:containers:ContainerImage": "images",
    "unkai:compute:Instance": "vms",
    "unkai:compute:InstanceGroupManager": "vms",
    "unkai:compute:Volume": "vms",
    "unkai:kubernetes:Cluster": "kubernetes",
    "unkai:kubernetes:NodePool": "kubernetes",
    "unkai:kubernetes:VmNode": "kubernetes",
    "unkai:kubernetes:Workload": "kubernetes",
    "unkai:local:File": "files",
}
"""The layer of each resource kind; the report's sections, in this order."""

SECRET = SECRET_PLACEHOLDER
"""How the engine's events show a secret value."""

UNKNOWN = UNKNOWN_SENTINEL
"""How the engine's events show a value not known before ``up`` (its unknown marker)."""

_SHOWN = 60
"""The longest value shown (a domain's XML is said to differ, not printed)."""

GONE = "gone"
"""The change of a resource that the refresh found deleted (``up`` creates it again)."""


@dataclass(frozen=True)
class Change:
    """One resource that differs from what the program declares.

    Attributes:
        layer: Its layer (:data:`LAYERS`).
        resource: Its name (the last part of its URN).
        type: Its type token.
        op: What ``up`` would do: ``update``, ``replace`` or :data:`GONE`.
        properties: Each property that differs → ``{"live": …, "declared": …}``, the
            values only when short and not secret.
        tasks: For a host, the playbook's tasks that would change; for a workload, the
            fields (``Kind/name: path``) a server-side apply would set back.
        follows: Every difference is a value known only after ``up`` (a Workload whose
            image is built again): the change follows from another one.
    """

    layer: str
    resource: str
    type: str
    op: str
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: tuple[str, ...] = ()
    follows: bool = False


@dataclass(frozen=True)
class DriftReport:
    """What ``unkai drift`` found: drift, pending changes, resources checked per layer."""

    environment: str
    drift: list[Change]
    pending: list[Change]
    checked: dict[str, int]

    @property
    def drifted(self) -> bool:
        """Whether anything changed outside unkai."""
        return any(not change.follows for change in self.drift)


_EXPLAINED = {"unkai:compute:KvmHost": "converged", "unkai:kubernetes:Workload": "manifests"}
"""Kinds whose state lists what drifted (``drift``), and the property that list explains:
a host's playbook tasks that would change, a workload's fields an apply would set back."""

_SAME_CHANGE = {"create-replacement": "replace"}
"""Engine operations that are another's half: a replacement's create is its replace."""


def step_changes(
    steps: Iterable[auto.StepEventMetadata], *, inputs_only: bool = False
) -> dict[str, Change]:
    """URN → the change of each step that is not ``same`` (of unkai's kinds only).

    A ``create`` is a resource the state had and the refresh found gone, or one the
    program adds (told apart by :func:`drift_report`); a ``delete`` is one the program
    dropped. With ``inputs_only`` (the preview without a refresh), a change is the
    inputs that differ from the stored ones: a provider whose diff reads the live
    object (a Workload's) reports drift there too, which is not a pending change.
    """
    found: dict[str, Change] = {}
    for step in steps:
        layer = LAYERS.get(step.type)
        op = _SAME_CHANGE.get(step.op.value, step.op.value)
        if layer is None or op in ("same", "read", "refresh", "delete-replaced"):
            continue
        if op == "replace" and step.urn in found:
            continue  # create-replacement and replace are one change
        stored = dict(step.old.inputs or {}) if step.old else {}
        old = {**stored, **(step.old.outputs or {})} if step.old else {}
        new = dict(step.new.inputs or {}) if step.new else {}
        if inputs_only and op in ("update", "replace") and step.old and step.new:
            names = sorted(n for n in stored.keys() | new.keys() if stored.get(n) != new.get(n))
            if not names:
                continue
        else:
            keys = list(step.detailed_diff or {}) or list(step.diffs or [])
            names = sorted({key.split(".")[0].split("[")[0] for key in keys})
        tasks = tuple(old.get("drift") or ()) if step.type in _EXPLAINED else ()
        if tasks:  # they say what ``converged: false`` or the manifests that differ mean
            names = [n for n in names if n != _EXPLAINED[step.type]]
        properties = {
            n: {"live": _shown(old.get(n)), "declared": _shown(new.get(n))} for n in names
        }
        found[step.urn] = Change(
            layer=layer,
            resource=step.urn.rsplit("::", 1)[-1],
            type=step.type,
            op=op,
            properties=properties,
            tasks=tasks,
            follows=bool(properties)
            and all(new.get(n) == UNKNOWN for n in properties)
            and not tasks,
        )
    return found


def _shown(value: Any) -> Any:
    """``value`` when it is short and not secret; otherwise None (it differs, unshown)."""
    if value == UNKNOWN:
        return "(known after up)"
    if value == SECRET or isinstance(value, dict | list):
        return None
    if isinstance(value, str) and len(value) > _SHOWN:
        return None
    return value


def drift_report(
    environment: str,
    refreshed: Mapping[str, Change],
    planned: Mapping[str, Change],
    resources: Iterable[str],
) -> DriftReport:
    """Tell drift from pending changes.

    Args:
        environment: The environment's name.
        refreshed: :func:`step_changes` of the preview with a refresh.
        planned: :func:`step_changes` of the preview without one (the pending changes).
        resources: The URNs of every resource of the program.
    """
    drift: list[Change] = []
    for urn, change in refreshed.items():
        pending = planned.get(urn)
        if change.op == "create":
            if pending is None:  # the state had it; the refresh found it gone
                drift.append(_with(change, op=GONE))
            continue
        if change.op == "delete":
            continue  # dropped from the program: pending, not drift
        extra = {
            n: v
            for n, v in change.properties.items()
            if pending is None or n not in pending.properties
        }
        if extra or change.tasks:
            drift.append(_with(change, properties=extra))
    checked: dict[str, int] = {}
    for urn in resources:
        layer = LAYERS.get(urn.split("::")[-2].split("$")[-1])  # parent$type
        if layer is not None:
            checked[layer] = checked.get(layer, 0) + 1
    order = list(LAYERS.values())
    key: Callable[[Change], tuple[int, str]] = lambda c: (order.index(c.layer), c.resource)  # noqa: E731
    return DriftReport(
        environment=environment,
        drift=sorted(drift, key=key),
        pending=sorted(planned.values(), key=key),
        checked={layer: checked[layer] for layer in dict.fromkeys(order) if layer in checked},
    )


def _with(change: Change, **updates: Any) -> Change:
    return Change(**{**asdict(change), **updates})


def _previews(stack: auto.Stack) -> tuple[dict[str, Change], dict[str, Change], list[str]]:
    """The two previews' changes and the program's URNs."""
    planned: list[auto.StepEventMetadata] = []
    refreshed: list[auto.StepEventMetadata] = []
    urns: list[str] = []

    def collect(
        into: list[auto.StepEventMetadata], names: list[str] | None
    ) -> Callable[[auto.EngineEvent], None]:
        def on_event(event: auto.EngineEvent) -> None:
            pre = event.resource_pre_event
            if pre is not None:
                into.append(pre.metadata)
                if names is not None and pre.metadata.op.value == "refresh":
                    names.append(pre.metadata.urn)  # every resource is read back once

        return on_event

    stack.preview(on_event=collect(planned, None))
    stack.preview(refresh=True, diff=True, on_event=collect(refreshed, urns))
    return step_changes(refreshed), step_changes(planned, inputs_only=True), urns


def _document(report: DriftReport) -> dict[str, Any]:
    """The report as JSON-able data: what ``--json`` prints."""
    return asdict(report) | {"drifted": report.drifted}


def report_file(root: Path, env: str) -> Path:
    """Where the latest report of ``env`` is kept: ``.unkai/drift/<env>.json``."""
    return root / ".unkai" / "drift" / f"{env}.json"


def keep_report(root: Path, report: DriftReport, *, when: dt.datetime) -> Path:
    """Keep ``report`` as the latest of its environment (the web console shows it).

    It holds what the command prints: values only when short and never a secret.
    """
    path = report_file(root, report.environment)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = _document(report) | {"time": when.isoformat()}
    atomic_write(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path


def latest_report(root: Path, env: str) -> tuple[DriftReport, str] | None:
    """The latest report ``unkai drift`` kept for ``env``, and when it was made."""
    path = report_file(root, env)
    if not path.is_file():
        return None
    document = json.loads(path.read_text())
    changes = {
        key: [Change(**{**c, "tasks": tuple(c.get("tasks") or ())}) for c in document[key]]
        for key in ("drift", "pending")
    }
    report = DriftReport(
        environment=document["environment"], checked=dict(document["checked"]), **changes
    )
    return report, str(document.get("time") or "")


def drift(
    env: str = typer.Argument(..., help="Environment (and stack) name."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    root: Root = None,
) -> None:
    """Report what changed behind unkai's back, per layer; exit 2 when anything did.

    The report is also kept as the environment's latest (``.unkai/drift/<env>.json``),
    which ``unkai console`` shows.
    """
    from unkai.cli.cloud import cloud_stack  # the engine's commands, imported when run

    root = resolve_root(root)
    stack = cloud_stack(env, root)
    refreshed, planned, urns = _previews(stack)
    report = drift_report(env, refreshed, planned, urns)
    keep_report(root, report, when=dt.datetime.now(dt.UTC).replace(microsecond=0))
    if as_json:
        typer.echo(json.dumps(_document(report), indent=2))
    else:
        _print(report, Console(soft_wrap=True))
    raise typer.Exit(2 if report.drifted else 0)


def _print(report: DriftReport, console: Console) -> None:
    table = Table(title=f"drift of {report.environment}", title_justify="left")
    for column in ("layer", "resource", "would be", "what differs (live → declared)"):
        table.add_column(column, overflow="fold")
    for change in report.drift:
        table.add_row(change.layer, change.resource, _op(change.op), escape(_what(change)))
    checked = ", ".join(f"{layer} {n}" for layer, n in report.checked.items())
    if report.drift:
        console.print(table)
        causes = sum(not change.follows for change in report.drift)
        console.print(
            f"[red]drift:[/] {causes} resource(s) changed outside unkai (checked {checked});"
            f" `unkai refresh {report.environment}` then `unkai up {report.environment}`"
            " restore them"
        )
    else:
        console.print(f"[green]no drift[/] in {report.environment} (checked {checked})")
    if report.pending:
        names = ", ".join(f"{c.resource} ({c.op})" for c in report.pending)
        console.print(f"not applied yet (the next up applies them): {escape(names)}")


def _op(op: str) -> str:
    return {"update": "updated", "replace": "replaced", GONE: "created again"}.get(op, op)


def _what(change: Change) -> str:
    if change.op == GONE:
        return "deleted outside unkai"
    if change.follows:
        return "follows from a change above: " + ", ".join(change.properties)
    parts = [
        f"{name}: {values['live']} → {values['declared']}"
        if values["live"] != values["declared"]
        else f"{name} differs"  # too long or secret to show, or only the live object says
        for name, values in change.properties.items()
    ]
    if change.tasks:
        what = "apply would set back" if change.layer == "kubernetes" else "playbook would change"
        parts.append(f"{what}: " + ", ".join(change.tasks))
    return "; ".join(parts)
