"""``unkai console <env>``: serve the read-only web console of an environment.

Thin: the pages and their reads are :mod:`unkai.console`. It listens on 127.0.0.1 unless
``--address`` names another address; the console has no login, so anything that can
reach the address sees the cloud (never a secret: the console never reads one).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
from rich.console import Console

from unkai.cli._workspace import Root, resolve_root
from unkai.environments import load_environment
from unkai.errors import ConfigError

__all__ = ["console"]

DEFAULT_PORT = 8470


def _address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError as err:
        raise ConfigError(
            "is not an IP address", key_path="--address", value=value, allowed="such as 127.0.0.1"
        ) from err
    return value


def console(
    env: Annotated[str, typer.Argument(help="The environment.")],
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = (
        DEFAULT_PORT
    ),
    address: Annotated[
        str,
        typer.Option(
            "--address",
            help="Address to listen on. The console has no login: keep it on loopback"
            " unless every machine that can reach the address may see the cloud.",
        ),
    ] = "127.0.0.1",
    root: Root = None,
) -> None:
    """Serve a read-only web console of the environment: hosts, VMs, groups, plan, history."""
    from aiohttp import web

    from unkai.console import Cloud, make_app

    project = resolve_root(root)
    load_environment(env, root=project)  # a bad environment is said before anything listens
    where = _address(address)
    out = Console(highlight=False)
    host = f"[{where}]" if ":" in where else where
    if not ipaddress.ip_address(where).is_loopback:
        out.print(f"[yellow]the console listens on {where}: it has no login[/]")
    out.print(f"console of {env}: http://{host}:{port}/ (Ctrl-C stops it)")
    web.run_app(make_app(Cloud(env, project)), host=where, port=port, print=None)
