"""The libvirt driver's pure parts: XML of pools and volumes, the seed ISO command,
console parsing, and reading domain and network XML (fingerprint, network match)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from unkai import render
from unkai.drivers import libvirt
from unkai.drivers.libvirt import (
    DiskInfo,
    NicInfo,
    domain_fingerprint,
    domain_info,
    guest_addresses,
    network_matches,
    pool_xml,
    seed_iso_argv,
    volume_xml,
    with_uuid,
)
from unkai.drivers.vms import taken_over
from unkai.errors import DriverError
from unkai.kinds import InstanceState
from unkai.model import Environment, Instance

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from render_fixtures import sample_environment


def test_pool_and_volume_xml():
    assert pool_xml("unkai", "/var/lib/x") == (
        "<pool type='dir'><name>unkai</name><target><path>/var/lib/x</path></target></pool>"
    )
    overlay = volume_xml("vm-boot.qcow2", capacity=4 * 1024**3, fmt="qcow2", backing="/b.qcow2")
    assert "<capacity unit='bytes'>4294967296</capacity>" in overlay
    assert "<backingStore><path>/b.qcow2</path><format type='qcow2'/></backingStore>" in overlay
    assert "<mode>0600</mode>" in overlay
    assert "backingStore" not in volume_xml("data.qcow2", capacity=1, fmt="qcow2")


def test_seed_iso_is_labelled_cidata_and_packs_present_files(tmp_path: Path):
    (tmp_path / "user-data").write_text("#cloud-config\n")
    (tmp_path / "meta-data").write_text("instance-id: x\n")
    argv = seed_iso_argv(tmp_path, tmp_path / "seed.iso")
    assert argv[argv.index("-volid") + 1] == "cidata"
    assert argv[-2:] == [str(tmp_path / "user-data"), str(tmp_path / "meta-data")]


def test_redefinition_carries_the_existing_uuid():
    xml = "<domain type='qemu'>\n  <name>db</name>\n  <memory/>\n</domain>"
    assert "<name>db</name>\n  <uuid>1234</uuid>\n  <memory/>" in with_uuid(xml, "1234")


def test_guest_addresses_from_cloud_init_console():
    console = (
        "ci-info: |  eth0  | True |          10.0.2.15           | 255.255.255.0 |\n"
        "ci-info: |   lo   | True |          127.0.0.1           | 255.0.0.0     |\n"
        "ci-info: |  eth1  | False |          10.9.9.9           | 255.0.0.0     |\n"
    )
    assert guest_addresses(console) == ("10.0.2.15",)


def test_the_metadata_namespace_is_the_renderers():
    assert libvirt.UNKAI_XML_NAMESPACE == render.UNKAI_XML_NAMESPACE


# --- domains --------------------------------------------------------------------------

# What libvirt 9.0.0 returned (virsh dumpxml --inactive) after defining the domain that
# render_domain_xml makes of the sample environment's ``db`` with accelerator tcg: it
# added the UUID, the machine version, <boot>, the emulator, controllers, PCI addresses,
# inputs, audio, the console's log, and wrote memory in KiB and metadata with its own
# quotes. tests/integration/test_libvirt_driver.py proves the same against the daemon;
# when the template or the sample changes, define the new rendering and capture this
# again (virsh dumpxml --inactive).
LIBVIRT_DB = """\
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>dev-db</name>
  <uuid>62a9e47a-d010-4cc9-9774-72827c2f101b</uuid>
  <title>db (dev)</title>
  <metadata>
    <unkai:instance xmlns:unkai="https://unkai.dev/xmlns/libvirt/1.0">
      <unkai:environment>dev</unkai:environment>
      <unkai:definition-hash>d29f4c16fe63c5dffb6185408d8fcf4cb28da4cf63d1caca572140b63395569d</unkai:definition-hash>
      <unkai:machine-type>n2-highmem-2</unkai:machine-type>
      <unkai:image name="debian-12-db" version="1"/>
      <unkai:hostname>db</unkai:hostname>
      <unkai:label key="tier" value="db"/>
      <unkai:metadata key="owner" value="data-team"/>
      <unkai:secret-ref env="DB_PASSWORD" pulumi-config="db-password"/>
    </unkai:instance>
  </metadata>
  <memory unit='KiB'>16777216</memory>
  <currentMemory unit='KiB'>16777216</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <kernel>/var/lib/libvirt/boot/unkai/dev/debian-12-db-1/vmlinuz</kernel>
    <initrd>/var/lib/libvirt/boot/unkai/dev/debian-12-db-1/initrd.img</initrd>
    <cmdline>root=LABEL=rootfs ro console=ttyS0,115200n8 net.ifnames=0 no_timer_check panic=10</cmdline>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='forbid'>qemu64</model>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/unkai/dev-db-boot.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <serial>boot</serial>
      <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/unkai/dev-db-data.qcow2'/>
      <target dev='vdb' bus='virtio'/>
      <serial>data</serial>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/unkai/dev-db-seed.iso'/>
      <target dev='vdc' bus='virtio'/>
      <readonly/>
      <serial>cidata</serial>
      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
    </disk>
    <controller type='usb' index='0' model='qemu-xhci'>
      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </controller>
    <controller type='sata' index='0'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/>
    </controller>
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='pci' index='1' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='1' port='0x8'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0' multifunction='on'/>
    </controller>
    <controller type='pci' index='2' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='2' port='0x9'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x1'/>
    </controller>
    <controller type='pci' index='3' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='3' port='0xa'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/>
    </controller>
    <controller type='pci' index='4' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='4' port='0xb'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x3'/>
    </controller>
    <controller type='pci' index='5' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='5' port='0xc'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x4'/>
    </controller>
    <controller type='pci' index='6' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='6' port='0xd'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x5'/>
    </controller>
    <controller type='pci' index='7' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='7' port='0xe'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x6'/>
    </controller>
    <controller type='pci' index='8' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='8' port='0xf'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x7'/>
    </controller>
    <interface type='network'>
      <mac address='52:54:27:c3:73:9b'/>
      <source network='unkai-dev-backend'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
    <serial type='pty'>
      <log file='/var/log/libvirt/qemu/unkai-dev-db-console.log' append='off'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
    </serial>
    <console type='pty'>
      <log file='/var/log/libvirt/qemu/unkai-dev-db-console.log' append='off'/>
      <target type='serial' port='0'/>
    </console>
    <input type='mouse' bus='ps2'/>
    <input type='keyboard' bus='ps2'/>
    <audio id='1' type='none'/>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x0'/>
    </memballoon>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
      <address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/>
    </rng>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='user,id=unkai-net0,domainname=dev.unkai.internal,hostfwd=tcp:127.0.0.1:2200-:22'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='virtio-net-pci,netdev=unkai-net0,mac=52:54:62:03:2f:03,bus=pcie.0,addr=0x10'/>
  </qemu:commandline>
