"""``unkai status``'s tables from a cluster's report (the report itself is read from a real
control plane in tests/integration/test_instance_groups.py and test_operator.py)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from unkai.cli import status as status_module
from unkai.cli.app import _register, app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
_register()

REPORT = {
    "deployed": True,
    "reachable": True,
    "pools": {},
    "groups": {
        "unkai-local-web": {
            "size": 2, "min_size": 1, "max_size": 3, "target": 2, "healthy": 1, "updated": 1,
            "settled": False,
            "members": [
                {"name": "web-0", "host": "localhost", "phase": "healthy",
                 "digest": "8195f1f2f566faff", "created": "", "cpu_percent": 12},
                {"name": "web-2", "host": "localhost", "phase": "booting",
                 "digest": "d6d92dbe2b7c2533", "created": "", "cpu_percent": None},
            ],
            "repairs": [],
        }
    },
    "events": [
        {"pool": "unkai-local-web", "type": "Normal", "reason": "UpdateSurge",
         "message": "1 member(s) of an old template: making web-2", "time": "2026-12-05T18:00:00Z",
         "count": 1},
    ],
    "nodes": [{"name": "default-0", "pool": "default", "simulated": True, "ready": True}],
    "workloads": [
        {"namespace": "apps", "name": "api", "replicas": 2, "ready": 1, "updated": 2, "pods": [
            {"name": "api-7f-a", "node": "default-0", "phase": "Running", "ready": True},
            {"name": "api-7f-b", "node": "", "phase": "Pending", "ready": False},
        ]},
    ],
}  # fmt: skip


def test_status_shows_each_group_member_with_its_health_and_template(monkeypatch):
    monkeypatch.setattr(status_module, "cluster_status", lambda kubeconfig: REPORT)
    result = runner.invoke(app, ["status", "local", "--root", str(ROOT)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "instance groups" in out
    assert "1 (settling)" in out
    for text in ("web-0", "web-2", "booting", "8195f1f2f566faff", "12 %", "UpdateSurge"):
        assert text in out, text


def test_status_json_has_the_groups(monkeypatch):
    monkeypatch.setattr(status_module, "cluster_status", lambda kubeconfig: REPORT)
    result = runner.invoke(app, ["status", "local", "--json", "--root", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert '"unkai-local-web"' in result.output and '"booting"' in result.output


def test_status_shows_the_nodes_and_each_workload_s_pods(monkeypatch):
    monkeypatch.setattr(status_module, "cluster_status", lambda kubeconfig: REPORT)
    result = runner.invoke(app, ["status", "local", "--root", str(ROOT)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("cluster apps: nodes", "simulated (kwok)", "cluster apps: workloads", "1/2",
                 "api-7f-a", "Pending (not Ready)"):  # fmt: skip
        assert text in out, text
