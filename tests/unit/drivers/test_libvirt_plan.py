from pathlib import Path

from unkai.drivers.libvirt import guest_addresses, pool_xml, seed_iso_argv, volume_xml, with_uuid


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
