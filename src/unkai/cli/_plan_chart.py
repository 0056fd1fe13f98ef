"""The capacity pictures of ``unkai plan --chart`` and ``unkai review --chart``.

``plan``'s: per host, memory and disk as VMs vs containers; ``review``'s: each changed
host's allocation before and after.

Kept apart from :mod:`unkai.cli.plan` so matplotlib is imported only when a chart is
asked for.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the chart only ever goes to a file

import matplotlib.pyplot as plt

from unkai.placement import CapacityReport, DensityReport
from unkai.review import Review

MAX_HOSTS = 40
"""Hosts drawn at most; beyond that the busiest are drawn and the title says so."""

_APP_VM, _APP_CT = "#4c72b0", "#8fb0d9"  # the application: the same in both bars
_OS = "#dd8452"  # the guest OS a VM carries
_RT = "#55a868"  # what a container carries instead


def draw_density_chart(density: DensityReport, capacity: CapacityReport, path: Path) -> None:
    """Draw memory and disk per host, as VMs and as containers, into a PNG at ``path``.

    Each host gets two stacked bars per panel: the VMs (application + guest OS) and the
    same instances as containers (application + runtime and shared base image); the
    saving is written over each pair and the host's schedulable capacity under its name.
    With more than :data:`MAX_HOSTS` hosts, the busiest are shown. Side effect: writes
    ``path`` (overwritten if it exists).

    Args:
        density: The density report.
        capacity: The capacity report of the same placement (for the capacities).
        path: Where to write the PNG.
    """
    rows = list(density.hosts)
    caps = {row.host: row for row in capacity.hosts}
    title = f"{density.environment}: the same instances as VMs and as containers"
    if len(rows) > MAX_HOSTS:
        busiest = sorted(rows, key=lambda row: (-row.vm.memory_mb, row.host))[:MAX_HOSTS]
        keep = {row.host for row in busiest}
        rows = [row for row in rows if row.host in keep]
        title += f" (the {MAX_HOSTS} busiest of {len(density.hosts)} hosts)"
    x = list(range(len(rows)))
    width = 0.38
    fig, axes = plt.subplots(2, 1, figsize=(max(7.5, 0.7 * len(rows) + 4), 7.5), sharex=True)
    panels = (
        ("memory", "memory_mb", "overhead_memory_mb", "guest OS", "runtime"),
        ("disk", "disk_mb", "overhead_disk_mb", "guest OS image", "shared base image"),
    )
    for ax, (label, total, overhead, os_label, rt_label) in zip(axes, panels, strict=True):
        vm_os = [getattr(r.vm, overhead) / 1024 for r in rows]
        vm_app = [getattr(r.vm, total) / 1024 - o for r, o in zip(rows, vm_os, strict=True)]
        ct_rt = [getattr(r.container, overhead) / 1024 for r in rows]
        ct_app = [getattr(r.container, total) / 1024 - o for r, o in zip(rows, ct_rt, strict=True)]
        left = [i - width / 2 for i in x]
        right = [i + width / 2 for i in x]
        ax.bar(left, vm_app, width, color=_APP_VM, label="application (VM)")
        ax.bar(left, vm_os, width, bottom=vm_app, color=_OS, label=f"VM {os_label}")
        ax.bar(right, ct_app, width, color=_APP_CT, label="application (container)")
        ax.bar(right, ct_rt, width, bottom=ct_app, color=_RT, label=f"container {rt_label}")
        tops = [a + o for a, o in zip(vm_app, vm_os, strict=True)]
        top = max(tops, default=0.0) or 1.0
        for i, row in enumerate(rows):
            saved = (getattr(row.vm, total) - getattr(row.container, total)) / 1024
            ax.annotate(
                f"-{saved:,.1f}",
                (i, tops[i]),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color=_RT,
            )
        ax.set_ylim(0, top * 1.18)
        ax.set_ylabel(f"{label} (GiB)")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    labels = [
        f"{row.host}\n{caps[row.host].memory_mb.capacity / 1024:,.0f} GiB /"
        f" {caps[row.host].disk_gb.capacity:,} GiB"
        for row in rows
    ]
    axes[1].set_xticks(x, labels, rotation=45 if len(rows) > 8 else 0, fontsize=7)
    axes[1].set_xlabel("host (schedulable memory / disk)", fontsize=8)
    fig.suptitle(
        f"{title}\ncontainers save {density.memory_saved_mb / 1024:,.1f} GiB of memory and"
        f" {density.disk_saved_mb / 1024:,.1f} GiB of disk (GiB saved over each pair);\n"
        f"the empty hosts would hold {density.extra_fit} more typical instances as containers",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_capacity_change(review: Review, path: Path) -> None:
    """Draw each changed host's vCPU and memory allocation, before and after, into a PNG.

    One row of panels per environment of ``review`` whose hosts change: per host, the
    share of its schedulable vCPUs and memory allocated on the base (light) and the head
    (dark), with 100 % marked. At most :data:`MAX_HOSTS` hosts per environment, the ones
    that change most. Side effect: writes ``path``.
    """
    rows = [
        (env.name, [host for host in env.capacity if host.changed][:MAX_HOSTS])
        for env in review.environments
    ]
    rows = [(name, hosts) for name, hosts in rows if hosts] or [("no host changes", [])]
    figure, axes = plt.subplots(
        len(rows), 2, figsize=(11, 1.2 + 0.9 * len(rows) * max(2, *(len(h) for _, h in rows)) / 2),
        squeeze=False,
    )  # fmt: skip
    for (name, hosts), pair in zip(rows, axes, strict=True):
        for axis, (resource, label) in zip(
            pair, (("cpus", "vCPU"), ("memory_mb", "memory")), strict=True
        ):
            names = [f"{h.host} ({h.zone})" for h in hosts]
            positions = range(len(hosts))

            def share(side: dict[str, list[int]] | None, key: str = resource) -> float:
                used, capacity = side[key] if side else (0, 0)
                return 100.0 * used / capacity if capacity else 0.0

            before = [share(h.before) for h in hosts]
            after = [share(h.after) for h in hosts]
            axis.barh([p + 0.2 for p in positions], before, height=0.38, color=_APP_CT,
                      label="base")  # fmt: skip
            axis.barh([p - 0.2 for p in positions], after, height=0.38, color=_APP_VM,
                      label="head")  # fmt: skip
            axis.axvline(100, color="#c44e52", linewidth=1)
            axis.set_yticks(list(positions), names, fontsize=8)
            axis.invert_yaxis()
            axis.set_xlabel(f"{label} allocated, % of schedulable")
            axis.set_title(f"{name}: {label}", fontsize=10, loc="left")
            axis.set_xlim(0, max(110, *before, *after))
            axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