</domain>
"""  # noqa: E501


@pytest.fixture
def env() -> Environment:
    return sample_environment()


def _db(env: Environment) -> Instance:
    return next(i for i in env.all_instances() if i.name == "db")


def _rendered_db(env: Environment) -> str:
    return render.render_domain_xml(_db(env), env=env, accelerator="tcg")


def _changed(xml: str, old: str, new: str) -> str:
    assert old in xml, old
    return xml.replace(old, new, 1)


def test_rendered_and_libvirt_expanded_domain_have_one_fingerprint(env: Environment):
    rendered = _rendered_db(env)
    assert rendered != LIBVIRT_DB
    assert domain_fingerprint(rendered) == domain_fingerprint(LIBVIRT_DB)
    assert domain_info(rendered, state="shutoff").fingerprint == domain_fingerprint(LIBVIRT_DB)


def test_domain_info_reads_the_libvirt_definition(env: Environment):
    info = domain_info(LIBVIRT_DB, state="shutoff")
    assert (info.name, info.uuid, info.state) == (
        "dev-db",
        "62a9e47a-d010-4cc9-9774-72827c2f101b",
        "shutoff",
    )
    assert (info.memory_mb, info.max_memory_mb, info.vcpus, info.max_vcpus) == (
        16384,
        16384,
        2,
        2,
    )
    assert info.domain_type == "qemu"
    assert info.definition_hash == render.definition_hash(_db(env))
    pool = "/var/lib/libvirt/images/unkai"
    assert info.disks == (
        DiskInfo("vda", "virtio", "disk", f"{pool}/dev-db-boot.qcow2", "qcow2", readonly=False),
        DiskInfo("vdb", "virtio", "disk", f"{pool}/dev-db-data.qcow2", "qcow2", readonly=False),
        DiskInfo("vdc", "virtio", "disk", f"{pool}/dev-db-seed.iso", "raw", readonly=True),
    )
    assert info.nics == (
        NicInfo(
            "network", "unkai-dev-backend", "virtio", render.instance_mac(env.name, "db", "backend")
        ),
        NicInfo("user", None, "virtio-net-pci", render.instance_mac(env.name, "db", "lan")),
    )


def test_boot_time_memory_and_vcpus_are_read_apart_from_the_ceilings():
    info = domain_info(
        _changed(
            _changed(
                LIBVIRT_DB,
                "<currentMemory unit='KiB'>16777216</currentMemory>",
                "<currentMemory unit='KiB'>8388608</currentMemory>",
            ),
            "<vcpu placement='static'>2</vcpu>",
            "<vcpu placement='static' current='1'>4</vcpu>",
        ),
        state="shutoff",
    )
    assert (info.memory_mb, info.max_memory_mb, info.vcpus, info.max_vcpus) == (8192, 16384, 1, 4)


_DATA_DISK = """\
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/unkai/dev-db-data.qcow2'/>
      <target dev='vdb' bus='virtio'/>
      <serial>data</serial>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
