"""What ``unkai up`` keeps of each update for the console: its steps, from the event log."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

from unkai.cli._updates import (
    KEPT,
    KeptUpdate,
    Step,
    keep_update,
    kept_updates,
    steps_of,
    updates_file,
)
from unkai.cli._workspace import _up_report
from unkai.console._views import history_entries
from unkai.provider import replace_reason

STACK = "urn:pulumi:local::unkai::pulumi:pulumi:Stack::unkai-local"
DB = "urn:pulumi:local::unkai::unkai:compute:Instance::local-db"
WEB = "urn:pulumi:local::unkai::unkai:compute:InstanceGroupManager::local-web"
OLD = "urn:pulumi:local::unkai::unkai:compute:Instance::local-old"
IMAGE = "urn:pulumi:local::unkai::unkai:containers:ContainerImage::local-api"
PROVIDER = "urn:pulumi:local::unkai::pulumi:providers:unkai::default"


def _outputs(op: str, urn: str, kind: str, diffs: list[str] | None = None) -> dict:
    return {
        "resOutputsEvent": {
            "metadata": {"op": op, "urn": urn, "type": kind, "diffs": diffs, "new": {"outputs": {}}}
        }
    }


EVENTS = [
    {"preludeEvent": {"config": {}}},
    _outputs("create", PROVIDER, "pulumi:providers:unkai"),
    {
        "diagnosticEvent": {
            "urn": DB,
            "severity": "info",
            "message": replace_reason("user_data", "cloud-init runs once"),
        }
    },
    {"diagnosticEvent": {"urn": DB, "severity": "info", "message": "booting"}},
    _outputs("create-replacement", DB, "unkai:compute:Instance", ["user_data"]),
    _outputs("replace", DB, "unkai:compute:Instance", ["user_data", "domain_xml"]),
    _outputs("delete-replaced", DB, "unkai:compute:Instance"),
    _outputs("same", IMAGE, "unkai:containers:ContainerImage"),
    _outputs("update", WEB, "unkai:compute:InstanceGroupManager", ["slots"]),
    _outputs("delete", OLD, "unkai:compute:Instance"),
    {
        "resOpFailedEvent": {
            "status": 1,
            "steps": 1,
            "metadata": {"op": "create", "urn": IMAGE, "type": "unkai:containers:ContainerImage"},
        }
    },
    _outputs("update", STACK, "pulumi:pulumi:Stack", ["outputs"]),
    {"summaryEvent": {"resourceChanges": {"replace": 1, "update": 1, "delete": 1, "same": 9}}},
]


def test_steps_are_each_resource_changed_with_its_properties_and_reasons():
    assert steps_of(EVENTS) == (
        Step(
            "local-db",
            "Instance",
            "replace",
            ("domain_xml", "user_data"),
            ("user_data: cloud-init runs once",),
        ),
        Step("local-web", "InstanceGroupManager", "update", ("slots",)),
        Step("local-old", "Instance", "delete"),
        Step("local-api", "ContainerImage", "create", failed=True),
    )


def test_the_up_report_carries_the_steps_beside_counts_and_outputs():
    report = _up_report([json.dumps(event) for event in EVENTS])
    assert report.changes["replace"] == 1
    assert [step.resource for step in report.steps] == [
        "local-db",
        "local-web",
        "local-old",
        "local-api",
    ]


def test_kept_updates_round_trip_and_only_the_latest_stay(tmp_path: Path):
    start = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
    steps = steps_of(EVENTS)
    for index in range(KEPT + 3):
        keep_update(
            tmp_path,
            "local",
            started=start + dt.timedelta(minutes=index),
            ended=start + dt.timedelta(minutes=index, seconds=30),
            succeeded=index % 2 == 0,
            steps=steps if index == KEPT + 2 else (),
        )
    kept = kept_updates(tmp_path, "local")
    assert len(kept) == KEPT
    assert kept[0].started == start + dt.timedelta(minutes=3)
    assert kept[-1].steps == steps and kept[-1].succeeded
    assert kept_updates(tmp_path, "other") == []


def test_a_damaged_file_is_no_history_not_an_error(tmp_path: Path):
    updates_file(tmp_path, "local").parent.mkdir(parents=True)
    updates_file(tmp_path, "local").write_text('[{"started": ')
    assert kept_updates(tmp_path, "local") == []


def test_an_engine_update_gets_the_steps_of_the_up_that_ran_it():
    start = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
    steps = steps_of(EVENTS)
    kept = [KeptUpdate(start, start + dt.timedelta(seconds=62), True, steps)]
    updates = [
        SimpleNamespace(
            version=1,
            kind="update",
            result="succeeded",
            message="",
            start_time=start + dt.timedelta(seconds=2),
            end_time=start + dt.timedelta(seconds=60),
            resource_changes={},
        ),
        SimpleNamespace(
            version=2,
            kind="refresh",
            result="succeeded",
            message="",
            start_time=start + dt.timedelta(seconds=20),
            end_time=start + dt.timedelta(seconds=25),
            resource_changes={},
        ),
        SimpleNamespace(
            version=3,
            kind="update",
            result="succeeded",
            message="",
            start_time=start + dt.timedelta(hours=1),
            end_time=start + dt.timedelta(hours=1, seconds=5),
            resource_changes={},
        ),
    ]
    third, second, first = history_entries(updates, kept)
    assert first.steps == steps
    assert second.steps == () and third.steps == ()  # not an up; no up kept at that time
