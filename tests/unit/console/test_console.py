"""The console's pages, served by its real app and real reads on a project of its own.

The project is ``unkai init``'s, with an environment of many hosts added whose libvirt
refuses at once (a closed loopback port): the pages are what a console shows before the
first ``up`` and while hosts are down. Pages against a deployed cloud, in a browser, are
the e2e's.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from unkai.cli.init import init
from unkai.console import PAGES, Cloud, make_app
from unkai.console._views import Bar, ClusterView, history_entries, plan_view, vm_views
from unkai.drivers.libvirt import DiskInfo, DomainInfo
from unkai.environments import load_environment


def _wide(hosts: int) -> str:
    """An environment of ``hosts`` hosts in three zones, each unreachable at once."""
    zones = ("zone-a", "zone-b", "zone-c")
    lines = [
        "extends: base",
        "description: many hosts, none answering",
        "zones: {zone-a: {}, zone-b: {}, zone-c: {}}",
        "host_pools:",
        *(f"  {z}: {{zone: {z}, cpu_overcommit: 2.0, reserved_memory_mb: 512}}" for z in zones),
        "hosts:",
    ]
    for index in range(hosts):
        zone = zones[index % 3]
        lines.append(
            f"  kvm-{index:02d}: {{address: 127.0.0.1, connection: ssh, ssh_user: root,"
            f" libvirt_uri: 'qemu+ssh://root@127.0.0.1:1/system', cpus: 4, memory_mb: 8192,"
            f" disk_gb: 100, cpu_vendor: amd, pool: {zone}, zone: {zone}}}"
        )
    lines += ["networks: {default: {mode: user, cidr: null}}", ""]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("console") / "acme"
    init(root, name=None, python=False)
    for count in (6, 60):
        (root / "environments" / f"wide{count}.yaml").write_text(_wide(count))
    return root


def _serve(root: Path, env: str, check: Callable[[TestClient], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with TestClient(TestServer(make_app(Cloud(env, root)))) as client:
            return await check(client)

    return asyncio.run(run())


def _get(root: Path, env: str, path: str) -> tuple[int, str]:
    async def check(client: TestClient) -> tuple[int, str]:
        answer = await client.get(path)
        return answer.status, await answer.text()

    result: tuple[int, str] = _serve(root, env, check)
    return result


def _main(page: str) -> str:
    found = re.search(r'<main id="main"[^>]*>(.*)</main>', page, re.S)
    assert found, page[:500]
    return found.group(1)


@pytest.mark.parametrize("count", [6, 60])
def test_the_hosts_page_draws_every_host_by_zone_with_its_three_bars(project: Path, count: int):
    status, page = _get(project, f"wide{count}", "/hosts")
    assert status == 200
    rows = re.findall(r'<a href="/hosts/(kvm-\d\d)">', page)
    assert sorted(rows) == [f"kvm-{i:02d}" for i in range(count)]
    # Grouped by zone, each zone's hosts together and in order.
    assert [z for z in re.findall(r"<h2>zone (\S+)", page)] == ["zone-a", "zone-b", "zone-c"]
    assert page.count('class="bar"') == 3 * count
    # 8 schedulable vCPUs each (4 CPUs, overcommit 2.0), and what the plan command places on each.
    assert len(re.findall(r"\d+/8 vCPU \(", page)) == count
    placed = plan_view(load_environment(f"wide{count}", root=project), None).placement
    for host in {*placed.assignments.values()}:
        names = sorted(n for n, h in placed.assignments.items() if h == host)
        assert f'<td class="wrap">{", ".join(names)}</td>' in page
    # A host whose libvirt refuses is said, not an error page.
    assert page.count(">unread<") == count
    assert 'data-live="5"' in page


def test_a_host_page_says_why_its_vms_were_not_read(project: Path):
    status, page = _get(project, "wide6", "/hosts/kvm-03")
    assert status == 200
    assert "Host kvm-03" in page and "zone-a" in page
    assert "not read:" in page and "127.0.0.1" in page
    status, page = _get(project, "wide6", "/hosts/kvm-99")
    assert status == 404 and "wide6 has no host kvm-99" in page


def test_a_live_page_gives_its_main_section_alone_for_the_refresh(project: Path):
    _, whole = _get(project, "wide6", "/hosts")
    _, part = _get(project, "wide6", "/hosts?part=main")
    assert part.lstrip().startswith("<h1>") and "<html" not in part and "<script" not in part
    assert part.strip() == _main(whole).strip()


def test_the_plan_page_is_the_plan_command_s_placement_and_density(project: Path):
    status, page = _get(project, "local", "/plan")
    assert status == 200
    expected = plan_view(load_environment("local", root=project), None)
    for name, host in expected.placement.assignments.items():
        assert f'<td>{name}</td><td><a href="/hosts/{host}">{host}</a></td>' in page
    for row in expected.density.hosts:
        assert f"{row.vm_fit} → {row.container_fit}" in page
    assert "Where the overheads come from" in page


def test_before_the_first_up_history_is_empty_and_nothing_is_made(project: Path):
    state = project / ".unkai" / "state"
    before = sorted(p.relative_to(project) for p in state.rglob("*")) if state.exists() else []
    status, page = _get(project, "local", "/history")
    assert status == 200
    assert "no update yet (run unkai up local)" in page
    after = sorted(p.relative_to(project) for p in state.rglob("*.json") if "stacks" in p.parts)
    assert after == [] and all("stacks" not in p.parts for p in before)


@pytest.mark.parametrize("path", ["/groups", "/clusters"])
def test_the_cluster_pages_say_a_cluster_never_deployed(project: Path, path: str):
    status, page = _get(project, "local", path)
    assert status == 200
    env = load_environment("local", root=project)
    if env.clusters:
        for name in env.clusters:
            assert f"cluster {name}" in page
        assert "not deployed (run unkai up local)" in page
    else:
        assert "has no clusters" in page


def test_every_page_is_in_the_navigation_and_the_front_page_is_hosts(project: Path):
    async def check(client: TestClient) -> tuple[int, str]:
        answer = await client.get("/", allow_redirects=False)
        return answer.status, answer.headers["Location"]

    assert _serve(project, "wide6", check) == (302, "/hosts")
    _, page = _get(project, "wide6", "/plan")
    for path, title in PAGES:
        assert f'<a href="/{path}"' in page and title in page
    assert 'class="here">Plan<' in page
    # The plan does not change under a running cloud: no refresh script there.
    assert "<script" not in page


def test_a_bad_environment_is_a_sentence_on_the_page(project: Path, tmp_path: Path):
    (project / "environments" / "broken.yaml").write_text("extends: base\nhosts: 3\n")
    try:
        status, page = _get(project, "broken", "/hosts")
    finally:
        (project / "environments" / "broken.yaml").unlink()
    assert status == 200
    error = re.search(r'<p class="error">(.*?)</p>', page, re.S)
    assert error and "broken.yaml" in error.group(1) and "hosts" in error.group(1)
    assert "Traceback" not in page and "Error(" not in page


def test_a_bar_marks_what_is_beyond_the_physical_amount():
    bar = Bar(allocated=6, schedulable=8, physical=4, unit="vCPU")
    assert (bar.scale, bar.width(4), bar.width(6), bar.percent) == (8, 50.0, 75.0, 75.0)
    assert bar.overcommitted == 2 and bar.level == "ok"
    assert Bar(8, 8, 8, "GiB").level == "full" and Bar(7, 8, 8, "GiB").level == "busy"
    assert Bar(0, 0, 0, "GiB").percent == 0.0


def _domain(name: str, state: str) -> DomainInfo:
    disk = DiskInfo("vda", "virtio", "disk", f"/var/lib/unkai/{name}.qcow2", "qcow2", False)
    return DomainInfo(
        name=name, uuid="", state=state, memory_mb=512, vcpus=1, domain_type="qemu",
        definition_hash=None, disks=(disk,), nics=(), fingerprint="", max_memory_mb=512,
        max_vcpus=1, environment="local", project="acme",
    )  # fmt: skip


def test_a_vm_joins_what_up_recorded_and_what_the_operator_sees():
    cluster = ClusterView(
        "apps",
        {"groups": {"acme-local-web": {"members": [
            {"name": "web-0", "phase": "unhealthy", "address": "10.0.2.15"}]}}},
    )  # fmt: skip
    outputs = {"db": {"ips": ["10.0.2.15"], "ssh_port": 2300, "boot_seconds": 31.5}}
    views = functools.partial(vm_views, owner="acme-local", groups=["web"], outputs=outputs)
    domains = [_domain("acme-local-db", "running"), _domain("acme-local-web-0", "running")]
    db, web = views("localhost", domains, clusters=[cluster])
    assert (db.name, db.group, db.ssh_port, db.boot_seconds, db.ok) == ("db", "", 2300, 31.5, True)
    assert db.disk == "/var/lib/unkai/acme-local-db.qcow2"
    assert (web.name, web.group, web.health, web.addresses, web.ok) == (
        "web-0",
        "web",
        "unhealthy",
        ("10.0.2.15",),
        False,
    )
    (stopped,) = views("localhost", [_domain("acme-local-db", "shut off")], clusters=[])
    assert not stopped.ok
    # Only ``<group>-<n>`` is a member: ``web-db`` is an instance of its own.
    (alone,) = views("localhost", [_domain("acme-local-web-db", "running")], clusters=[])
    assert alone.group == ""


def test_history_entries_are_newest_first_with_their_length():
    import datetime as dt
    from types import SimpleNamespace

    start = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
    updates = [
        SimpleNamespace(version=1, kind="update", result="succeeded", start_time=start,
                        end_time=start + dt.timedelta(seconds=64), message="",
                        resource_changes={"create": 16}),
        SimpleNamespace(version=2, kind="update", result="in-progress", start_time=start,
                        end_time=None, message="m", resource_changes=None),
    ]  # fmt: skip
    second, first = history_entries(updates)
    assert (second.version, second.seconds, second.changes) == (2, None, {})
    assert (first.started, first.seconds, first.changes) == (
        "2026-12-06 09:00:00",
        64.0,
        {"create": 16},
    )


def test_the_drift_page_is_the_latest_report_unkai_drift_kept(project: Path):
    import datetime as dt

    from unkai.cli.drift import Change, DriftReport, keep_report, report_file

    status, page = _get(project, "local", "/drift")
    assert status == 200 and "no drift report yet: run unkai drift local" in page
    report = DriftReport(
        environment="local",
        drift=[Change("vms", "local-db", "unkai:compute:Instance", "update",
                      {"memory_mb": {"live": 640, "declared": 1024}})],
        pending=[Change("vms", "local-web", "unkai:compute:InstanceGroupManager", "update",
                        {"size": {"live": 2, "declared": 3}})],
        checked={"vms": 2},
    )  # fmt: skip
    keep_report(project, report, when=dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC))
    try:
        status, page = _get(project, "local", "/drift")
    finally:
        report_file(project, "local").unlink()
    assert status == 200
    assert "2026-12-06T09:00:00+00:00 UTC" in page and "drift found" in page
    assert "memory_mb: 640 → 1024" in page
    assert "<td>local-web</td><td>not applied yet</td><td>update</td>" in page


CLUSTER = {
    "deployed": True, "reachable": True, "pools": {}, "groups": {}, "events": [],
    "nodes": [
        {"name": "default-0", "pool": "default", "simulated": True, "ready": True},
        {"name": "default-1", "pool": "default", "simulated": True, "ready": False},
        {"name": "vm-node", "pool": None, "simulated": False, "ready": True},
    ],
    "workloads": [
        {"namespace": "apps", "name": "api", "replicas": 2, "ready": 1, "updated": 2, "pods": [
            {"name": "api-7f-a", "node": "default-0", "phase": "Running", "ready": True},
            {"name": "api-7f-b", "node": "", "phase": "Pending", "ready": False},
        ]},
        {"namespace": "apps", "name": "worker", "replicas": 1, "ready": 1, "updated": 1,
         "pods": [{"name": "worker-5c-a", "node": "vm-node", "phase": "Running", "ready": True}]},
    ],
}  # fmt: skip
"""One cluster as :func:`unkai.cli.status.cluster_status` returns it (read from a real API
server by the e2e; the page's drawing of it is this test's)."""


def test_the_clusters_page_shows_nodes_real_or_simulated_and_pods_per_workload(
    project: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(Cloud, "clusters", lambda self, env=None: [ClusterView("apps", CLUSTER)])
    status, page = _get(project, "local", "/clusters")
    assert status == 200
    main = _main(page)
    assert re.search(r"2/3 nodes Ready,\s+2 simulated", main), main
    cells = r"<tr( class=\"alert\")?>\s*<td>([\w-]+)</td><td>([\w-]+)</td><td>(\w+)</td>"
    nodes = re.findall(cells, main)
    assert [(n, pool, kind, bool(alert)) for alert, n, pool, kind in nodes] == [
        ("default-0", "default", "simulated", False),
        ("default-1", "default", "simulated", True),
        ("vm-node", "-", "real", False),
    ]
    api, worker = re.findall(r"<tr[^>]*>\s*<td>(api|worker)</td>.*?</tr>", main, re.S)
    assert (api, worker) == ("api", "worker")
    row = re.search(r'<tr class="alert">\s*<td>api</td>.*?</tr>', main, re.S)
    assert row is not None, main  # one of two pods Ready: the row is marked
    assert '<td class="num">1/2</td>' in row.group(0)
    assert "(unscheduled, Pending)" in row.group(0) and "(default-0, Running)" in row.group(0)
