"""Is KVM usable here, or do VMs fall back to TCG?

``/dev/kvm`` may be absent, or may open and then hang a guest rather than fail, so the
only honest probe is a guest: a 512-byte boot sector that writes one byte to the
serial port and halts, booted by QEMU's firmware under a timeout. If the byte arrives
with ``-accel kvm`` KVM is usable; otherwise VMs run under TCG with the same domain
XML (only the domain type differs).

One KVM passes that probe and still cannot run the guests unkai makes: PVM
(``kvm_pvm``, the pagetable-based KVM of nested cloud machines). It runs a boot sector,
but only guest kernels built for PVM; a stock Debian kernel stops with a KVM internal
error a minute into its boot (measured here: every member of a group paused
"internal-error" 60-75 s after its start, its console still empty). So KVM is taken
only where that module is not loaded.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from unkai.toolchain._paths import cache_root
from unkai.toolchain._run import which

MARKER = b"U"

# Real-mode code: mov dx,0x3f8; mov al,'U'; out dx,al; hlt; jmp $-1
_CODE = bytes([0xBA, 0xF8, 0x03, 0xB0, MARKER[0], 0xEE, 0xF4, 0xEB, 0xFD])


def boot_sector() -> bytes:
    """The probe guest: a bootable 512-byte MBR that prints :data:`MARKER` on COM1."""
    return _CODE + bytes(510 - len(_CODE)) + b"\x55\xaa"


def probe_argv(qemu: str, accel: str, image: Path) -> list[str]:
    """The QEMU command that boots the probe guest with ``accel`` (``kvm`` or ``tcg``)."""
    # The probe runs the CPU model VMs will use (host-passthrough under KVM): here a
    # KVM that boots a default-CPU guest can still fail a Linux guest with the host's CPU.
    cpu = ["-cpu", "host"] if accel == "kvm" else []
    return [
        qemu,
        "-accel",
        accel,
        *cpu,
        "-machine",
        "pc",
        "-m",
        "16",
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
        "-drive",
        f"file={image},format=raw,if=ide",
    ]


@dataclass(frozen=True)
class KvmReport:
    """What the probe found.

    Attributes:
        accelerator: ``"kvm"`` or ``"tcg"``.
        reason: Why, in words a user can act on.
        seconds: How long the KVM attempt took.
    """

    accelerator: str
    reason: str
    seconds: float


def _boots(argv: list[str], timeout: float) -> tuple[bool, str]:
    deadline = time.monotonic() + timeout
    out = b""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            os.set_blocking(proc.stdout.fileno(), False)
            while time.monotonic() < deadline:
                out += proc.stdout.read() or b""
                if MARKER in out:
                    return True, ""
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace").strip()
                    return False, err or f"qemu exited with status {proc.returncode}"
                time.sleep(0.05)
            return False, f"the guest printed nothing within {timeout:.0f} s (KVM hangs)"
        finally:
            proc.kill()


PVM_MODULE = Path("/sys/module/kvm_pvm")
"""Present when this machine's KVM is PVM, which runs only guest kernels built for it."""

PROBE_VERSION = 2
"""Part of the cache key: a cached verdict of an older probe is not trusted."""


def probe(*, timeout: float = 10.0, pvm_module: Path = PVM_MODULE) -> KvmReport:
    """Boot the probe guest under KVM; report ``kvm`` if it runs, else ``tcg`` and why."""
    start = time.monotonic()
    qemu = which("qemu-system-x86_64")
    if qemu is None:
        return KvmReport("tcg", "qemu-system-x86_64 is not installed", 0.0)
    if pvm_module.exists():
        return KvmReport(
            "tcg",
            "/dev/kvm is PVM (the kvm_pvm module is loaded), which runs only guest kernels"
            " built for PVM; Debian's is not",
            0.0,
        )
    if not os.path.exists("/dev/kvm"):
        return KvmReport("tcg", "/dev/kvm is absent", 0.0)
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as err:
        return KvmReport("tcg", f"/dev/kvm does not open: {err.strerror}", 0.0)
    with tempfile.TemporaryDirectory(prefix="unkai-kvm-") as tmp:
        image = Path(tmp) / "probe.img"
        image.write_bytes(boot_sector())
        ok, why = _boots(probe_argv(str(qemu), "kvm", image), timeout)
    seconds = round(time.monotonic() - start, 2)
    if ok:
        return KvmReport("kvm", "a guest booted under KVM", seconds)
    return KvmReport("tcg", f"/dev/kvm opens but a guest does not run: {why}", seconds)


def share_kvm_device() -> bool:
    """Give ``/dev/kvm`` Debian's usual owner and mode (``root:kvm 0660``) if it lacks them.

    udev does this on a booted Debian; where no udev runs the device stays
    ``root:root 0600``. libvirt then finds KVM when it probes QEMU (as root) but not
    for the ``libvirt-qemu`` user, calls its capabilities stale, and probes QEMU again
    on every domain definition (tens of seconds each). With the usual mode its cache
    holds. Domains still use TCG where the probe says KVM does not work.

    Returns:
        True when the device was changed.
    """
    import grp
    import stat

    try:
        info = os.stat("/dev/kvm")
        kvm_gid = grp.getgrnam("kvm").gr_gid
    except (OSError, KeyError):
        return False
    if info.st_gid == kvm_gid and stat.S_IMODE(info.st_mode) & 0o060 == 0o060:
        return False
    os.chown("/dev/kvm", 0, kvm_gid)
    os.chmod("/dev/kvm", 0o660)
    return True


def _cache_file() -> Path:
    return cache_root() / "kvm-probe.json"


def cached_probe(*, refresh: bool = False) -> KvmReport:
    """The probe's result, remembered per kernel so ``unkai doctor`` stays fast."""
    key = f"{PROBE_VERSION}:{platform.release()}:{os.path.exists('/dev/kvm')}"
    path = _cache_file()
    if not refresh and path.is_file():
        try:
            data = json.loads(path.read_text())
            if data.get("key") == key:
                return KvmReport(**data["report"])
        except (ValueError, KeyError, TypeError):
            pass
    report = probe()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "report": asdict(report)}))
    return report
