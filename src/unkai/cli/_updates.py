"""What each ``unkai up`` changed, resource by resource, and why: kept for the console.

The engine's stack history has an update's change counts only. Its event log has more:
each step's operation, the properties it changed (their names) and, for a replacement,
the provider's reason ("replace because user_data changed: …"). :func:`steps_of` reads
them from an update's event log; ``unkai up`` keeps them with :func:`keep_update` in
``.unkai/updates/<env>.json`` (the latest :data:`KEPT` updates), and the console's
history page joins them to the engine's history by time. Only names are kept, never a
property's value, so nothing secret is written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from unkai._files import atomic_write
from unkai.provider import parse_replace_reason

__all__ = ["KEPT", "KeptUpdate", "Step", "keep_update", "kept_updates", "steps_of", "updates_file"]

KEPT = 50
"""How many of an environment's latest updates are kept."""

OPERATIONS = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}
"""The engine's step operations kept, and how the console says each. A replacement's own
parts (``create-replacement``, ``delete-replaced``) are its one ``replace``."""


@dataclass(frozen=True)
class Step:
    """One resource an update changed.

    Attributes:
        resource: The resource's name (its URN's last part), e.g. ``local-db``.
        kind: Its type's last part, e.g. ``Instance``.
        op: ``create``, ``update``, ``replace`` or ``delete``.
        properties: The names of the properties that differed (update and replace).
        reasons: For a replacement, ``<property>: <why>`` as the provider said it.
        failed: Whether the step failed.
    """

    resource: str
    kind: str
    op: str
    properties: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    failed: bool = False


@dataclass(frozen=True)
class KeptUpdate:
    """One ``unkai up`` as kept: when it ran, whether it succeeded, its steps."""

    started: dt.datetime
    ended: dt.datetime
    succeeded: bool
    steps: tuple[Step, ...]


def steps_of(events: Iterable[Mapping[str, Any]]) -> tuple[Step, ...]:
    """The steps of an update's engine events (its event log's lines, parsed). Pure.

    A step is kept when it created, updated, replaced or deleted one of the program's
    resources (the stack and the providers are left out), in the order the engine
    finished them; a step that failed is marked so.
    """
    reasons: dict[str, list[str]] = {}
    steps: list[Step] = []
    for event in events:
        diagnostic = event.get("diagnosticEvent") or {}
        found = parse_replace_reason(str(diagnostic.get("message") or ""))
        if found is not None and diagnostic.get("urn"):
            said = f"{found[0]}: {found[1]}"
            known = reasons.setdefault(str(diagnostic["urn"]), [])
            if said not in known:
                known.append(said)
        for key, failed in (("resOutputsEvent", False), ("resOpFailedEvent", True)):
            metadata = (event.get(key) or {}).get("metadata") or {}
            op, urn, kind = metadata.get("op"), str(metadata.get("urn") or ""), metadata.get("type")
            if op not in OPERATIONS or not urn or str(kind or "").startswith("pulumi:"):
                continue
            steps.append(
                Step(
                    resource=urn.rsplit("::", 1)[-1],
                    kind=str(kind).rsplit(":", 1)[-1],
                    op=str(op),
                    properties=tuple(sorted(metadata.get("diffs") or ())),
                    reasons=tuple(reasons.get(urn, ())),
                    failed=failed,
                )
            )
    return tuple(steps)


def updates_file(root: Path, env: str) -> Path:
    """Where ``env``'s latest updates are kept: ``.unkai/updates/<env>.json``."""
    return root / ".unkai" / "updates" / f"{env}.json"


def keep_update(
    root: Path,
    env: str,
    *,
    started: dt.datetime,
    ended: dt.datetime,
    succeeded: bool,
    steps: Sequence[Step],
) -> Path:
    """Add one update to ``env``'s kept updates (the latest :data:`KEPT` stay).

    Only ``up`` writes it, under the stack's lock, so there is one writer at a time.
    """
    path = updates_file(root, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = [_document(update) for update in kept_updates(root, env)]
    kept.append(
        _document(KeptUpdate(started=started, ended=ended, succeeded=succeeded, steps=tuple(steps)))
    )
    atomic_write(path, json.dumps(kept[-KEPT:], indent=2) + "\n")
    return path


def kept_updates(root: Path, env: str) -> list[KeptUpdate]:
    """``env``'s kept updates, oldest first (``[]`` when none was kept or the file is bad)."""
    path = updates_file(root, env)
    try:
        documents = json.loads(path.read_text())
        return [
            KeptUpdate(
                started=dt.datetime.fromisoformat(d["started"]),
                ended=dt.datetime.fromisoformat(d["ended"]),
                succeeded=bool(d["succeeded"]),
                steps=tuple(
                    Step(
                        **{
                            **s,
                            "properties": tuple(s.get("properties") or ()),
                            "reasons": tuple(s.get("reasons") or ()),
                        }
                    )
                    for s in d["steps"]
                ),
            )
            for d in documents
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _document(update: KeptUpdate) -> dict[str, Any]:
    return {
        "started": update.started.isoformat(),
        "ended": update.ended.isoformat(),
        "succeeded": update.succeeded,
        "steps": [asdict(step) for step in update.steps],
    }
