"""The fleet: four KVM hosts reached over SSH like real ones, a cloud deployed onto them.

The hosts are containers that ``unkai hosts up fleet`` starts (the only code that knows
they are simulated); everything else — Ansible, libvirt over ``qemu+ssh``, the image
upload, the console stream, SSH through the host — treats them as remote machines. One
fleet and one deployment serve the whole module; the tests run in order and the last
ones destroy the cloud and the hosts and check that nothing is left.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pulumi import automation as auto

from unkai.cli.cloud import cloud_stack
from unkai.environments import load_environment

ROOT = Path(__file__).resolve().parents[2]
ENV = "fleet"
FLEET = load_environment(ENV, root=ROOT)
WRAPPER = ROOT / ".unkai" / "ssh" / ENV / "ssh"


def unkai(*args: str, timeout: float = 2400) -> subprocess.CompletedProcess[str]:
    start = time.monotonic()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "unkai"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    print(f"unkai {' '.join(args)}: {time.monotonic() - start:.1f} s")
    return proc


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def on_host(host: str, *command: str) -> str:
    """Run a command on a fleet host over SSH, as unkai's own clients do."""
    address = FLEET.hosts[host].address
    proc = subprocess.run(
        [str(WRAPPER), f"root@{address}", *command],
        capture_output=True, text=True, timeout=120, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def running_domains() -> dict[str, set[str]]:
    return {
        host: set(on_host(host, "virsh", "-c", "qemu:///system", "list", "--name").split())
        for host in sorted(FLEET.hosts)
    }


@pytest.fixture(scope="module")
def hosts():
    ok(unkai("hosts", "up", ENV))
    yield
    ok(unkai("hosts", "down", ENV))


@pytest.fixture(scope="module")
def deployed(hosts):
    result = unkai("up", ENV)
    ok(result)
    yield result
    unkai("destroy", ENV)


@pytest.fixture(scope="module")
def stack(deployed) -> auto.Stack:
    return cloud_stack(ENV, ROOT)


def instances(stack: auto.Stack) -> dict[str, dict]:
    return stack.outputs()["instances"].value


def test_the_web_group_spreads_over_distinct_hosts(deployed, stack):
    vms = instances(stack)
    assert set(vms) == {"db", "web-0", "web-1", "web-2", "web-3"}
    found = running_domains()
    web_hosts = {host for host, names in found.items() for n in names if n.startswith("web-")}
    assert len(web_hosts) == 4, found  # anti-affinity: one member per host
    for name, vm in vms.items():
        assert name in found[vm["host"]], f"{name} is not running on {vm['host']}: {found}"
        assert vm["state"] == "running" and vm["ips"], vm


def test_a_second_up_changes_nothing(stack):
    assert set(stack.preview(expect_no_changes=True).change_summary) == {"same"}


def test_unkai_ssh_logs_in_through_the_host(stack):
    assert ok(unkai("ssh", ENV, "web-0", "hostname")).strip() == "web-0"


def test_the_instance_secret_reached_the_guest_only(stack):
    value = stack.get_config("db-password").value
    shown = ok(unkai("ssh", ENV, "db", "sudo", "cat", "/etc/unkai/secrets.env"))
    assert value in shown
    host = instances(stack)["db"]["host"]
    # The host keeps no copy: not in the seed now in its pool, nor in libvirt's logs.
    found = on_host(
        host, "sh", "-c",
        f"grep -rl -- {json.dumps(value)} /var/lib/libvirt/images /var/log/libvirt || true",
    )  # fmt: skip
    assert found.strip() == ""


def test_moving_an_instance_is_a_live_migration(stack):
    before = instances(stack)["db"]
    target = next(h for h in sorted(FLEET.hosts) if h != before["host"])
    boot_id = ok(unkai("ssh", ENV, "db", "cat", "/proc/sys/kernel/random/boot_id")).strip()
    pid = ok(unkai("ssh", ENV, "db", "sh", "-c", "'nohup sleep 100000 >/dev/null 2>&1 & echo $!'"))
    stack.set_config(
        "unkai:overrides", auto.ConfigValue(json.dumps({"instances": {"db": {"host": target}}}))
    )
    try:
        lines: list[str] = []
        preview = stack.preview(on_output=lines.append)
        # db and its data volume, which follows it; nothing is replaced.
        assert preview.change_summary.get("update") == 2, "".join(lines)
        assert "replace" not in preview.change_summary
        assert f"migrate {before['host']} → {target}" in "".join(lines)
        start = time.monotonic()
        ok(unkai("up", ENV))
        print(f"migration of db {before['host']} → {target}: {time.monotonic() - start:.1f} s")
        assert "db" in running_domains()[target]
        assert "db" not in running_domains()[before["host"]]
        after = ok(unkai("ssh", ENV, "db", "cat", "/proc/sys/kernel/random/boot_id")).strip()
        assert after == boot_id, "the guest rebooted: that was not a live migration"
        ok(unkai("ssh", ENV, "db", "kill", "-0", pid.strip()))
    finally:
        stack.remove_config("unkai:overrides")


def test_draining_a_host_moves_what_can_move_live(stack):
    host = instances(stack)["db"]["host"]
    boot_id = ok(unkai("ssh", ENV, "db", "cat", "/proc/sys/kernel/random/boot_id")).strip()
    drained = ok(unkai("hosts", "drain", ENV, host))
    assert f"drained {host}" in drained
    after = instances(stack)
    assert after["db"]["host"] != host
    assert ok(unkai("ssh", ENV, "db", "cat", "/proc/sys/kernel/random/boot_id")).strip() == boot_id
    # The web member there has no free host (anti-affinity): it stays, and is named.
    stayed = [n for n, vm in after.items() if n.startswith("web-") and vm["host"] == host]
    assert stayed and f"{stayed[0]} stays on {host}" in drained
    assert "takes instances again" in ok(unkai("hosts", "drain", ENV, host, "--undo"))


KILLED: list[str] = []


def test_a_dead_host_is_reported_and_its_instances_move(stack):
    """``docker kill`` of the host running db: refresh says so, up evacuates what fits."""
    victim = instances(stack)["db"]["host"]
    web_there = next(n for n, vm in instances(stack).items() if n.startswith("web-")
                     and vm["host"] == victim)  # fmt: skip
    subprocess.run(["docker", "kill", f"unkai-{ENV}-{victim}"], check=True, capture_output=True)
    KILLED.append(victim)
    refreshed = unkai("refresh", ENV)
    shown = ok(refreshed)
    assert "unreachable hosts of fleet" in shown and victim in shown
    assert "Traceback" not in refreshed.stdout + refreshed.stderr
    start = time.monotonic()
    moved = ok(unkai("up", ENV))
    print(f"evacuation after {victim} died: {time.monotonic() - start:.1f} s")
    assert f"{web_there}" in moved and "stays" in moved  # anti-affinity: no free host
    after = instances(stack)
    assert after["db"]["host"] != victim and after["db"]["state"] == "running"
    assert "db" in running_domains_of(after["db"]["host"])


def running_domains_of(host: str) -> set[str]:
    return set(on_host(host, "virsh", "-c", "qemu:///system", "list", "--name").split())


def test_destroy_leaves_nothing_on_any_host(stack):
    # While a host cannot be checked, destroy cannot prove it left nothing: it says so.
    if KILLED:
        refused = unkai("destroy", ENV)
        assert refused.returncode != 0
        assert "not checked (unreachable)" in refused.stdout + refused.stderr
        # The dead host comes back with the copy of db it ran before the evacuation:
        # destroy finds that leftover by its metadata and removes it.
        ok(unkai("hosts", "up", ENV))
    destroyed = ok(unkai("destroy", ENV))
    if KILLED:
        assert f"removed a leftover of {ENV}: {KILLED[0]}: domain db" in destroyed
    assert f"checked {len(FLEET.hosts)} host(s)" in destroyed
    for host in sorted(FLEET.hosts):
        domains = on_host(host, "virsh", "-c", "qemu:///system", "list", "--all", "--name")
        assert domains.strip() == "", f"{host}: {domains}"
        volumes = on_host(host, "sh", "-c", "virsh -c qemu:///system vol-list unkai || true")
        assert ".qcow2" not in volumes and "seed" not in volumes, f"{host}: {volumes}"
