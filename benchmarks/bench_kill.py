"""``unkai up`` killed at random points: does the next ``up`` converge, is anything orphaned?

    .venv/bin/python benchmarks/bench_kill.py [--points 100] [--env local] [--seed 1]
                                              [--span SECONDS] [--json FILE]

For each point, from a destroyed environment: ``unkai up <env>`` is started in a process
group of its own and the whole group gets SIGKILL at a time drawn uniformly from
``[1 s, span]`` (``span``: the length of one cold ``up``, measured first unless given).
Then, with no manual step:

- ``unkai up <env>`` must succeed (*converged*);
- ``unkai up <env> --expect-no-changes`` must succeed (*no changes*);
- ``unkai destroy <env>`` must succeed, and afterwards nothing of the environment's may be
  left (*orphaned* otherwise): libvirt domains, volumes, networks and pools named for it,
  processes of its runs (``UNKAI_RUN``), the stack's lock, images unkai labelled that
  were not there before the run.

A point that needed a manual step is one whose recovery ``up`` failed (a user would have
had to act). Prints a line per point and the totals; ``--json`` writes every point.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import libvirt

from unkai.drivers.docker import MANAGED_LABEL
from unkai.environments import load_environment
from unkai.render import owned_by, owner
from unkai.toolchain import leftovers, state_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from commands import kill_when, run  # noqa: E402

UNKAI = Path(sys.executable).parent / "unkai"


def unkai(*args: str) -> subprocess.CompletedProcess[str]:
    return run(UNKAI, *args, cwd=ROOT, timeout=3600)


def labelled_images() -> set[str]:
    listed = subprocess.run(
        ["docker", "images", "-q", "--no-trunc", "--filter", f"label={MANAGED_LABEL}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(listed.stdout.split())


def orphans(env_name: str, images_before: set[str]) -> list[str]:
    """What of ``env_name`` is still there after its destroy (empty: nothing)."""
    env = load_environment(env_name, root=ROOT)
    prefix = owner(env)
    found: list[str] = []
    conn = libvirt.open("qemu:///system")
    try:
        names = [("domain", d.name()) for d in conn.listAllDomains()]
        names += [("network", n.name()) for n in conn.listAllNetworks()]
        found += [f"{kind} {name}" for kind, name in names if owned_by(prefix, name)]
        for pool in conn.listAllStoragePools():
            if owned_by(prefix, pool.name()):
                found.append(f"pool {pool.name()}")
            if pool.isActive():
                pool.refresh(0)
                found += [
                    f"volume {pool.name()}/{v}" for v in pool.listVolumes() if owned_by(prefix, v)
                ]
    finally:
        conn.close()
    found += [f"process {p}" for p in leftovers(ROOT, env_name)]
    locks = state_dir(ROOT) / ".pulumi" / "locks"
    found += [f"lock {p.name}" for p in locks.rglob("*.json") if p.parent.name == env_name]
    found += [f"image {i[:19]}" for i in sorted(labelled_images() - images_before)]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--env", default="local")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--span", type=float, help="kill within [1, span] s (default: measured)")
    parser.add_argument("--json", type=Path, help="write every point here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    unkai("destroy", args.env)
    images_before = labelled_images()
    span = args.span
    if span is None:
        start = time.monotonic()
        first = unkai("up", args.env)
        span = time.monotonic() - start
        if first.returncode != 0:
            sys.exit(f"a cold up of {args.env} failed:\n{first.stdout[-3000:]}{first.stderr}")
        unkai("destroy", args.env)
        print(f"cold up of {args.env}: {span:.0f} s; killing within [1, {span:.0f}] s")
    results = []
    for index in range(args.points):
        at = rng.uniform(1.0, span)
        killed = kill_when(UNKAI, "up", args.env, cwd=ROOT, after=at)
        start = time.monotonic()
        recovery = unkai("up", args.env)
        recovery_seconds = time.monotonic() - start
        converged = recovery.returncode == 0
        no_changes = converged and unkai("up", args.env, "--expect-no-changes").returncode == 0
        destroyed = unkai("destroy", args.env).returncode == 0
        left = orphans(args.env, images_before)
        point = {
            "point": index + 1,
            "kill_at_s": round(at, 1),
            "killed": killed is not None,
            "in_progress": killed.in_progress if killed else [],
            "converged": converged,
            "recovery_up_s": round(recovery_seconds, 1),
            "no_changes": no_changes,
            "destroyed": destroyed,
            "orphaned": left,
        }
        results.append(point)
        print(json.dumps(point), flush=True)
        if not converged:
            print(recovery.stdout[-2000:] + recovery.stderr[-2000:], flush=True)
        if not destroyed or left:
            unkai("destroy", args.env)  # the next point starts from nothing
    killed_runs = [r for r in results if r["killed"]]
    print(
        f"{len(results)} points ({len(killed_runs)} killed mid-run, the others had finished):"
        f" converged {sum(r['converged'] for r in results)},"
        f" no changes after {sum(r['no_changes'] for r in results)},"
        f" orphaned {sum(bool(r['orphaned']) for r in results)},"
        f" manual steps needed {sum(not r['converged'] for r in results)}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
