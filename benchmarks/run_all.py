"""Benchmark runner: unkai against the raw tools, on this machine, in one run.

Run: .venv/bin/python benchmarks/run_all.py [--out benchmarks/ratios] [--skip NAME ...]

Each row times the same work done by unkai and by the tool it drives, one after the
other, and divides (unkai / raw; lower is better):

* ``boot``: a lean VM to "cloud-init finished": ``unkai up`` of examples/vm-alone (the
  Instance's ``boot_seconds``) against ``qemu-system-x86_64`` started by hand with the
  same image, seed and settings (``bench_boot.py``). Target 1.2.
* ``image``: a VM image built cold (a version label of its own, so nothing is cached;
  into a scratch cache): :func:`unkai.drivers.images.build_image` against the same
  ``mmdebstrap``, ``tar`` and disk commands run by hand. Target 1.2.
* ``container``: the ``api`` image built without the layer cache: unkai's engine build
  against ``docker build`` of the same rendered Dockerfile, each with a label of its
  own after ``FROM`` so that no step comes from the layer cache. Target 1.5.
* ``playbook``: the KvmHost playbook on this machine, a run that changes nothing
  (storage pool ``unkai-bench``, removed after): ``run_playbook`` (ansible-runner)
  against ``ansible-playbook`` with the same inventory, host_vars and environment.
  Target 1.5.
* ``preview``: a new stack of the 1,000-instance environment against as many trivial
  resources through the same engine (``bench_preview.py``). Target 1.5.
* ``up``: a no-change ``unkai up local`` against the cold ``up`` before it (a new
  stack, images in the cache; destroyed after). Target 0.1.

Writes ``<out>.md`` (the table, with the commands) and ``<out>.png`` (the ratios against
their targets), and prints the table. It deploys ``local`` and boots VMs: run it when
no other ``up`` of this checkout (or a CI run on this machine) is going on.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_boot
import bench_preview

from unkai.components import container_image_inputs
from unkai.drivers import docker as d
from unkai.drivers import images
from unkai.drivers.ansible import AnsibleHost, _envvars, run_playbook
from unkai.drivers.kvm_host import FACTS_VAR, KvmHostSpec, kvm_host_plan, remove_pool_if_empty
from unkai.environments import load_environment
from unkai.provider.resources.container_image import base_spec
from unkai.render import render_dockerfile, render_host_vars
from unkai.toolchain import cache_root

ROOT = Path(__file__).resolve().parents[1]
UNKAI = str(Path(sys.executable).parent / "unkai")


@dataclasses.dataclass(frozen=True)
class Row:
    """One comparison: what was timed, both times, the target ratio."""

    name: str
    what: str
    unkai: float
    raw: float
    target: float
    command: str

    @property
    def ratio(self) -> float:
        return self.unkai / self.raw

    @property
    def met(self) -> bool:
        return self.ratio <= self.target


def _timed(call: Callable[[], object]) -> float:
    # What the previous measure wrote (a gigabyte for an image) is flushed first, so that
    # its write-back is not charged to this one.
    os.sync()
    start = time.monotonic()
    call()
    return time.monotonic() - start


def _sh(*argv: str | Path, **kwargs: object) -> None:
    subprocess.run([str(a) for a in argv], check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


def boot() -> Row:
    with tempfile.TemporaryDirectory(prefix="unkai-bench-boot-") as tmp:
        raw = bench_boot.raw_boot("lean", Path(tmp))
    ours = bench_boot.unkai_boot("lean")
    return Row("boot", "lean VM to cloud-init finished, TCG", ours, raw, 1.2,
               "benchmarks/bench_boot.py")  # fmt: skip


def image() -> Row:
    spec = images.ImageSpec(
        name="debian-12", version=f"bench-{uuid.uuid4().hex[:8]}",
        packages=("cloud-init", "openssh-server"), disk_gb=4, profile="lean",
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="unkai-bench-image-", dir=cache_root()) as tmp:
        scratch = Path(tmp)
        ours = _timed(lambda: images.build_image(spec, scratch / "cache"))
        work = scratch / "raw"
        (work / "root").mkdir(parents=True)

        def by_hand() -> None:
            _sh(*images.mmdebstrap_argv(spec, work / "rootfs.tar"))
            _sh("tar", "--numeric-owner", "-xpf", work / "rootfs.tar", "-C", work / "root")
            for argv in images.disk_argvs(
                work / "root", work / "disk.raw", work / "disk.qcow2", spec.disk_gb
            ):
                _sh(*argv)

        raw = _timed(by_hand)
    return Row("image", "VM image built cold (mmdebstrap, disk)", ours, raw, 1.2,
               "mmdebstrap + tar + mkfs.ext4 -d + qemu-img, as images.py runs them")  # fmt: skip


def container() -> Row:
    env = load_environment("local", root=ROOT)
    api = env.container_images["api"]
    base = container_image_inputs(api, env).base
    assert base is not None
    client = d.connect()
    # One tag each: the second build would leave the first's image untagged, and kept.
    bench = f"unkai-bench-{uuid.uuid4().hex[:8]}"
    tag, raw_tag = f"{bench}:api", f"{bench}:api-raw"
    try:
        d.ensure_base_image(client, images.build_rootfs(base_spec(base), cache_root()))
        dockerfile = render_dockerfile(api, env)

        def cold(text: str) -> str:
            # A label of its own right after FROM: no later step is in the layer cache.
            head, rest = text.split("\n", 2)[:2], text.split("\n", 2)[2]
            return "\n".join([*head, f"LABEL dev.unkai.bench={uuid.uuid4().hex}", rest])

        ours = d.build_image(client, dockerfile=cold(dockerfile), tag=tag).seconds
        raw = _timed(lambda: _sh("docker", "build", "--network", "none", "-q", "-t", raw_tag,
                                 "-", input=cold(dockerfile).encode()))  # fmt: skip
    finally:
        for built in (tag, raw_tag):
            d.remove_image(client, built, protect=())
        client.close()
    return Row("container", "api image built without the layer cache", ours, raw, 1.5,
               "docker build --network none - < rendered Dockerfile")  # fmt: skip


def playbook() -> Row:
    env = load_environment("local", root=ROOT)
    host = env.hosts["localhost"]
    pool = {"pool_name": "unkai-bench", "pool_path": "/var/lib/libvirt/images/unkai-bench"}
    spec = KvmHostSpec(
        host=AnsibleHost(name=host.name, connection="local", address=host.address),
        libvirt_uri="qemu:///system", accelerator="tcg",
        host_vars=render_host_vars(host, env, accelerator="tcg", **pool), **pool,
    )  # fmt: skip
    plan = kvm_host_plan(spec)
    try:
        run_playbook(plan, facts_var=FACTS_VAR)  # makes the pool: the runs below change nothing
        result = run_playbook(plan, facts_var=FACTS_VAR)
        assert result.changed.get(host.name, 0) == 0, result.changed
        with tempfile.TemporaryDirectory(prefix="unkai-bench-playbook-") as tmp:
            folder = Path(tmp)
            (folder / "inventory.yml").write_text(plan.inventory)
            (folder / "host_vars").mkdir()
            for name, text in plan.host_vars.items():
                (folder / "host_vars" / f"{name}.yml").write_text(text)
            ansible = Path(sys.executable).parent / "ansible-playbook"
            raw = _timed(lambda: _sh(ansible, "-i", folder / "inventory.yml", plan.playbook,
                                     env={**os.environ, **_envvars()}))  # fmt: skip
    finally:
        remove_pool_if_empty("qemu:///system", pool["pool_name"])
    return Row("playbook", "KvmHost playbook on this machine, no change", result.seconds, raw,
               1.5, "ansible-playbook -i inventory.yml kvm-host.yml")  # fmt: skip


def preview() -> Row:
    got = bench_preview.measure(instances=1000, repeat=1)
    return Row("preview", f"new stack of {got['resources']} resources, all creates",
               got["unkai"], got["baseline"], 1.5,
               "benchmarks/bench_preview.py (as many LocalFile resources)")  # fmt: skip


def up() -> Row:
    name = "local"
    cold = _timed(lambda: _sh(UNKAI, "up", name, cwd=ROOT))
    try:
        again = _timed(lambda: _sh(UNKAI, "up", name, cwd=ROOT))
    finally:
        _sh(UNKAI, "destroy", name, cwd=ROOT)
    return Row("up", "no-change up local against the cold up before it", again, cold, 0.1,
               "unkai up local (twice), images cached")  # fmt: skip


RUNS: dict[str, Callable[[], Row]] = {
    "boot": boot, "image": image, "container": container, "playbook": playbook,
    "preview": preview, "up": up,
}  # fmt: skip


def table(rows: list[Row]) -> str:
    lines = [
        "| measure | unkai s | raw s | unkai / raw | target | met | raw command |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name}: {r.what} | {r.unkai:.1f} | {r.raw:.1f} | {r.ratio:.3g} |"
            f" ≤ {r.target} | {'yes' if r.met else 'no'} | {r.command} |"
        )
    return "\n".join(lines) + "\n"


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.6 * len(rows) + 1.2))
    names = [r.name for r in rows]
    ax.barh(names, [r.ratio for r in rows],
            color=["tab:green" if r.met else "tab:red" for r in rows])  # fmt: skip
    ax.scatter([r.target for r in rows], names, marker="|", s=400, color="black",
               label="target", zorder=3)  # fmt: skip
    for i, r in enumerate(rows):
        ax.annotate(f"{r.ratio:.3g}", (r.ratio, i), xytext=(4, 0),
                    textcoords="offset points", va="center")  # fmt: skip
    ax.invert_yaxis()
    ax.set_xlabel("unkai / raw tool (lower is better)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "ratios")
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(RUNS))
    args = parser.parse_args()
    rows: list[Row] = []
    for name, run in RUNS.items():
        if name in args.skip:
            continue
        print(f"{name} …", flush=True)
        rows.append(run())
        r = rows[-1]
        print(f"{name}: unkai {r.unkai:.1f} s, raw {r.raw:.1f} s, {r.ratio:.3g}", flush=True)
    text = table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(
        "# unkai against the raw tools\n\n"
        f"`.venv/bin/python benchmarks/run_all.py` on {os.uname().nodename},"
        f" {time.strftime('%Y-%m-%d')}.\n\n" + text
    )
    chart(rows, args.out.with_suffix(".png"))
    print(text)
    return 0 if all(r.met for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
