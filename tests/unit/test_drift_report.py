"""``unkai drift``: steps of the two previews become drift, pending changes and counts."""

from __future__ import annotations

from pulumi.automation import OpType, StepEventMetadata, StepEventStateMetadata

from unkai.cli.drift import GONE, LAYERS, SECRET, UNKNOWN, drift_report, step_changes
from unkai.provider.resources import ALL

PREFIX = "urn:pulumi:local::cloud::unkai:index:Cloud$"


def _urn(type_: str, name: str) -> str:
    return f"{PREFIX}{type_}::{name}"


def _step(
    op: OpType, type_: str, name: str, *, old=None, new=None, diff=(), outputs=None
) -> StepEventMetadata:
    urn = _urn(type_, name)

    def state(inputs):
        if inputs is None:
            return None
        return StepEventStateMetadata(type_, urn, "id", "", "p", inputs=inputs, outputs=outputs)

    return StepEventMetadata(op, urn, type_, "p", state(old), state(new), diffs=list(diff))


VM = "unkai:compute:Instance"
HOST = "unkai:compute:KvmHost"
WORKLOAD = "unkai:kubernetes:Workload"
IMAGE = "unkai:containers:ContainerImage"


def test_a_live_change_is_drift_with_its_values_and_a_long_one_is_said_to_differ():
    refreshed = step_changes([
        _step(OpType.REFRESH, VM, "local-web-0"),
        _step(
            OpType.UPDATE, VM, "local-web-0", diff=["memory_mb", "domain_xml"],
            old={"memory_mb": 640, "domain_xml": "<domain>" + "x" * 200},
            new={"memory_mb": 512, "domain_xml": "<domain>" + "y" * 200},
        ),
    ])  # fmt: skip
    report = drift_report("local", refreshed, {}, [_urn(VM, "local-web-0")])
    (change,) = report.drift
    assert (change.layer, change.resource, change.op) == ("vms", "local-web-0", "update")
    assert change.properties == {
        "domain_xml": {"live": None, "declared": None},
        "memory_mb": {"live": 640, "declared": 512},
    }
    assert report.drifted and report.checked == {"vms": 1}


def test_a_change_not_applied_yet_is_pending_not_drift():
    step = _step(
        OpType.UPDATE, VM, "local-db", diff=["memory_mb"],
        old={"memory_mb": 512}, new={"memory_mb": 768},
    )  # fmt: skip
    report = drift_report("local", step_changes([step]), step_changes([step], inputs_only=True), [])
    assert report.drift == [] and not report.drifted
    assert [c.resource for c in report.pending] == ["local-db"]


def test_a_diff_the_provider_found_on_the_live_object_is_not_a_pending_change():
    # A Workload's diff reads the live objects even without a refresh; the stored and
    # declared inputs are the same, so nothing is pending and the change is drift.
    live = _step(
        OpType.UPDATE, WORKLOAD, "local-api", diff=["replicas"],
        old={"replicas": 1}, new={"replicas": 1},
    )  # fmt: skip
    refreshed = _step(
        OpType.UPDATE, WORKLOAD, "local-api", diff=["replicas"],
        old={"replicas": 2}, new={"replicas": 1},
    )  # fmt: skip
    planned = step_changes([live], inputs_only=True)
    assert planned == {}
    report = drift_report("local", step_changes([refreshed]), planned, [])
    assert report.drift[0].properties == {"replicas": {"live": 2, "declared": 1}}


def test_a_resource_deleted_by_hand_is_gone_and_a_new_one_is_pending():
    gone = _step(OpType.CREATE, VM, "local-web-1", new={"memory_mb": 512})
    added = _step(OpType.CREATE, VM, "local-web-2", new={"memory_mb": 512})
    report = drift_report(
        "local",
        step_changes([gone, added]),
        step_changes([added], inputs_only=True),
        [],
    )
    assert [(c.resource, c.op) for c in report.drift] == [("local-web-1", GONE)]
    assert [(c.resource, c.op) for c in report.pending] == [("local-web-2", "create")]


