"""Which SSH client libvirt and Ansible run: the environment's wrapper, when named."""

from __future__ import annotations

from pathlib import Path

from unkai.cli.cloud import ssh_argv
from unkai.drivers._ssh import libvirt_uri
from unkai.drivers.ansible import AnsibleHost, playbook_plan
from unkai.drivers.libvirt import ConsoleWatch
from unkai.model import Host
from unkai.toolchain import SSH_ENV

REMOTE = "qemu+ssh://root@10.231.0.11/system"


def test_qemu_ssh_uris_name_the_wrapper(monkeypatch):
    monkeypatch.setenv(SSH_ENV, "/p/.unkai/ssh/fleet/ssh")
    assert libvirt_uri(REMOTE) == f"{REMOTE}?command=/p/.unkai/ssh/fleet/ssh&no_tty=1"
    assert libvirt_uri(f"{REMOTE}?keyfile=/k") == (
        f"{REMOTE}?keyfile=/k&command=/p/.unkai/ssh/fleet/ssh&no_tty=1"
    )
    assert libvirt_uri("qemu:///system") == "qemu:///system"
    assert libvirt_uri(f"{REMOTE}?command=/bin/ssh") == f"{REMOTE}?command=/bin/ssh"


def test_without_a_wrapper_uris_are_unchanged(monkeypatch):
    monkeypatch.delenv(SSH_ENV, raising=False)
    assert libvirt_uri(REMOTE) == REMOTE


def test_ansible_runs_the_wrapper_for_ssh_hosts(monkeypatch):
    monkeypatch.setenv(SSH_ENV, "/p/.unkai/ssh/fleet/ssh")
    host = AnsibleHost(name="kvm-1", connection="ssh", address="10.231.0.11", ssh_user="root")
    plan = playbook_plan(host, playbook="kvm-host.yml", playbooks_dir=Path("/p"))
    assert "ansible_ssh_executable: /p/.unkai/ssh/fleet/ssh" in plan.inventory
    local = AnsibleHost(name="localhost", connection="local", address="127.0.0.1", ssh_user=None)
    assert "ansible_ssh_executable" not in playbook_plan(local, playbook="x.yml").inventory


def test_console_watch_finds_the_marker_across_chunks_and_the_addresses():
    watch = ConsoleWatch("unkai: cloud-init finished")
    assert not watch.feed(b"ci-info: | eth0 | True | 10.232.0.17 | 255.255.255.0 |\n")
    assert not watch.feed(b"unkai: cloud-init fin")
    assert watch.feed(b"ished\n")
    assert watch.addresses() == ("10.232.0.17",)
    assert watch.tail(1) == "unkai: cloud-init finished"


def _host() -> Host:
    return Host.model_validate(
        {"name": "kvm-1", "address": "10.231.0.11", "ssh_user": "root", "cpus": 2,
         "memory_mb": 4096, "disk_gb": 20, "cpu_vendor": "amd", "pool": "a", "zone": "a"}
    )  # fmt: skip


def test_unkai_ssh_goes_through_the_host_or_the_forwarded_port():
    wrapper, known = Path("/p/ssh"), Path("/p/guests")
    through = ssh_argv(wrapper=wrapper, vm={"ips": ["10.232.0.17"]}, host=_host(),
                       guest_known_hosts=known)  # fmt: skip
    assert through[0] == "/p/ssh" and through[-3:] == ["-J", "10.231.0.11", "unkai@10.232.0.17"]
    forwarded = ssh_argv(wrapper=wrapper, vm={"ssh_port": 2201.0}, host=_host(),
                         guest_known_hosts=known)  # fmt: skip
    assert forwarded[-3:] == ["-p", "2201", "unkai@127.0.0.1"]
    assert f"UserKnownHostsFile={known}" in forwarded
    assert "StrictHostKeyChecking=yes" in forwarded


def test_a_remote_host_that_does_not_answer_is_unreachable_a_local_one_never():
    from unkai.drivers._ssh import remote_host, unreachable

    assert remote_host("qemu+ssh://root@10.231.0.11/system") == "10.231.0.11"
    assert remote_host("qemu:///system") is None
    assert unreachable("qemu:///system") is False
    # Nothing listens on port 1 of the loopback: refused at once.
    assert unreachable("qemu+ssh://root@127.0.0.1:1/system", timeout=2) is True


def test_guest_host_keys_come_from_the_console_and_are_pinned():
    from unkai.cli.cloud import guest_known_hosts
    from unkai.drivers.libvirt import guest_host_keys

    console = (
        "noise\n-----BEGIN SSH HOST KEY KEYS-----\n"
        "ecdsa-sha2-nistp256 AAAAE2VjZHNh root@web-0\n"
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 root@web-0\n"
        "-----END SSH HOST KEY KEYS-----\nmore\n"
    )
    keys = guest_host_keys(console)
    assert keys == ("ecdsa-sha2-nistp256 AAAAE2VjZHNh", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5")
    through = guest_known_hosts({"ips": ["10.232.0.17"], "host_keys": list(keys)})
    assert through.splitlines() == [f"10.232.0.17 {k}" for k in keys]
    forwarded = guest_known_hosts({"ssh_port": 2201.0, "host_keys": [keys[1]]})
    assert forwarded == f"[127.0.0.1]:2201 {keys[1]}\n"