"""
_CDROM = """\
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/tmp/debian.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
"""
_NIC = """\
    <interface type='network'>
      <mac address='52:54:27:c3:73:9b'/>
      <source network='unkai-dev-backend'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
"""
_USB = "    <controller type='usb'"
_USB_CONTROLLER = """\
    <controller type='usb' index='0' model='qemu-xhci'>
      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </controller>
"""

# Each hand change: what it replaces in LIBVIRT_DB (every occurrence) and with what.
HAND_CHANGES = {
    "virsh setmem --config": (
        "<currentMemory unit='KiB'>16777216</currentMemory>",
        "<currentMemory unit='KiB'>8388608</currentMemory>",
    ),
    "virsh setmaxmem --config": (
        "<memory unit='KiB'>16777216</memory>",
        "<memory unit='KiB'>33554432</memory>",
    ),
    "virsh setvcpus --config --maximum": (
        "<vcpu placement='static'>2</vcpu>",
        "<vcpu placement='static' current='2'>4</vcpu>",
    ),
    "virsh setvcpus --config": (
        "<vcpu placement='static'>2</vcpu>",
        "<vcpu placement='static' current='1'>2</vcpu>",
    ),
    "domain type": ("<domain type='qemu'", "<domain type='kvm'"),
    "kernel cmdline": ("panic=10</cmdline>", "panic=10 quiet</cmdline>"),
    "kernel": ("debian-12-db-1/vmlinuz", "debian-12-db-2/vmlinuz"),
    "disk detached": (_DATA_DISK, ""),
    "cdrom attached": (_USB, _CDROM + _USB),
    "disk source": ("db-data.qcow2'/>", "db-data-old.qcow2'/>"),
    "disk bus": ("<target dev='vdb' bus='virtio'/>", "<target dev='vdb' bus='sata'/>"),
    "disk read-write": ("      <readonly/>\n", ""),
    "disk format": ("<driver name='qemu' type='raw'/>", "<driver name='qemu' type='qcow2'/>"),
    "NIC model": ("<model type='virtio'/>", "<model type='e1000'/>"),
    "NIC network": ("<source network='unkai-dev-backend'/>", "<source network='default'/>"),
    "NIC MAC": ("52:54:27:c3:73:9b", "52:54:00:00:00:01"),
    "NIC detached": (_NIC, ""),
    "user NIC forward": ("hostfwd=tcp:127.0.0.1:2200-:22", "hostfwd=tcp:0.0.0.0:2200-:22"),
    "console log": ("unkai-dev-db-console.log", "unkai-db-console-old.log"),
    "CPU model": (">qemu64</model>", ">max</model>"),
    "unkai metadata": ("<unkai:hostname>db<", "<unkai:hostname>db2<"),
}

# What libvirt fills in or rewrites on its own, or unkai does not declare.
SAME_DEFINITION = {
    "UUID": ("62a9e47a-d010-4cc9-9774-72827c2f101b", "00000000-0000-0000-0000-000000000001"),
    "memory in GiB": ("<memory unit='KiB'>16777216</memory>", "<memory unit='GiB'>16</memory>"),
    "memory in bytes": (
        "<currentMemory unit='KiB'>16777216</currentMemory>",
        "<currentMemory unit='bytes'>17179869184</currentMemory>",
    ),
    "machine version": ("machine='pc-q35-7.2'", "machine='pc-q35-8.0'"),
    "boot order": ("    <boot dev='hd'/>\n", ""),
    "PCI address": ("bus='0x04' slot='0x00'", "bus='0x09' slot='0x00'"),
    "controller": (_USB_CONTROLLER, ""),
    "disk order": (_DATA_DISK + "    <disk", "    <disk"),
    "title": ("<title>db (dev)</title>", "<title>renamed</title>"),
    "metadata quoting": ('name="debian-12-db" version="1"', "version='1' name='debian-12-db'"),
}


def _edited(old: str, new: str, *, disk_order: bool = False) -> str:
    assert old in LIBVIRT_DB, old
    edited = LIBVIRT_DB.replace(old, new)
    if disk_order:  # the data disk goes after the seed disk
        edited = edited.replace(_USB, _DATA_DISK + _USB, 1)
    return edited


@pytest.mark.parametrize("change", sorted(HAND_CHANGES))
def test_a_hand_change_changes_the_fingerprint(change: str):
    changed = _edited(*HAND_CHANGES[change])
    assert domain_fingerprint(changed) != domain_fingerprint(LIBVIRT_DB)


@pytest.mark.parametrize("change", sorted(SAME_DEFINITION))
def test_what_libvirt_fills_in_keeps_the_fingerprint(change: str):
    same = _edited(*SAME_DEFINITION[change], disk_order=change == "disk order")
    assert domain_fingerprint(same) == domain_fingerprint(LIBVIRT_DB)


def _memory(element: str) -> str:
    return f"<domain type='qemu'><name>m</name>{element}</domain>"


@pytest.mark.parametrize(
    "element",
    [
        "<memory unit='KiB'>1048576</memory>",
        "<memory>1048576</memory>",
        "<memory unit='k'>1048576</memory>",
        "<memory unit='MiB'>1024</memory>",
        "<memory unit='M'>1024</memory>",
        "<memory unit='GiB'>1</memory>",
        "<memory unit='g'>1</memory>",
        "<memory unit='b'>1073741824</memory>",
        "<memory unit='bytes'>1073741824</memory>",
    ],
)
def test_memory_is_compared_in_kib_whatever_the_unit(element: str):
    one_gib = _memory("<memory unit='KiB'>1048576</memory>")
    assert domain_fingerprint(_memory(element)) == domain_fingerprint(one_gib)
    assert domain_info(_memory(element), state="shutoff").memory_mb == 1024


def test_decimal_units_are_not_binary_ones():
    assert domain_info(_memory("<memory unit='GB'>1</memory>"), state="x").max_memory_mb == 953
    assert domain_fingerprint(_memory("<memory unit='GB'>1</memory>")) != domain_fingerprint(
        _memory("<memory unit='GiB'>1</memory>")
    )


def test_unreadable_domain_xml_is_a_driver_error():
    with pytest.raises(DriverError, match="domain: the XML does not parse"):
        domain_fingerprint("<domain><name>x</domain>")
    with pytest.raises(DriverError, match="memory unit 'furlong'"):
        domain_fingerprint(_memory("<memory unit='furlong'>1</memory>"))


# --- networks -------------------------------------------------------------------------

# What libvirt 9.0.0 returned (virsh net-dumpxml) for the sample environment's networks,
# defined from render_network_xml and started (the bridged one only defined).
LIBVIRT_NETWORKS = {
    "backend": """\
