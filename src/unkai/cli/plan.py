"""``unkai plan <env>``: where instances run, how full hosts are, what containers would save.

The command only formats: placement and the reports come from :mod:`unkai.placement`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from unkai.cli._workspace import Root, resolve_root
from unkai.model import Environment
from unkai.placement import (
    CapacityReport,
    DensityReport,
    Placement,
    Usage,
    capacity_report,
    compact_names,
    density_report,
    place,
)

console = Console()


def _load(name: str, root: Path | None) -> Environment:
    # Lazy: the loader is optional for `unkai --help`, and tests replace this function.
    from unkai.environments import load_environment

    return load_environment(name, root=resolve_root(root))


def _measured(name: str, root: Path | None) -> dict[str, tuple[int, str]] | None:
    # What `unkai measure` kept for the environment (tests replace this function too).
    from unkai.cli.measure import load_measured

    return load_measured(resolve_root(root), name)


def _gib(mb: float) -> str:
    return f"{mb / 1024:,.1f}"


def _size(mb: int) -> str:
    return f"{mb:,} MiB" if mb < 1024 else f"{mb / 1024:,.1f} GiB"


def _usage(usage: Usage, scale: int = 1) -> str:
    color = "red" if usage.percent > 90 else "yellow" if usage.percent > 75 else "green"
    used, capacity = usage.used / scale, usage.capacity / scale
    number = "{:,.0f}" if scale == 1 or capacity >= 100 else "{:,.1f}"
    return f"{number.format(used)}/{number.format(capacity)} [{color}]{usage.percent:.0f}%[/]"


def _hosts_table(capacity: CapacityReport) -> Table:
    table = Table(title=f"hosts of {capacity.environment}: allocated/schedulable")
    table.add_column("host", no_wrap=True)
    table.add_column("zone", no_wrap=True)
    table.add_column("vCPU", justify="right", no_wrap=True)
    table.add_column("memory GiB", justify="right", no_wrap=True)
    table.add_column("disk GiB", justify="right", no_wrap=True)
    table.add_column("instances", overflow="fold", ratio=1)
    for row in capacity.hosts:
        table.add_row(
            row.host,
            row.zone,
            _usage(row.cpus),
            _usage(row.memory_mb, 1024),
            _usage(row.disk_gb),
            compact_names(row.instances) or "[dim]-[/]",
        )
    table.add_section()
    count = sum(len(row.instances) for row in capacity.hosts)
    table.add_row(
        f"{len(capacity.hosts)} hosts",
        "",
        _usage(capacity.cpus),
        _usage(capacity.memory_mb, 1024),
        _usage(capacity.disk_gb),
        f"{count} instances",
        style="bold",
    )
    return table


def _density_table(density: DensityReport) -> Table:
    table = Table(title="the same instances as VMs → as containers")
    table.add_column("host", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("memory GiB", justify="right", no_wrap=True)
    table.add_column("disk GiB", justify="right", no_wrap=True)
    table.add_column("typical that fit", justify="right", no_wrap=True)
    table.add_column("limit", no_wrap=True)
    for row in density.hosts:
        table.add_row(
            row.host,
            str(row.instances),
            f"{_gib(row.vm.memory_mb)} → {_gib(row.container.memory_mb)}",
            f"{_gib(row.vm.disk_mb)} → {_gib(row.container.disk_mb)}",
            f"{row.vm_fit} → {row.container_fit} [green](+{row.extra_fit})[/]",
            row.vm_bound_by
            if row.vm_bound_by == row.container_bound_by
            else f"{row.vm_bound_by} → {row.container_bound_by}",
        )
    table.add_section()
    table.add_row(
        "total",
        str(sum(row.instances for row in density.hosts)),
        f"{_gib(density.vm.memory_mb)} → {_gib(density.container.memory_mb)}",
        f"{_gib(density.vm.disk_mb)} → {_gib(density.container.disk_mb)}",
        f"[green](+{density.extra_fit})[/]",
        "",
        style="bold",
    )
    return table


def _summary(density: DensityReport) -> str:
    count = sum(row.instances for row in density.hosts)
    s = density.settings
    vm, container = density.vm, density.container
    return (
        f"As VMs, the guest OS of {count} instances takes {_size(vm.overhead_memory_mb)} of"
        f" memory and {_size(vm.overhead_disk_mb)} of disk before any application"
        f" ({s.vm_guest_memory_mb} MiB and {s.vm_os_disk_gb} GiB each). As containers the"
        f" overhead is {_size(container.overhead_memory_mb)} of memory"
        f" ({s.container_memory_mb} MiB each) and {_size(container.overhead_disk_mb)} of disk"
        f" (the {s.container_base_image_mb} MiB base image once per host)."
        f" Containers save {_size(density.memory_saved_mb)} of memory and"
        f" {_size(density.disk_saved_mb)} of disk; the empty hosts would hold"
        f" {density.extra_fit} more typical instances as containers than as VMs."
    )


def _sources(density: DensityReport) -> str:
    """Where each overhead of the density report comes from, one line each."""
    values = density.settings.model_dump()
    lines = [f"  {name} = {values[name]}: {source}" for name, source in density.sources.items()]
    return "Overheads:\n" + "\n".join(lines)


def plan_document(
    placement: Placement, capacity: CapacityReport, density: DensityReport
) -> dict[str, object]:
    """The whole plan as one JSON-able document (what ``unkai plan --json`` prints).

    Args:
        placement: The placement.
        capacity: Its capacity report.
        density: Its density report.

    Returns:
        ``{"environment", "placement", "capacity", "density"}``, each value dumped with
        ``model_dump(mode="json")``.
    """
    return {
        "environment": placement.environment,
        "placement": placement.model_dump(mode="json"),
        "capacity": capacity.model_dump(mode="json"),
        "density": density.model_dump(mode="json"),
    }


def plan(
    env: Annotated[str, typer.Argument(help="Environment name (environments/<env>.yaml).")],
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Also draw the density report to this PNG.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole plan as JSON.")] = False,
    root: Root = None,
) -> None:
    """Place every instance on a host and show capacity and VM-vs-container density.

    Writes nothing but the ``--chart`` file. Instances that fit nowhere, or a bad
    environment, end the command with an error naming them. The density report's
    overheads are those ``unkai measure <env>`` measured, where it has; each is named
    with its source.
    """
    environment = _load(env, root)
    placement = place(environment)
    capacity = capacity_report(environment, placement)
    measured = _measured(env, root)
    density = density_report(environment, placement=placement, measured=measured)
    if chart is not None:
        from unkai.cli._plan_chart import draw_density_chart

        draw_density_chart(density, capacity, chart)
    if as_json:
        sys.stdout.write(
            json.dumps(plan_document(placement, capacity, density), indent=2, sort_keys=True) + "\n"
        )
        return
    console.print(_hosts_table(capacity))
    console.print(_density_table(density))
    console.print(_summary(density), highlight=False)
    console.print(_sources(density), highlight=False)
    if chart is not None:
        console.print(f"[green]chart:[/] {chart}", highlight=False)
