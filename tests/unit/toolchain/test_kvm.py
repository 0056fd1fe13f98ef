from pathlib import Path

from unkai.toolchain import boot_sector
from unkai.toolchain._kvm import MARKER, probe, probe_argv


def test_boot_sector_is_a_bootable_mbr_that_prints_the_marker():
    sector = boot_sector()
    assert len(sector) == 512
    assert sector[-2:] == b"\x55\xaa"
    # mov dx, 0x3f8 (COM1); mov al, MARKER; out dx, al
    assert sector[:6] == bytes([0xBA, 0xF8, 0x03, 0xB0, MARKER[0], 0xEE])


def test_probe_command_uses_the_accelerator_and_a_raw_disk():
    argv = probe_argv("qemu-system-x86_64", "kvm", Path("/tmp/p.img"))
    assert argv[argv.index("-accel") + 1] == "kvm"
    assert argv[argv.index("-cpu") + 1] == "host"
    assert "file=/tmp/p.img,format=raw,if=ide" in argv
    assert argv[argv.index("-serial") + 1] == "stdio"
    assert "-no-reboot" in argv


def test_a_pvm_kvm_is_not_used_though_it_runs_the_boot_sector(tmp_path):
    """PVM runs the probe's boot sector, but not a stock Debian kernel: TCG, and why."""
    module = tmp_path / "kvm_pvm"
    module.mkdir()
    report = probe(pvm_module=module)
    assert report.accelerator == "tcg"
    assert "PVM" in report.reason and "kvm_pvm" in report.reason
