from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from unkai.errors import RenderError
from unkai.model import Environment
from unkai.render import (
    TCG_CPU_MODEL,
    UNKAI_XML_NAMESPACE,
    definition_hash,
    instance_mac,
    owned_by,
    owner,
    render_domain_xml,
    render_network_xml,
    ssh_port,
)

QEMU = "{http://libvirt.org/schemas/domain/qemu/1.0}"


def _instance(env: Environment, name: str) -> Any:
    return next(i for i in env.all_instances() if i.name == name)


def test_kvm_and_tcg_differ_only_in_type_and_cpu(env: Environment) -> None:
    db = _instance(env, "db")
    kvm = render_domain_xml(db, env=env, accelerator="kvm").splitlines()
    tcg = render_domain_xml(db, env=env, accelerator="tcg").splitlines()
    differing = [(a, b) for a, b in zip(kvm, tcg, strict=False) if a != b]
    assert differing[0] == (
        "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>",
        "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>",
    )
    kvm_root = ET.fromstring("\n".join(kvm))
    tcg_root = ET.fromstring("\n".join(tcg))
    assert kvm_root.find("cpu").get("mode") == "host-passthrough"  # type: ignore[union-attr]
    assert tcg_root.find("cpu/model").text == TCG_CPU_MODEL  # type: ignore[union-attr]
    for root in (kvm_root, tcg_root):
        root.remove(root.find("cpu"))  # type: ignore[arg-type]
        root.set("type", "x")
    assert ET.tostring(kvm_root) == ET.tostring(tcg_root)


def test_domain_sizes_disks_console_and_metadata(env: Environment) -> None:
    db = _instance(env, "db")
    root = ET.fromstring(
        render_domain_xml(
            db,
            env=env,
            accelerator="kvm",
            disk_path="/pool/{domain}/{disk}.qcow2",
            seed_path="/seed/{domain}.iso",
            console_log="/log/{domain}.log",
        )
    )
    assert root.findtext("name") == "dev-db"  # the environment, then the instance
    assert root.findtext("memory") == "16384" and root.find("memory").get("unit") == "MiB"  # type: ignore[union-attr]
    assert root.findtext("vcpu") == "2"
    disks = root.findall("devices/disk")
    assert [
        (d.get("device"), d.find("source").get("file"), d.find("target").get("dev")) for d in disks
    ] == [  # type: ignore[union-attr]
        ("disk", "/pool/dev-db/boot.qcow2", "vda"),
        ("disk", "/pool/dev-db/data.qcow2", "vdb"),
        ("disk", "/seed/dev-db.iso", "vdc"),
    ]
    assert all(d.find("target").get("bus") == "virtio" for d in disks)  # type: ignore[union-attr]
    assert disks[0].find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    serial = root.find("devices/serial")
    assert serial.get("type") == "pty" and serial.find("log").get("file") == "/log/dev-db.log"  # type: ignore[union-attr]
    meta = root.find(f"metadata/{{{UNKAI_XML_NAMESPACE}}}instance")
    assert meta is not None
    assert meta.findtext(f"{{{UNKAI_XML_NAMESPACE}}}definition-hash") == definition_hash(db)
    secret = meta.find(f"{{{UNKAI_XML_NAMESPACE}}}secret-ref")
    assert secret is not None and secret.attrib == {
        "env": "DB_PASSWORD",
        "pulumi-config": "db-password",
    }


def test_user_network_is_qemu_commandline_with_ssh_forward(env: Environment) -> None:
    db = _instance(env, "db")
    root = ET.fromstring(render_domain_xml(db, env=env, accelerator="tcg"))
    args = [arg.get("value") for arg in root.findall(f"{QEMU}commandline/{QEMU}arg")]
    port = ssh_port(env, db)
    assert args == [
        "-netdev",
        f"user,id=unkai-net0,domainname=dev.unkai.internal,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device",
        "virtio-net-pci,netdev=unkai-net0,"
        f"mac={instance_mac(env.name, db.name, 'lan')},bus=pcie.0,addr=0x10",
    ]
    interfaces = root.findall("devices/interface")
    assert [
        (i.get("type"), i.find("source").get("network"), i.find("mac").get("address"))
        for i in interfaces
    ] == [  # type: ignore[union-attr]
        ("network", "unkai-dev-backend", instance_mac(env.name, db.name, "backend"))
    ]


def test_bridged_and_scsi(env: Environment) -> None:
    gw = _instance(env, "gw")
    root = ET.fromstring(render_domain_xml(gw, env=env, accelerator="kvm"))
    interfaces = root.findall("devices/interface")
    assert [i.get("type") for i in interfaces] == ["bridge", "network"]
    assert interfaces[0].find("source").get("bridge") == "br0"  # type: ignore[union-attr]
    assert root.find("devices/controller").get("model") == "virtio-scsi"  # type: ignore[union-attr]
    targets = [d.find("target").get("dev") for d in root.findall("devices/disk")]  # type: ignore[union-attr]
    assert targets == ["vda", "sda", "vdb"]  # the seed follows the virtio disks
    assert root.find(f"{QEMU}commandline") is None


