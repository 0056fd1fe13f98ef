"""``unkai hosts``: start, list and remove an environment's simulated hosts on this machine.

Thin: planning and applying live in :mod:`unkai.drivers.simulated_hosts`; this module
finds the project's paths, prints progress and tables. Errors are
:class:`~unkai.errors.ConfigError` / :class:`~unkai.errors.DriverError` and become
``error: ...`` in :func:`unkai.cli.app.main`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from unkai.cli._workspace import Root, resolve_root, ssh_client
from unkai.drivers import docker as engine
from unkai.drivers import simulated_hosts as sim
from unkai.environments import environment_source, load_environment
from unkai.model import Environment
from unkai.toolchain import (
    cache_root,
    known_hosts_file,
    operator_key,
)

hosts_app = typer.Typer(
    name="hosts",
    help="Start, list and remove an environment's hosts, simulated as containers here.",
    no_args_is_help=True,
)

console = Console(highlight=False)

_Root = Root
_Env = Annotated[str, typer.Argument(help="Environment name, such as fleet.")]


def _root(root: Path | None) -> Path:
    return resolve_root(root)


def _say(line: str) -> None:
    console.print(f"[dim]·[/] {escape(line)}")


def _load(env: str, root: Path) -> tuple[Environment, str]:
    return load_environment(env, root=root), environment_source(env, root=root)


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


@hosts_app.command("up")
def up(env: _Env, root: _Root = None) -> None:
    """Start the environment's hosts (idempotent): image, network, containers, host keys."""
    base = _root(root)
    loaded, file = _load(env, base)
    key = operator_key(base)
    known_hosts = known_hosts_file(base)
    with engine.session() as client:
        report = sim.up(
            client,
            loaded,
            project=base,
            cache_root=cache_root(),
            identity=key,
            known_hosts=known_hosts,
            file=file,
            say=_say,
        )
    wrapper = ssh_client(loaded, base)
    console.print(_table(loaded.name, report.hosts))
    verb = "started" if report.changed else "already running"
    console.print(
        f"{len(report.hosts)} hosts of [bold]{escape(loaded.name)}[/] {verb}"
        f" ({report.seconds:.0f} s, image {escape(report.image)}).\n"
        f"Host keys: {escape(_relative(known_hosts, base))}; log in:"
        f" {escape(_relative(wrapper, base))} {escape(report.hosts[0].host)}"
    )


@hosts_app.command("down")
def down(env: _Env, root: _Root = None) -> None:
    """Remove the environment's hosts: containers, their volumes (VM disks) and network."""
    base = _root(root)
    with engine.session() as client:
        removed = sim.down(client, env, project=base, known_hosts=known_hosts_file(base), say=_say)
    if removed:
        console.print(f"removed {len(removed)} objects of [bold]{escape(env)}[/]")


@hosts_app.command("list")
def list_hosts(env: _Env, root: _Root = None) -> None:
    """Show each host: address, zone, container state and whether libvirt answers."""
    base = _root(root)
    loaded, file = _load(env, base)
    with engine.session() as client:
        rows = sim.status(
            client,
            loaded,
            project=base,
            identity=operator_key(base),
            known_hosts=known_hosts_file(base),
            file=file,
        )
    console.print(_table(loaded.name, rows))


def _table(env: str, rows: tuple[sim.HostStatus, ...]) -> Table:
    table = Table(title=f"hosts of {env}")
    for column in ("host", "address", "zone", "container", "libvirt"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        state = {"running": "[green]running[/]", "missing": "[dim]missing[/]"}.get(
            row.container, f"[yellow]{escape(row.container)}[/]"
        )
        answers = {True: "[green]answers[/]", False: "[red]no answer[/]", None: "[dim]-[/]"}
        table.add_row(row.host, row.address, row.zone, state, answers[row.libvirt])
    return table


@hosts_app.command("drain")
def drain(
    env: _Env,
    host: Annotated[str, typer.Argument(help="The host to empty.")],
    undo: Annotated[bool, typer.Option("--undo", help="Let it take instances again.")] = False,
    root: _Root = None,
) -> None:
    """Live-migrate every instance off a host and keep it empty (any host, not only these)."""
    from unkai.cli.cloud import drain as drain_host

    drain_host(env, host, undo=undo, root=root)
