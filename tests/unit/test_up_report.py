"""What ``unkai up`` reads from an update's event log: change counts and stack outputs."""

from __future__ import annotations

import json

from unkai.cli._workspace import SECRET_PLACEHOLDER, _up_report


def _line(event: dict) -> str:
    return json.dumps({"sequence": 1, "timestamp": 1, **event})


def _outputs_event(type_: str, outputs: dict) -> str:
    step = {"op": "same", "urn": f"urn:pulumi:local::cloud::{type_}::x", "type": type_}
    step["new"] = {"type": type_, "inputs": {}, "outputs": outputs}
    return _line({"resOutputsEvent": {"metadata": step}})


def test_the_summary_and_the_root_resource_s_outputs_are_read():
    lines = [
        _line({"preludeEvent": {"config": {}}}),
        _outputs_event("unkai:compute:Instance", {"host": "not-a-stack-output"}),
        _outputs_event(
            "pulumi:pulumi:Stack",
            {"environment": "local", "instances": {"db": {"host": "localhost"}}},
        ),
        "",
        _line({"summaryEvent": {"resourceChanges": {"same": 16}, "result": "succeeded"}}),
    ]
    report = _up_report(lines)
    assert report.changes == {"same": 16}
    assert set(report.outputs) == {"environment", "instances"}
    assert report.outputs["instances"].value == {"db": {"host": "localhost"}}
    assert not report.outputs["environment"].secret


def test_a_secret_output_is_marked_secret_and_never_has_its_value():
    lines = [_outputs_event("pulumi:pulumi:Stack", {"token": SECRET_PLACEHOLDER})]
    report = _up_report(lines)
    assert report.outputs["token"].secret
    assert report.outputs["token"].value == SECRET_PLACEHOLDER
    assert report.changes == {}


def test_an_update_that_reported_nothing_has_no_changes_and_no_outputs():
    report = _up_report([])
    assert (report.changes, report.outputs) == ({}, {})
