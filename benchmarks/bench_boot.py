"""Benchmark: a VM's boot to "cloud-init finished", default and lean images, unkai vs raw QEMU.

Run: .venv/bin/python benchmarks/bench_boot.py [--runs N] [--json]

For each profile (``default``, ``lean``), side by side in one run:

* **raw QEMU**: the image unkai built (from its cache; built when missing) booted by
  ``qemu-system-x86_64`` by hand with the settings unkai's domain XML gives it (q35,
  ``qemu64``, TCG, 1 vCPU, 1 GiB, virtio disk, seed ISO and RNG, user networking, direct
  kernel boot with the profile's command line) and the seed unkai renders for the VM;
  seconds from starting QEMU to the "cloud-init finished" line on the serial console.
* **unkai**: ``examples/vm-alone`` deployed with the real engine (stack config
  ``profile``); the Instance's ``boot_seconds`` (domain start to the same line, as the
  provider measures it), then destroyed.

Prints one line per measurement and a table of medians with the ratios: unkai / raw for
each profile (target ≤ 1.2) and lean / default. Nothing it makes is left behind.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pulumi import automation as auto

from unkai import render
from unkai.cli._workspace import select_stack
from unkai.components import VirtualMachineArgs, machine_environment, vm_image_inputs
from unkai.drivers.images import build_image
from unkai.drivers.libvirt import seed_iso_argv
from unkai.model import Host, Instance, VmImage
from unkai.provider.resources.image_build import image_spec as vm_image_spec
from unkai.toolchain import cache_root

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "vm-alone"
MARKER = "cloud-init finished"
TIMEOUT = 600.0


def _image(profile: str) -> VmImage:
    # The same image as examples/vm-alone's (and local's): one cache entry serves both.
    return VmImage(
        name="debian-12", version="12.0.1", packages=["cloud-init", "openssh-server"],
        disk_gb=4, profile=profile,  # type: ignore[arg-type]
    )  # fmt: skip


HOST = Host(
    name="localhost", address="127.0.0.1", connection="local", cpus=2, memory_mb=8192,
    disk_gb=40, cpu_vendor="amd", pool="local", zone="local",
)  # fmt: skip


def raw_boot(profile: str, work: Path) -> float:
    """Seconds from starting QEMU by hand to the finished line, for ``profile``'s image."""
    image = _image(profile)
    spec = vm_image_spec(vm_image_inputs(image, HOST, environment="bench", root=ROOT))
    built = build_image(spec, cache_root(), say=lambda line: print(f"  {line}"))
    instance = Instance(name="hello", machine_type="custom-1-1024", image=image.name,
                        zone="local")  # fmt: skip
    env = machine_environment(
        VirtualMachineArgs(instance, image, HOST), name="bench", project="bench"
    )
    seed = work / f"seed-{profile}"
    seed.mkdir()
    files = render.render_cloud_init(env.all_instances()[0], env)
    for name, text in files.items():
        (seed / name).write_text(text)
    iso = work / f"seed-{profile}.iso"
    subprocess.run(seed_iso_argv(seed, iso), check=True, capture_output=True)
    mac = re.search(r'macaddress: "?([0-9a-f:]{17})', files["network-config"])
    overlay = work / f"overlay-{profile}.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(built.disk),
         str(overlay)], check=True,
    )  # fmt: skip
    console = work / f"console-{profile}.log"
    cmdline = render.LEAN_KERNEL_CMDLINE if profile == "lean" else render.DEFAULT_KERNEL_CMDLINE
    argv = [
        "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-cpu", "qemu64",
        "-m", "1024", "-smp", "1", "-display", "none", "-monitor", "none", "-no-reboot",
        "-kernel", str(built.kernel), "-initrd", str(built.initrd), "-append", cmdline,
        "-drive", f"file={overlay},if=virtio,format=qcow2",
        "-drive", f"file={iso},if=virtio,format=raw,readonly=on",
        "-netdev", "user,id=n0",
        "-device", "virtio-net-pci,netdev=n0" + (f",mac={mac.group(1)}" if mac else ""),
        "-object", "rng-random,id=rng0,filename=/dev/urandom",
        "-device", "virtio-rng-pci,rng=rng0",
        "-serial", f"file:{console}",
    ]  # fmt: skip
    start = time.monotonic()
    qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while time.monotonic() - start < TIMEOUT:
            if console.exists() and MARKER in console.read_text(errors="replace"):
                return time.monotonic() - start
            if qemu.poll() is not None:
                raise RuntimeError(f"QEMU ended with {qemu.returncode}; see {console}")
            time.sleep(0.1)
        raise RuntimeError(f"no {MARKER!r} within {TIMEOUT:.0f} s; see {console}")
    finally:
        qemu.kill()
        qemu.wait()
        overlay.unlink(missing_ok=True)


def unkai_boot(profile: str) -> float:
    """The Instance's boot_seconds of examples/vm-alone with ``profile``, then destroyed."""
    name = f"bench-boot-{uuid.uuid4().hex[:6]}"
    stack = select_stack(EXAMPLE, name)
    try:
        stack.set_config("profile", auto.ConfigValue(profile))
        up = stack.up()
        return float(up.outputs["boot_seconds"].value)
    finally:
        stack.destroy()
        stack.workspace.remove_stack(name)
        (EXAMPLE / f"Pulumi.{name}.yaml").unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="boots of each kind (median)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="unkai-bench-boot-") as tmp:
        for profile in ("default", "lean"):
            raw, ours = [], []
            for run in range(args.runs):
                work = Path(tmp) / f"{profile}-{run}"
                work.mkdir()
                raw.append(raw_boot(profile, work))
                print(f"{profile}: raw QEMU {raw[-1]:.1f} s", flush=True)
                ours.append(unkai_boot(profile))
                print(f"{profile}: unkai {ours[-1]:.1f} s", flush=True)
            results[profile] = {"raw": statistics.median(raw), "unkai": statistics.median(ours)}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("\n| profile | raw QEMU s | unkai s | unkai / raw |\n|---|---|---|---|")
    for profile, got in results.items():
        ratio = got["unkai"] / got["raw"]
        print(f"| {profile} | {got['raw']:.1f} | {got['unkai']:.1f} | {ratio:.2f} |")
    lean, default = results["lean"], results["default"]
    print(
        f"\nlean / default: raw {lean['raw'] / default['raw']:.2f},"
        f" unkai {lean['unkai'] / default['unkai']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