<network>
  <name>unkai-dev-backend</name>
  <uuid>a4eb9485-2724-471d-a0ca-76fa51bef7cf</uuid>
  <forward mode='nat'>
    <nat>
      <port start='1024' end='65535'/>
    </nat>
  </forward>
  <bridge name='virbr1' stp='on' delay='0'/>
  <mac address='52:54:00:7e:a7:3f'/>
  <domain name='backend.internal' localOnly='yes'/>
  <ip address='10.20.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.20.0.128' end='10.20.0.254'/>
    </dhcp>
  </ip>
</network>
""",
    "storage": """\
<network>
  <name>unkai-dev-storage</name>
  <uuid>a7a202ce-b289-463c-8e05-c280f31f8935</uuid>
  <bridge name='virbr1' stp='on' delay='0'/>
  <mac address='52:54:00:a4:b8:24'/>
  <ip address='10.30.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.30.0.128' end='10.30.0.254'/>
    </dhcp>
  </ip>
</network>
""",
    "uplink": """\
<network>
  <name>unkai-dev-uplink</name>
  <uuid>259def51-5de0-432d-9b55-36e37df3a884</uuid>
  <forward mode='bridge'/>
  <bridge name='br0'/>
</network>
""",
}


@pytest.mark.parametrize("network", sorted(LIBVIRT_NETWORKS))
def test_rendered_network_matches_what_libvirt_made_of_it(env: Environment, network: str):
    rendered = render.render_network_xml(env.networks[network], environment=env.name)
    assert network_matches(rendered, LIBVIRT_NETWORKS[network])
    assert network_matches(rendered, rendered)


@pytest.mark.parametrize(
    ("network", "old", "new"),
    [
        pytest.param("backend", "end='10.20.0.254'", "end='10.20.0.200'", id="dhcp range"),
        pytest.param("storage", "start='10.30.0.128'", "start='10.30.0.2'", id="dhcp start"),
        pytest.param("backend", "<forward mode='nat'>", "<forward mode='route'>", id="forward"),
        pytest.param("uplink", "<bridge name='br0'/>", "<bridge name='br1'/>", id="bridge"),
        pytest.param("backend", "netmask='255.255.255.0'", "netmask='255.255.0.0'", id="mask"),
        pytest.param("backend", "address='10.20.0.1'", "address='10.20.0.2'", id="gateway"),
        pytest.param("backend", "localOnly='yes'", "localOnly='no'", id="dns local"),
        pytest.param("backend", "unkai-dev-backend", "unkai-other", id="name"),
        pytest.param(
            "storage",
            "  <bridge name='virbr1'",
            "  <forward mode='nat'/>\n  <bridge name='virbr1'",
            id="isolated now forwards",
        ),
        pytest.param(
            "storage",
            "    <dhcp>\n      <range start='10.30.0.128' end='10.30.0.254'/>\n    </dhcp>\n",
            "",
            id="dhcp removed",
        ),
    ],
)
def test_a_hand_changed_network_does_not_match(env: Environment, network: str, old: str, new: str):
    live = LIBVIRT_NETWORKS[network]
    assert old in live
    rendered = render.render_network_xml(env.networks[network], environment=env.name)
    assert not network_matches(rendered, live.replace(old, new))


def test_what_libvirt_adds_to_a_network_does_not_matter(env: Environment):
    live = LIBVIRT_NETWORKS["backend"].replace(
        "    </dhcp>",
        "      <host mac='52:54:00:00:00:09' ip='10.20.0.9'/>\n    </dhcp>",
    )
    live = live.replace("a4eb9485", "b4eb9485").replace("<network>", "<network connections='2'>")
    assert network_matches(
        render.render_network_xml(env.networks["backend"], environment=env.name), live
    )


def test_each_rendered_element_needs_a_live_element_of_its_own():
    rendered = "<network><ip address='10.0.0.1'/><ip address='10.0.0.1'/></network>"
    assert not network_matches(rendered, "<network><ip address='10.0.0.1'/></network>")
    two = "<network><ip address='10.0.0.1' prefix='24'/><ip address='10.0.0.1'/></network>"
    assert network_matches("<network><ip address='10.0.0.1'/><ip prefix='24'/></network>", two)


def test_the_owner_of_a_domain_is_read_from_its_metadata(env: Environment):
    """What destroy's sweep and an adopting create rely on: unkai's own domains say whose."""
    rendered = domain_info(_rendered_db(env), state="")
    assert rendered.environment == env.name
    assert domain_info(LIBVIRT_DB, state="").environment == rendered.environment
    foreign = "<domain type='kvm'><name>x</name><memory>1024</memory><vcpu>1</vcpu></domain>"
    assert domain_info(foreign, state="").environment is None


def test_a_host_pin_is_placement_not_definition(env: Environment):
    db = _db(env)
    pinned = db.model_copy(update={"host": "somewhere-else"})
    moved = render.render_domain_xml(pinned, env=env, accelerator="tcg")
    assert moved == _rendered_db(env)


def test_a_domain_made_since_by_another_is_not_the_instances_to_delete():
    """An instance deletes the domain of its name only when it is the one it made (its UUID)."""
    made = domain_info(LIBVIRT_DB, state="running")
    mine = InstanceState.model_construct(uuid=made.uuid)
    assert made.uuid and not taken_over(made, mine)
    remade = dataclasses.replace(made, uuid="0d6f5c1e-0000-4000-8000-000000000001")
    assert taken_over(remade, mine)
    assert not taken_over(None, mine)  # already gone
    # A state from before UUIDs were recorded, or a domain without one: it is deleted.
    assert not taken_over(remade, InstanceState.model_construct(uuid=None))
    assert not taken_over(dataclasses.replace(made, uuid=""), mine)
