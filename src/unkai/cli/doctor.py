"""``unkai doctor`` and ``unkai bootstrap``."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from unkai import toolchain

console = Console(soft_wrap=True)


def doctor() -> None:
    """Show every component the local cloud needs, ok or missing, and how to fix it."""
    checks = toolchain.run_checks()
    table = Table(title="unkai doctor", show_lines=False)
    table.add_column("component")
    table.add_column("status")
    table.add_column("version / detail", overflow="fold")
    table.add_column("fix", style="dim")
    for check in checks:
        if check.ok:
            status = "[green]ok[/]"
        elif check.required:
            status = "[bold red]missing[/]"
        else:
            status = "[yellow]missing (optional)[/]"
        table.add_row(check.component, status, check.detail, "" if check.ok else check.fix)
    console.print(table)
    missing = [c.component for c in checks if c.required and not c.ok]
    if missing:
        console.print(f"[bold red]not ready:[/] {', '.join(missing)}")
        raise typer.Exit(1)
    console.print("[green]ready:[/] every component of the local environment is ok")


def bootstrap(
    reprobe: bool = typer.Option(True, help="Boot the KVM probe guest again."),
) -> None:
    """Provide the pinned Pulumi engine, start dockerd and libvirtd, probe KVM.

    Run by ``scripts/bootstrap`` after the Debian packages and the venv; safe to run
    any number of times.
    """
    start = time.monotonic()

    def say(line: str) -> None:
        console.print(f"[cyan]bootstrap[/] {line}", highlight=False)

    toolchain.bootstrap(say=say, probe_kvm=reprobe)
    say(f"done in {time.monotonic() - start:.1f} s")