def test_ssh_port_is_base_plus_index(env: Environment) -> None:
    names = [i.name for i in env.all_instances()]
    assert names == ["db", "gw", "web-0", "web-1"]
    assert [ssh_port(env, i) for i in env.all_instances()] == [2200, 2201, 2202, 2203]


def test_ssh_port_needs_the_setting(sample_document: dict[str, Any]) -> None:
    sample_document["settings"] = {"domain": "x.internal"}
    env = Environment.model_validate(sample_document)
    with pytest.raises(RenderError, match=r"settings\.ssh_port_base"):
        render_domain_xml(_instance(env, "web-0"), env=env, accelerator="kvm")
    sample_document["settings"] = {"ssh_port_base": 65534}
    env = Environment.model_validate(sample_document)
    with pytest.raises(RenderError, match="exceeds 65535"):
        ssh_port(env, _instance(env, "web-1"))


def test_unknown_accelerator(env: Environment) -> None:
    with pytest.raises(RenderError, match="allowed: kvm, tcg"):
        render_domain_xml(_instance(env, "db"), env=env, accelerator="xen")  # type: ignore[arg-type]


def test_network_xml_modes(env: Environment) -> None:
    nat = ET.fromstring(render_network_xml(env.networks["backend"], environment=env.name))
    assert nat.findtext("name") == "unkai-dev-backend"  # never libvirt's own "default"
    assert nat.find("forward").get("mode") == "nat"  # type: ignore[union-attr]
    assert nat.find("ip").attrib == {"address": "10.20.0.1", "netmask": "255.255.255.0"}  # type: ignore[union-attr]
    assert nat.find("ip/dhcp/range").attrib == {"start": "10.20.0.128", "end": "10.20.0.254"}  # type: ignore[union-attr]
    assert nat.find("domain").get("name") == "backend.internal"  # type: ignore[union-attr]
    isolated = ET.fromstring(render_network_xml(env.networks["storage"], environment=env.name))
    assert isolated.find("forward") is None
    bridged = ET.fromstring(render_network_xml(env.networks["uplink"], environment=env.name))
    assert bridged.find("forward").get("mode") == "bridge"  # type: ignore[union-attr]
    assert bridged.find("ip") is None
    with pytest.raises(RenderError, match="user network"):
        render_network_xml(env.networks["lan"], environment=env.name)


def test_direct_kernel_boot(sample_document: dict[str, Any]) -> None:
    sample_document["vm_images"]["debian-12"].update(
        {"kernel": "boot/vmlinuz", "initrd": "boot/initrd.img", "kernel_cmdline": "console=ttyS0"}
    )
    env = Environment.model_validate(sample_document)
    root = ET.fromstring(render_domain_xml(_instance(env, "gw"), env=env, accelerator="kvm"))
    assert (
        root.findtext("os/kernel") == "/var/lib/libvirt/boot/unkai/dev/debian-12-2024.06.1/vmlinuz"
    )
    assert root.findtext("os/initrd").endswith("/initrd.img")  # type: ignore[union-attr]
    assert root.findtext("os/cmdline") == "console=ttyS0"
    assert root.find("os/boot") is None


def test_instance_from_another_environment(env: Environment) -> None:
    from unkai.model import Instance

    stray = Instance(name="stray", machine_type="e2-small", image="other", networks=["nowhere"])
    with pytest.raises(RenderError, match="image 'other', network 'nowhere'"):
        render_domain_xml(stray, env=env, accelerator="kvm")


def test_names_carry_the_project_and_the_environment(env: Environment) -> None:
    mine = env.model_copy(update={"project": "acme"})
    db = _instance(mine, "db")
    root = ET.fromstring(render_domain_xml(db, env=mine, accelerator="tcg"))
    assert root.findtext("name") == "acme-dev-db"
    meta = root.find(f"metadata/{{{UNKAI_XML_NAMESPACE}}}instance")
    assert meta is not None and meta.findtext(f"{{{UNKAI_XML_NAMESPACE}}}project") == "acme"
    sources = [d.find("source").get("file") for d in root.findall("devices/disk")]  # type: ignore[union-attr]
    assert all("/acme-dev-db-" in s for s in sources), sources
    assert owner(mine) == "acme-dev" and owner(env) == "dev"
    assert owned_by("acme-dev", "acme-dev-db-boot.qcow2")
    assert owned_by("acme-dev", "unkai-acme-dev-default")  # its network
    assert not owned_by("acme-dev", "dev-db-boot.qcow2")  # another project's, or none
