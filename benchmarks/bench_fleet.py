"""Benchmark: the fleet end to end — hosts, Ansible over SSH, spread, migration, evacuation.

Run: .venv/bin/python benchmarks/bench_fleet.py [--out fleet.md]

Against the real fleet of this checkout (``unkai hosts up fleet``), measured with the
``unkai`` command itself, each a wall-clock time:

* hosts up cold (``--cold``: the host image's rootfs and Docker image removed first, so
  mmdebstrap and ``docker import`` run) or with the host image cached (containers, host
  keys, until libvirt answers);
* the KvmHost playbook on one host over SSH, first and second run (``changed`` counts);
* ``unkai up fleet`` from nothing (hosts configured, image uploaded to each, the web group
  spread over the hosts, every VM at "cloud-init finished");
* a no-change ``up``;
* a live migration of ``db`` (``unkai hosts drain``): its time and the guest's pause;
* the evacuation after the host running ``db`` is killed (``docker kill``): the next
  ``up`` until ``db`` runs elsewhere.

Leaves nothing behind: the cloud is destroyed and the hosts removed at the end. Do not
run it while the test suite runs (they share the fleet's addresses).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNKAI = str(Path(sys.executable).parent / "unkai")


def timed(*args: str) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run([UNKAI, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"unkai {' '.join(args)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def playbook_runs() -> list[tuple[float, int]]:
    """The KvmHost playbook twice on kvm-a1 over SSH, through the provider's driver."""
    code = (
        "from pathlib import Path\n"
        "from unkai.drivers.ansible import AnsibleHost\n"
        "from unkai.drivers.kvm_host import KvmHostSpec, configure_kvm_host\n"
        "from unkai.environments import load_environment\n"
        "from unkai.render import render_host_vars\n"
        "env = load_environment('fleet', root=Path('.'))\n"
        "pool = dict(pool_name='unkai-bench', pool_path='/var/lib/libvirt/images/unkai-bench')\n"
        "spec = KvmHostSpec(host=AnsibleHost(name='kvm-a1', connection='ssh',"
        " address='10.231.0.11', ssh_user='root'),"
        " libvirt_uri='qemu+ssh://root@10.231.0.11/system', accelerator='tcg',"
        " host_vars=render_host_vars(env.hosts['kvm-a1'], env, accelerator='tcg', **pool),"
        " **pool)\n"
        "import json\n"
        "print(json.dumps([[f.seconds, f.changed] for f in (configure_kvm_host(spec),"
        " configure_kvm_host(spec))]))\n"
    )
    wrapper = str(ROOT / ".unkai" / "ssh" / "fleet" / "ssh")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "UNKAI_SSH": wrapper},
    )  # fmt: skip
    return [tuple(run) for run in json.loads(proc.stdout.strip().splitlines()[-1])]


def forget_host_image() -> None:
    """Remove the host image's cached rootfs and its Docker images: the next up builds it."""
    from unkai.drivers.images import rootfs_layout
    from unkai.drivers.simulated_hosts import plan_host_image
    from unkai.toolchain import cache_root

    plan = plan_host_image(cache_root=cache_root())
    subprocess.run(
        ["docker", "image", "rm", "-f", plan.reference, plan.ref], capture_output=True, check=False
    )
    shutil.rmtree(rootfs_layout(plan.spec, cache_root()).folder, ignore_errors=True)


def outputs() -> dict[str, dict]:
    from unkai.cli.cloud import cloud_stack

    return cloud_stack("fleet", ROOT).outputs()["instances"].value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    parser.add_argument("--cold", action="store_true", help="build the host image first")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    if args.cold:
        forget_host_image()
    seconds, _ = timed("hosts", "up", "fleet")
    rows.append((f"hosts up ({'cold' if args.cold else 'image cached'})", f"{seconds:.1f} s"))
    timed("hosts", "down", "fleet")
    seconds, _ = timed("hosts", "up", "fleet")
    rows.append(("hosts up again (image cached)", f"{seconds:.1f} s"))
    (first, first_changed), (second, second_changed) = playbook_runs()
    rows.append(("KvmHost playbook over SSH, 1st run", f"{first:.1f} s, changed={first_changed}"))
    rows.append(("KvmHost playbook over SSH, 2nd run", f"{second:.1f} s, changed={second_changed}"))
    seconds, _ = timed("up", "fleet")
    rows.append(("up fleet from nothing (4 hosts, 5 VMs spread)", f"{seconds:.1f} s"))
    seconds, _ = timed("up", "fleet", "--expect-no-changes")
    rows.append(("up fleet, no change", f"{seconds:.1f} s"))
    host = outputs()["db"]["host"]
    seconds, shown = timed("hosts", "drain", "fleet", host)
    found = re.search(r"migrated to \S+ in ([0-9.]+) s(?:, paused ([0-9]+) ms)?", shown)
    if found:
        rows.append(("live migration of db (libvirt)", f"{found[1]} s"))
        rows.append(("guest paused during the switch-over", f"{found[2] or '?'} ms"))
    rows.append(("hosts drain (the whole up)", f"{seconds:.1f} s"))
    timed("hosts", "drain", "fleet", host, "--undo")
    victim = outputs()["db"]["host"]
    subprocess.run(["docker", "kill", f"unkai-fleet-{victim}"], check=True, capture_output=True)
    seconds, _ = timed("up", "fleet")
    rows.append((f"evacuation: up after {victim} died (db recreated)", f"{seconds:.1f} s"))
    timed("hosts", "up", "fleet")
    timed("destroy", "fleet")
    timed("hosts", "down", "fleet")
    table = "| measure | value |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
    print(table)
    if args.out:
        args.out.write_text(table)


if __name__ == "__main__":
    main()
