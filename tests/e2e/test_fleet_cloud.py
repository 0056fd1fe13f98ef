"""The fleet: four KVM hosts reached over SSH like real ones, a cloud deployed onto them.

The hosts are containers that ``unkai hosts up fleet`` starts (the only code that knows
they are simulated); everything else — Ansible, libvirt over ``qemu+ssh``, the image
upload, the console stream, SSH through the host — treats them as remote machines. One
fleet and one deployment serve the whole module; the tests run in order and the last
ones destroy the cloud and the hosts and check that nothing is left.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pulumi import automation as auto

from unkai.cli.cloud import cloud_stack
from unkai.environments import load_environment

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from browser import browser, rows
from browser import console as serve_console
from commands import ok, run

ROOT = Path(__file__).resolve().parents[2]
ENV = "fleet"
FLEET = load_environment(ENV, root=ROOT)
WRAPPER = ROOT / ".unkai" / "ssh" / ENV / "ssh"
UNKAI = Path(sys.executable).parent / "unkai"
SCREENSHOTS = ROOT / ".unkai" / "console-screenshots"


def domain(instance: str) -> str:
    """The libvirt name of an instance's domain: its project's and environment's first."""
    return f"unkai-{ENV}-{instance}"


def unkai(*args: str, timeout: float = 2400) -> subprocess.CompletedProcess[str]:
    return run(Path(sys.executable).parent / "unkai", *args, cwd=ROOT, timeout=timeout)


