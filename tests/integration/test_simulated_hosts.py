"""Simulated hosts against the real Docker engine: two hosts that are real hosts.

A throwaway project (a temporary root with one environment of two hosts, on a random
private /24 so that it cannot collide with ``fleet`` or another run) is brought up with
``unkai hosts up``; the hosts are then reached only as remote machines are: SSH with the
host key checked against the project's ``known_hosts``, libvirt over ``qemu+ssh://``
through unkai's SSH wrapper. The host image comes from the cache after the first run.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from unkai.drivers import simulated_hosts as sim
from unkai.environments import load_environment
from unkai.toolchain import cache_root, known_hosts_file, operator_key

UNKAI = Path(sys.executable).parent / "unkai"
_N = random.randrange(1, 250)
ENV = f"simt{_N}"
NET = f"10.239.{_N}"
HOSTS = {"sim-1": f"{NET}.11", "sim-2": f"{NET}.12"}

ENV_FILE = f"""\
description: Two simulated hosts of the integration test.
zones:
  z1: {{}}
  z2: {{}}
host_pools:
  p1: {{zone: z1}}
  p2: {{zone: z2}}
hosts:
  sim-1: {{address: {HOSTS["sim-1"]}, connection: ssh, ssh_user: root, cpus: 2, memory_mb: 4096,
          disk_gb: 20, cpu_vendor: amd, pool: p1, zone: z1}}
  sim-2: {{address: {HOSTS["sim-2"]}, connection: ssh, ssh_user: root, cpus: 2, memory_mb: 4096,
          disk_gb: 20, cpu_vendor: amd, pool: p2, zone: z2}}
"""


def _unkai(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(UNKAI), *args, "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def project(client):
    # A short root: the wrapper's ControlPath (<root>/.unkai/ssh/<env>/control/<40 hex>,
    # plus 17 bytes while OpenSSH binds it) must fit a Unix socket path (108 bytes), which
    # pytest's deep temporary folders do not.
    root = Path(tempfile.mkdtemp(prefix="us-", dir="/tmp")).resolve()
    (root / "environments").mkdir()
    (root / "environments" / f"{ENV}.yaml").write_text(ENV_FILE)
    (root / "unkai.toml").write_text('[project]\nname = "simulated-hosts"\n')
    start = time.monotonic()
    result = _unkai("hosts", "up", ENV, root=root)
    seconds = time.monotonic() - start
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield root, result, seconds
    finally:
        sim.down(client, ENV, project=root)
        shutil.rmtree(root, ignore_errors=True)


def _ssh(root: Path, address: str, *command: str, known_hosts: Path | None = None):
    argv = sim.probe_argv(
        user="root",
        address=address,
        identity=operator_key(root),
        known_hosts=known_hosts or known_hosts_file(root),
    )
    # probe_argv ends with its own command (virsh version): replace it.
    argv = [*argv[: argv.index(f"root@{address}") + 1], *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_up_starts_each_host_and_says_so(project):
    _, result, seconds = project
    for host, address in HOSTS.items():
        assert f"{host} ({address}) answers: sshd and libvirtd" in result.stdout
    assert f"2 hosts of {ENV} started" in result.stdout
    print(f"hosts up ({ENV}, 2 hosts): {seconds:.1f} s")


def test_sshd_answers_with_the_host_key_recorded_in_known_hosts(project, client):
    root, _, _ = project
    lines = known_hosts_file(root).read_text().splitlines()
    for host, address in HOSTS.items():
        recorded = [line for line in lines if line.split()[0] == address]
        # The key as the host has it, read through the engine (not over the network).
        read = client.containers.get(f"unkai-{ENV}-{host}").exec_run(["cat", f"{sim.HOST_KEY}.pub"])
        assert read.exit_code == 0
        key = read.output.decode()
        assert recorded == [f"{address} {' '.join(key.split()[:2])}"]
        result = _ssh(root, address, "hostname")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == host


def test_a_host_key_that_is_not_in_known_hosts_is_refused(project, tmp_path):
    root, _, _ = project
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = _ssh(root, HOSTS["sim-1"], "true", known_hosts=empty)
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr


def _uuid(root: Path, address: str) -> str:
    wrapper = root / ".unkai" / "ssh" / ENV / "ssh"
    uri = f"qemu+ssh://root@{address}/system?command={wrapper}"
    result = subprocess.run(
        ["virsh", "-c", uri, "capabilities"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = re.search(r"<host>\s*<uuid>([0-9a-f-]+)</uuid>", result.stdout)
    assert found is not None, result.stdout[:500]
    return found.group(1)


def test_libvirt_answers_over_qemu_ssh_with_a_distinct_host_uuid_per_host(project):
    root, _, _ = project
    uuids = {host: _uuid(root, address) for host, address in HOSTS.items()}
    assert len(set(uuids.values())) == len(HOSTS)
    for host, found in uuids.items():
        assert found == sim.host_uuid(project=str(root), environment=ENV, host=host)


def _up(root: Path, client) -> sim.UpReport:
    return sim.up(
        client,
        load_environment(ENV, root=root),
        project=root,
        cache_root=cache_root(),
        identity=operator_key(root),
        known_hosts=known_hosts_file(root),
    )


def test_a_second_up_changes_nothing(project, client):
    root, _, _ = project
    before = known_hosts_file(root).read_text()
    start = time.monotonic()
    report = _up(root, client)
    print(f"second hosts up: {time.monotonic() - start:.1f} s")
    assert report.steps == () and not report.changed
    assert known_hosts_file(root).read_text() == before
    result = _unkai("hosts", "up", ENV, root=root)
    assert result.returncode == 0, result.stderr
    assert "nothing to change" in result.stdout and "already running" in result.stdout


def test_a_stopped_host_is_started_again_with_its_host_key_and_pool(project, client):
    root, _, _ = project
    name = f"unkai-{ENV}-sim-2"
    assert _ssh(root, HOSTS["sim-2"], "touch /var/lib/libvirt/images/kept").returncode == 0
    before = known_hosts_file(root).read_text()
    client.api.stop(name, timeout=20)
    report = _up(root, client)
    assert [(s.action, s.target) for s in report.steps] == [("start-container", name)]
    assert not report.known_hosts_changed and known_hosts_file(root).read_text() == before
    assert _ssh(root, HOSTS["sim-2"], "test -f /var/lib/libvirt/images/kept").returncode == 0


def test_list_shows_each_host_running_and_answering(project):
    root, _, _ = project
    result = _unkai("hosts", "list", ENV, root=root)
    assert result.returncode == 0, result.stderr
    for host, address in HOSTS.items():
        row = next(line for line in result.stdout.splitlines() if f" {host} " in line)
        assert address in row and "running" in row and "answers" in row


def test_down_leaves_no_container_volume_network_or_host_key(project, client):
    root, _, _ = project
    result = _unkai("hosts", "down", ENV, root=root)
    assert result.returncode == 0, result.stderr
    labels = {"label": [f"{sim.PROJECT_LABEL}={root}", f"{sim.ENVIRONMENT_LABEL}={ENV}"]}
    assert client.api.containers(all=True, filters=labels) == []
    assert (client.api.volumes(filters=labels) or {}).get("Volumes") in (None, [])
    assert client.api.networks(filters=labels) == []
    assert not any(
        line.split()[0] in HOSTS.values()
        for line in known_hosts_file(root).read_text().splitlines()
    )
    again = _unkai("hosts", "down", ENV, root=root)
    assert again.returncode == 0 and "nothing to remove" in again.stdout
