"""The ``unkai plan --chart`` picture: per host, memory and disk as VMs vs containers.

Kept apart from :mod:`unkai.cli.plan` so matplotlib is imported only when a chart is
asked for.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the chart only ever goes to a file

import matplotlib.pyplot as plt

from unkai.placement import CapacityReport, DensityReport

MAX_HOSTS = 40
"""Hosts drawn at most; beyond that the busiest are drawn and the title says so."""

_VM_APP, _VM_OS = "#4c72b0", "#a6bddb"
_CT_APP, _CT_RT = "#55a868", "#b8e0b0"


def draw_density_chart(density: DensityReport, capacity: CapacityReport, path: Path) -> None:
    """Draw memory and disk per host, as VMs and as containers, into a PNG at ``path``.

    Each host gets two bars per panel: VMs (application + guest OS) and containers
    (application + runtime and shared base image), with a tick for the host's
    schedulable capacity. With more than :data:`MAX_HOSTS` hosts, the busiest are shown.

    Args:
        density: The density report.
        capacity: The capacity report of the same placement (for the capacity ticks).
        path: Where to write the PNG; overwritten if it exists.
    """
    rows = list(density.hosts)
    caps = {row.host: row for row in capacity.hosts}
    title = f"{density.environment}: the same workloads as VMs and as containers"
    if len(rows) > MAX_HOSTS:
        busiest = sorted(rows, key=lambda row: (-row.vm.memory_mb, row.host))[:MAX_HOSTS]
        keep = {row.host for row in busiest}
        rows = [row for row in rows if row.host in keep]
        title += f" (the {MAX_HOSTS} busiest of {len(density.hosts)} hosts)"
    names = [row.host for row in rows]
    x = list(range(len(rows)))
    width = 0.38
    fig, axes = plt.subplots(2, 1, figsize=(max(7.0, 0.55 * len(rows) + 3), 7.5), sharex=True)
    panels = (
        (
            "memory (GiB)",
            "memory_mb",
            "overhead_memory_mb",
            [caps[h].memory_mb.capacity / 1024 for h in names],
        ),
        ("disk (GiB)", "disk_mb", "overhead_disk_mb", [caps[h].disk_gb.capacity for h in names]),
    )
    for ax, (label, total, overhead, cap) in zip(axes, panels, strict=True):
        vm_os = [getattr(r.vm, overhead) / 1024 for r in rows]
        vm_app = [getattr(r.vm, total) / 1024 - o for r, o in zip(rows, vm_os, strict=True)]
        ct_rt = [getattr(r.container, overhead) / 1024 for r in rows]
        ct_app = [getattr(r.container, total) / 1024 - o for r, o in zip(rows, ct_rt, strict=True)]
        left = [i - width / 2 for i in x]
        right = [i + width / 2 for i in x]
        ax.bar(left, vm_app, width, color=_VM_APP, label="VM: application")
        ax.bar(left, vm_os, width, bottom=vm_app, color=_VM_OS, label="VM: guest OS")
        ax.bar(right, ct_app, width, color=_CT_APP, label="container: application")
        ax.bar(right, ct_rt, width, bottom=ct_app, color=_CT_RT, label="container: runtime + base")
        ax.scatter(
            x,
            cap,
            marker="_",
            s=600,
            color="black",
            zorder=3,
            label="schedulable capacity",
        )
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    saved_mem = density.memory_saved_mb / 1024
    saved_disk = density.disk_saved_mb / 1024
    axes[0].set_title(
        f"{title}\ncontainers save {saved_mem:,.1f} GiB memory and {saved_disk:,.1f} GiB disk;"
        f" +{density.extra_fit} typical instances fit",
        fontsize=10,
    )
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[1].set_xticks(
        x,
        names,
        rotation=45 if len(rows) > 8 else 0,
        ha="right" if len(rows) > 8 else "center",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