def on_host(host: str, *command: str) -> str:
    """Run a command on a fleet host over SSH, as unkai's own clients do.

    The command is quoted for the remote shell: ssh joins its arguments with spaces, so
    ``sh -c "a b"`` would otherwise arrive as ``sh -c a b``.
    """
    address = FLEET.hosts[host].address
    proc = subprocess.run(
        [str(WRAPPER), f"root@{address}", shlex.join(command)],
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
    web_hosts = {h for h, names in found.items() for n in names if n.startswith(domain("web-"))}
    assert len(web_hosts) == 4, found  # anti-affinity: one member per host
    for name, vm in vms.items():
        assert domain(name) in found[vm["host"]], f"{name} is not on {vm['host']}: {found}"
        assert vm["state"] == "running" and vm["ips"], vm


def test_a_second_up_changes_nothing(stack):
    assert set(stack.preview(expect_no_changes=True).change_summary) == {"same"}


def _range(end: int) -> str:
    return f"<range start='10.232.0.128' end='10.232.0.{end}'/>"


def _set_dhcp_range(host: str, network: str, old: int, new: int) -> None:
    """Swap the DHCP range of ``network`` on ``host``, live and in its definition."""
    for op, end in (("add-last", new), ("delete", old)):
        on_host(host, "virsh", "-q", "net-update", network, op, "ip-dhcp-range", _range(end),
                "--live", "--config")  # fmt: skip


def test_drift_finds_a_network_edited_on_a_host(stack):
    """A DHCP range changed by hand on one host: ``unkai drift`` names that network."""
    host = sorted(FLEET.hosts)[0]
    network = f"unkai-unkai-{ENV}-default"
    _set_dhcp_range(host, network, 254, 200)
    try:
        drift = unkai("drift", ENV, "--json")
    finally:
        _set_dhcp_range(host, network, 200, 254)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    report = json.loads(drift.stdout)
    (edited,) = [c for c in report["drift"] if c["layer"] == "networks"]
    assert host in edited["resource"] and edited["op"] == "replace", edited
    assert list(edited["properties"]) == ["xml"], edited
    assert report["checked"]["networks"] == len(FLEET.hosts)
    again = unkai("drift", ENV, "--json")
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_new_host_and_new_instances_move_nothing_that_runs(stack):
    """Placement is sticky: what runs keeps its host; only the new things are created."""
    grown = {
        "hosts": {"kvm-c1": {
            "address": "10.231.0.21", "connection": "ssh", "ssh_user": "root", "cpus": 2,
            "memory_mb": 4096, "disk_gb": 20, "cpu_vendor": "amd", "pool": "fleet-b",
            "zone": "fleet-b",
        }},
        "instance_groups": {"web": {"size": 5}},
        "instances": {"cache": {
            "machine_type": "custom-1-512", "image": "debian-12", "networks": ["default"],
        }},
    }  # fmt: skip
    stack.set_config("unkai:overrides", auto.ConfigValue(json.dumps(grown)))
    try:
        lines: list[str] = []
        preview = stack.preview(on_output=lines.append)
    finally:
        stack.remove_config("unkai:overrides")
    assert set(preview.change_summary) == {"same", "create"}, "".join(lines)
    # The host, its image and network, web-4 (the only free host for it) and cache.
    assert preview.change_summary["create"] >= 5, preview.change_summary
    assert "kvm-c1" in "".join(lines)


def test_the_host_playbook_again_over_ssh_changes_nothing(stack, monkeypatch):
    """The KvmHost's own run, with the host_vars unkai render writes: a second run is a no-op."""
    from unkai.components import kvm_host_inputs
    from unkai.drivers.kvm_host import configure_kvm_host
    from unkai.provider.resources.kvm_host import _spec
    from unkai.toolchain import SSH_ENV, cached_probe

    monkeypatch.setenv(SSH_ENV, str(WRAPPER))
    host = FLEET.hosts[instances(stack)["db"]["host"]]
    inputs = kvm_host_inputs(host, env=FLEET, accelerator=cached_probe().accelerator)
    facts = configure_kvm_host(_spec(inputs))
    print(f"KvmHost playbook, second run over SSH on {host.name}: {facts.seconds:.1f} s")
    assert facts.changed == 0, f"{host.name}: {facts.changed} task(s) changed"


def test_unkai_ssh_logs_in_through_the_host(stack):
    assert ok(unkai("ssh", ENV, "web-0", "hostname")).strip() == "web-0"


def test_the_instance_secret_reached_the_guest_only(stack, deployed, tmp_path):
    value = stack.get_config("db-password").value
    shown = ok(unkai("ssh", ENV, "db", "sudo", "cat", "/etc/unkai/secrets.env"))
    assert value in shown
    # Not in the state (the file backend's files, as they rest on disk), the rendered
    # tree or what up printed.
    state = [p for p in (ROOT / ".unkai" / "state").rglob("*") if p.is_file()]
    assert any(p.name.startswith(ENV) for p in state), "the stack's state was not looked at"
    assert not [p for p in state if value.encode() in p.read_bytes()]
    ok(unkai("render", ENV, "--out", str(tmp_path / "rendered")))
    rendered = [p for p in (tmp_path / "rendered").rglob("*") if p.is_file()]
    assert rendered and not [p for p in rendered if value.encode() in p.read_bytes()]
    assert value not in deployed.stdout + deployed.stderr
    host = instances(stack)["db"]["host"]
    # The host keeps no copy outside the guest's own disks (the qcow2 volumes): not in the
    # seed now in its pool, libvirt's files and logs, or anywhere in /tmp or /root.
    found = on_host(
        host, "sh", "-c",
        f"grep -rl --exclude='*.qcow2' -- {shlex.quote(value)} /var/lib/libvirt"
        " /var/log/libvirt /etc/libvirt /tmp /root; test $? -le 1",
    )  # fmt: skip
    assert found.strip() == ""
    # The same search does find what is there: the domain's name in libvirt's own files.
    named = on_host(host, "sh", "-c", f"grep -rl --exclude='*.qcow2' -- {domain('db')}"
                    " /var/lib/libvirt /var/log/libvirt /etc/libvirt; test $? -le 1")  # fmt: skip
    assert named.strip(), "the search for the secret would find nothing at all"


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
        assert domain("db") in running_domains()[target]
        assert domain("db") not in running_domains()[before["host"]]
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
    assert domain("db") in running_domains_of(after["db"]["host"])


def test_the_console_shows_the_fleet_by_zone_and_the_dead_host(stack):
    """After the dead host: the hosts page in a real browser draws both zones, says the
    dead host was not read, and shows where each VM runs now, as the stack says."""
    (dead,) = KILLED
    where = {name: vm["host"] for name, vm in instances(stack).items()}
    with serve_console(UNKAI, ENV, root=ROOT, port=18471) as base, browser() as page:
        page.open(f"{base}/hosts")
        zones = page.evaluate("Array.from(document.querySelectorAll('h2')).map(h => h.innerText)")
        assert zones == ["zone fleet-a (2 hosts)", "zone fleet-b (2 hosts)"], zones
        shown = {r[0]: r for r in rows(page, "table.hosts")}
        assert set(shown) == set(FLEET.hosts), shown
        assert shown[dead][5] == "unread", shown[dead]
        page.screenshot(SCREENSHOTS / "fleet-hosts.png")
        page.open(f"{base}/instances")
        vms = {r[0]: r[1] for r in rows(page, "table")}
        alive = {name: host for name, host in where.items() if host != dead}
        assert vms == alive, (vms, where)
        said = page.evaluate("document.querySelector('p.error').innerText")
        assert said.startswith(f"host {dead} not read: "), said
        page.screenshot(SCREENSHOTS / "fleet-instances.png")


def running_domains_of(host: str) -> set[str]:
    return set(on_host(host, "virsh", "-c", "qemu:///system", "list", "--name").split())


# A domain and a volume of another project's ``fleet`` on a fleet host: names carry the
# project and the environment, so both live side by side, and destroy leaves it alone.
NEIGHBOUR_XML = """<domain type='qemu'><name>acme-fleet-db</name>
<memory unit='MiB'>64</memory><vcpu>1</vcpu>
<metadata><unkai:instance xmlns:unkai='https://unkai.dev/xmlns/libvirt/1.0'>
<unkai:project>acme</unkai:project>
<unkai:environment>fleet</unkai:environment></unkai:instance></metadata>
<os><type arch='x86_64'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='/var/lib/libvirt/images/unkai/acme-fleet-db-boot.qcow2'/>
<target dev='vda' bus='virtio'/></disk></devices></domain>"""


def test_destroy_leaves_nothing_on_any_host(stack):
    neighbour = instances(stack)["db"]["host"]
    on_host(
        neighbour, "sh", "-c",
        "virsh -q vol-create-as unkai acme-fleet-db-boot.qcow2 16M --format qcow2 && printf %s"
        f" {shlex.quote(NEIGHBOUR_XML)} > /tmp/n.xml && virsh -q define /tmp/n.xml",
    )  # fmt: skip
    assert {domain("db"), "acme-fleet-db"} <= set(
        on_host(neighbour, "virsh", "list", "--all", "--name").split()
    )
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
        assert f"removed a leftover of {ENV}: {KILLED[0]}: domain {domain('db')}" in destroyed
    assert f"checked {len(FLEET.hosts)} host(s)" in destroyed
    for host in sorted(FLEET.hosts):
        domains = on_host(host, "virsh", "-c", "qemu:///system", "list", "--all", "--name")
        volumes = on_host(host, "sh", "-c", "virsh -c qemu:///system vol-list unkai || true")
        if host == neighbour:  # the other project's are untouched
            assert domains.split() == ["acme-fleet-db"], f"{host}: {domains}"
            assert "acme-fleet-db-boot.qcow2" in volumes
            on_host(host, "sh", "-c", "virsh -q undefine acme-fleet-db && virsh -q vol-delete"
                    " acme-fleet-db-boot.qcow2 --pool unkai")  # fmt: skip
            continue
        assert domains.strip() == "", f"{host}: {domains}"
        assert ".qcow2" not in volumes and "seed" not in volumes, f"{host}: {volumes}"
