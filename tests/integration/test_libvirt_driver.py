"""The libvirt driver against libvirtd at ``qemu:///system``.

A domain is defined from rendered XML in a throwaway storage pool under a tmp folder
(never started): libvirt's definition has the rendered XML's fingerprint until a hand
change (memory, vCPUs, a detached disk). An isolated network defined from rendered XML
matches it until its IP range is changed by hand. The one pool-removal path keeps a pool
that holds volumes. One session does many calls, a started guest watched until a
timeout and a forced stop included, over one connection. Every object is
named ``unkai-test-drv-...`` and removed at the end.
"""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt as libvirt_binding
import pytest

from unkai.drivers import libvirt
from unkai.drivers.kvm_host import libvirt_state, remove_pool_if_empty
from unkai.drivers.libvirt import Session, domain_fingerprint, network_matches, session
from unkai.errors import DriverError
from unkai.model import Environment, Instance
from unkai.model import Network as NetworkModel
from unkai.render import (
    definition_hash,
    domain_name,
    libvirt_network_name,
    render_domain_xml,
    render_network_xml,
    seed_volume_name,
    volume_name,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from render_fixtures import SAMPLE

pytestmark = pytest.mark.integration

URI = "qemu:///system"
PREFIX = "unkai-test-drv-"


def virsh(*args: str) -> str:
    return subprocess.run(
        ["virsh", "--connect", URI, *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def suffix() -> str:
    return uuid.uuid4().hex[:6]


@pytest.fixture
def lv() -> Iterator[Session]:
    with session(URI) as opened:
        yield opened


@dataclass(frozen=True)
class Pool:
    name: str
    path: Path


@pytest.fixture
def pool(lv: Session, tmp_path: Path, suffix: str) -> Iterator[Pool]:
    """A storage pool of its own in a tmp folder; its volumes and itself go at the end."""
    made = Pool(f"{PREFIX}{suffix}", tmp_path / "pool")
    assert lv.ensure_pool(made.name, str(made.path)) == "created"
    try:
        yield made
    finally:
        if lv.pool(made.name) is not None:
            storage = lv.conn.storagePoolLookupByName(made.name)
            if not storage.isActive():
                storage.create(0)
            storage.refresh(0)
            for name in storage.listVolumes():
                lv.delete_volume(made.name, name)
            assert lv.remove_pool(made.name)


def _environment(suffix: str) -> tuple[Environment, Instance]:
    """The render fixture's environment plus an instance on a user and an isolated NIC."""
    document: dict[str, Any] = {
        **SAMPLE,
        "networks": {
            **SAMPLE["networks"],
            f"test-drv-{suffix}": {"mode": "isolated", "cidr": "10.214.9.0/24"},
        },
        "instances": {
            f"{PREFIX}{suffix}": {
                "machine_type": "e2-micro",
                "image": "debian-12",
                "networks": ["lan", f"test-drv-{suffix}"],
                "disks": [{"name": "data", "size_gb": 1}],
            }
        },
        "instance_groups": {},
    }
    env = Environment.model_validate(document)
    instance = next(i for i in env.all_instances() if i.name == f"{PREFIX}{suffix}")
    return env, instance


def test_domain_fingerprint_is_the_rendered_one_until_a_hand_change(
    lv: Session, pool: Pool, tmp_path: Path, suffix: str
):
    env, instance = _environment(suffix)
    for disk, size in (("boot", 1), ("data", 1)):
        lv.create_overlay(
            pool.name, volume_name(env.name, instance.name, disk), backing=None, size_gb=size
        )
    seed = tmp_path / "seed.iso"
    seed.write_bytes(b"not really an ISO" * 64)
    uploaded = lv.upload_volume(
        pool.name, seed_volume_name(env.name, instance.name), seed, fmt="raw"
    )
    assert uploaded.capacity == seed.stat().st_size
    rendered = render_domain_xml(
        instance,
        env=env,
        accelerator="tcg",
        disk_path=f"{pool.path}/{{domain}}-{{disk}}.qcow2",
        seed_path=uploaded.path,
        console_log=str(tmp_path / "console.log"),
    )
    name = domain_name(env.name, instance.name)
    try:
        lv.define_domain(name, rendered)
        info = lv.domain(name)
        assert info is not None and info.state == "shutoff"
        assert info.fingerprint == domain_fingerprint(rendered)
        assert info.definition_hash == definition_hash(instance)
        assert (info.memory_mb, info.vcpus, info.domain_type) == (1024, 2, "qemu")
        assert [(d.target, d.source, d.readonly) for d in info.disks] == [
            ("vda", f"{pool.path}/{name}-boot.qcow2", False),
            ("vdb", f"{pool.path}/{name}-data.qcow2", False),
            ("vdc", uploaded.path, True),
        ]
        assert [(n.type, n.source) for n in info.nics] == [
            ("network", f"unkai-{env.name}-test-drv-{suffix}"),
            ("user", None),
        ]

        lv.define_domain(name, rendered)  # a redefinition keeps the UUID
        again = lv.domain(name)
        assert again is not None and (again.uuid, again.fingerprint) == (
            info.uuid,
            info.fingerprint,
        )

        dom = lv.conn.lookupByName(name)
        dom.setMemoryFlags(512 * 1024, libvirt_binding.VIR_DOMAIN_AFFECT_CONFIG)
        smaller = lv.domain(name)
        assert smaller is not None
        assert (smaller.memory_mb, smaller.max_memory_mb) == (512, 1024)
        assert smaller.fingerprint != info.fingerprint

        dom.setVcpusFlags(
            4, libvirt_binding.VIR_DOMAIN_AFFECT_CONFIG | libvirt_binding.VIR_DOMAIN_VCPU_MAXIMUM
        )
        wider = lv.domain(name)
        assert wider is not None and (wider.vcpus, wider.max_vcpus) == (2, 4)
        assert wider.fingerprint not in (info.fingerprint, smaller.fingerprint)

        virsh("detach-disk", name, "vdb", "--config")
        fewer = lv.domain(name)
        assert fewer is not None and [d.target for d in fewer.disks] == ["vda", "vdc"]
        assert fewer.fingerprint not in (info.fingerprint, wider.fingerprint)

        lv.define_domain(name, rendered)  # what the provider does to repair drift
        repaired = lv.domain(name)
        assert repaired is not None
        assert (repaired.uuid, repaired.fingerprint) == (info.uuid, info.fingerprint)
        assert (repaired.memory_mb, repaired.max_vcpus) == (1024, 2)
    finally:
        lv.delete_domain(name)
    assert lv.domain(name) is None
    lv.delete_domain(name)  # gone is not an error


def test_isolated_network_matches_its_rendering_until_its_range_is_changed(
    lv: Session, suffix: str
):
    octet = random.randint(16, 250)  # a subnet of its own, not one a parallel test holds
    model = NetworkModel(name=f"test-drv-{suffix}", mode="isolated", cidr=f"10.215.{octet}.0/24")
    rendered = render_network_xml(model, environment="itest")
    name = libvirt_network_name("itest", model.name)
    assert name == f"unkai-itest-test-drv-{suffix}"
    try:
        lv.apply_network(name, rendered)
        info = lv.network(name)
        assert info is not None and info.active and info.autostart
        assert "<uuid>" in info.xml and "<forward" not in info.xml
        assert network_matches(rendered, info.xml)
        assert libvirt.network_active(URI, name) is True

        narrower = NetworkModel(
            name=model.name,
            mode="isolated",
            cidr=model.cidr,
            dhcp_start=f"10.215.{octet}.200",
        )
        lv.apply_network(
            name, render_network_xml(narrower, environment="itest")
        )  # a hand edit (same UUID) ...
        still = lv.network(name)
        assert still is not None and still.xml == info.xml  # ... not live before a restart
        net = lv.conn.networkLookupByName(name)
        net.destroy()
        net.create()
        changed = lv.network(name)
        assert changed is not None and f"start='10.215.{octet}.200'" in changed.xml
        assert not network_matches(rendered, changed.xml)
        assert network_matches(render_network_xml(narrower, environment="itest"), changed.xml)
    finally:
        lv.delete_network(name)
    assert lv.network(name) is None
    assert libvirt.network_active(URI, name) is None


def test_one_pool_removal_path(lv: Session, tmp_path: Path, suffix: str):
    name, path = f"{PREFIX}pool-{suffix}", tmp_path / "pool"
    lv.ensure_pool(name, str(path))
    try:
        lv.create_overlay(name, "kept.qcow2", backing=None, size_gb=1)
        state = libvirt_state(URI, name)
        assert state is not None
        assert (state.pool_path, state.pool_active, state.pool_autostart) == (str(path), True, True)
        assert lv.remove_pool(name) is False  # it holds a volume
        lv.conn.storagePoolLookupByName(name).destroy()
        assert remove_pool_if_empty(URI, name) is False  # counted after a start
        assert lv.pool(name) == libvirt.PoolInfo(name, str(path), True, True)
        lv.delete_volume(name, "kept.qcow2")
        assert remove_pool_if_empty(URI, name) is True
        assert lv.pool(name) is None and not path.exists()
        assert lv.remove_pool(name) is True  # already gone
    finally:
        if lv.pool(name) is not None:
            lv.delete_volume(name, "kept.qcow2")
            lv.remove_pool(name)


def test_a_pool_with_volumes_goes_when_asked_and_its_files_stay(
    lv: Session, tmp_path: Path, suffix: str
):
    name, path = f"{PREFIX}pool-{suffix}", tmp_path / "pool"
    lv.ensure_pool(name, str(path))
    try:
        volume = lv.create_overlay(name, "left.qcow2", backing=None, size_gb=1)
        assert lv.remove_pool(name, only_if_empty=False) is True
        assert lv.pool(name) is None and Path(volume.path).exists()
    finally:
        if lv.pool(name) is not None:
            lv.remove_pool(name, only_if_empty=False)


def test_one_session_is_one_connection(
    lv: Session, pool: Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
):
    opened: list[str] = []
    real_open = libvirt_binding.open

    def counting_open(uri: str) -> Any:
        opened.append(uri)
        return real_open(uri)

    monkeypatch.setattr(libvirt_binding, "open", counting_open)
    name = f"{PREFIX}conn-{suffix}"
    # A guest with a console and nothing to boot: it runs, and never says the marker.
    xml = (
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
        "<os><type>hvm</type></os><devices><serial type='pty'/><console type='pty'/>"
        "</devices></domain>"
    )
    with session(URI) as one:
        conn = one.conn
        assert one.versions()[0].count(".") == 2
        assert one.pool(pool.name) is not None
        one.create_overlay(pool.name, "conn.qcow2", backing=None, size_gb=1)
        assert one.volume(pool.name, "conn.qcow2") is not None
        assert one.network(f"{PREFIX}absent-{suffix}") is None
        try:
            one.define_domain(name, xml)
            with pytest.raises(DriverError, match="did not finish within 3 s"):
                # Polls the console stream and the run state on this session's connection.
                one.start_and_watch(name, "never said", timeout=3)
            running = one.domain(name)
            assert running is not None and running.state == "running"
            one.stop_domain(name, timeout=1)  # no ACPI answer: polled, then forced off
            stopped = one.domain(name)
            assert stopped is not None and stopped.state == "shutoff"
        finally:
            one.delete_domain(name)
        one.delete_volume(pool.name, "conn.qcow2")
        assert one.conn is conn
    assert opened == [URI]

    libvirt.domain(URI, name)
    libvirt.volume(URI, pool.name, "conn.qcow2")
    assert opened == [URI] * 3  # the wrappers open one session per call


def test_no_daemon_at_the_uri_is_a_driver_error():
    absent = "qemu:///system?socket=/nonexistent/libvirt-sock"
    with (
        pytest.raises(DriverError, match=r"cannot connect to libvirt at qemu:///system\?socket"),
        session(absent),
    ):
        pass
    assert libvirt_state(absent, "unkai") is None