def test_a_host_s_drift_is_the_tasks_its_playbook_would_change():
    step = _step(
        OpType.UPDATE, HOST, "local-host-localhost", diff=["converged"],
        old={}, new={}, outputs={"converged": False, "drift": ["Create the storage pool's folder"]},
    )  # fmt: skip
    (change,) = drift_report("local", step_changes([step]), {}, []).drift
    assert change.layer == "hosts"
    assert change.tasks == ("Create the storage pool's folder",)
    assert change.properties == {}


def test_secrets_are_never_shown_and_unknowns_follow_from_another_change():
    secret = _step(
        OpType.UPDATE, WORKLOAD, "local-api", diff=["secret_values"],
        old={"secret_values": SECRET}, new={"secret_values": SECRET},
    )  # fmt: skip
    follows = _step(
        OpType.UPDATE, WORKLOAD, "local-worker", diff=["image_id"],
        old={"image_id": "sha256:1"}, new={"image_id": UNKNOWN},
    )  # fmt: skip
    gone = _step(OpType.CREATE, IMAGE, "local-worker", new={"tag": "worker"})
    report = drift_report("local", step_changes([secret, follows, gone]), {}, [])
    by_name = {(c.layer, c.resource): c for c in report.drift}
    assert by_name["kubernetes", "local-api"].properties == {
        "secret_values": {"live": None, "declared": None}
    }
    assert by_name["kubernetes", "local-worker"].follows
    assert by_name["kubernetes", "local-worker"].properties["image_id"]["declared"] == (
        "(known after up)"
    )
    assert [c.layer for c in report.drift] == ["images", "kubernetes", "kubernetes"]


def test_only_changes_that_follow_from_others_are_no_drift_and_same_steps_are_ignored():
    follows = _step(
        OpType.UPDATE, WORKLOAD, "local-worker", diff=["image_id"],
        old={"image_id": "sha256:1"}, new={"image_id": UNKNOWN},
    )  # fmt: skip
    same = _step(OpType.SAME, VM, "local-db", old={"memory_mb": 1}, new={"memory_mb": 1})
    report = drift_report("local", step_changes([follows, same]), {}, [])
    assert [c.resource for c in report.drift] == ["local-worker"]
    assert not report.drifted


def test_a_workload_s_fields_an_apply_would_set_back_are_its_drift():
    live = {"manifests": {}, "replicas": 1,
            "drift": ["Deployment/api: spec.template.spec.containers[0].image"]}  # fmt: skip
    refreshed = step_changes([
        _step(OpType.UPDATE, WORKLOAD, "local-api", diff=["manifests"],
              old={"manifests": {}, "replicas": 1}, new={"manifests": {"d.yaml": "x"},
              "replicas": 1}, outputs=live),
    ])  # fmt: skip
    (change,) = refreshed.values()
    assert change.tasks == ("Deployment/api: spec.template.spec.containers[0].image",)
    assert change.properties == {} and not change.follows
    report = drift_report("local", refreshed, {}, [_urn(WORKLOAD, "local-api")])
    assert report.drifted and report.drift[0].layer == "kubernetes"


def test_the_latest_report_is_kept_and_read_back_whole(tmp_path):
    import datetime as dt

    from unkai.cli.drift import Change, DriftReport, keep_report, latest_report

    when = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
    report = DriftReport(
        environment="local",
        drift=[
            Change("vms", "local-db", "unkai:compute:Instance", "update",
                   {"memory_mb": {"live": 1024, "declared": 512}}),
            Change("hosts", "localhost", "unkai:compute:KvmHost", "update",
                   tasks=("sysctl: net.ipv4.ip_forward",)),
        ],
        pending=[Change("vms", "local-web", "unkai:compute:InstanceGroupManager", "update")],
        checked={"hosts": 1, "vms": 2},
    )  # fmt: skip
    assert latest_report(tmp_path, "local") is None
    path = keep_report(tmp_path, report, when=when)
    assert path == tmp_path / ".unkai" / "drift" / "local.json"
    assert latest_report(tmp_path, "local") == (report, "2026-12-06T09:00:00+00:00")


def test_every_kind_the_provider_serves_has_a_drift_layer():
    assert {resource.inputs_model.token for resource in ALL} == set(LAYERS)
