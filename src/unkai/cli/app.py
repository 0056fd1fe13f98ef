"""The typer application and the error boundary of the ``unkai`` command.

Each subcommand lives in a module of its own and is registered here; this is the one
place where an :class:`~unkai.errors.UnkaiError` becomes a message and an exit status.
"""

from __future__ import annotations

import re
import sys

import typer
from rich.console import Console
from rich.markup import escape

from unkai.errors import ConfigError, Interrupted, UnkaiError

app = typer.Typer(
    name="unkai",
    help="A GCE-style private cloud declared in Python and deployed with Pulumi.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

err_console = Console(stderr=True, soft_wrap=True, emoji=False)


def _register() -> None:
    # Imported here so that `unkai --help` stays cheap and a broken optional module
    # names itself instead of breaking every command.
    from unkai.cli import doctor, init, stack

    app.command("init")(init.init)
    app.command("doctor")(doctor.doctor)
    app.command("bootstrap")(doctor.bootstrap)
    app.command("smoke")(stack.smoke)
    app.command("shell-env")(stack.shell_env)

    from unkai.cli import plan

    app.command("plan")(plan.plan)

    from unkai.cli import measure

    app.command("measure")(measure.measure)

    from unkai.cli import env

    app.add_typer(env.env_app, name="env")

    from unkai.cli.hosts import hosts_app

    app.add_typer(hosts_app, name="hosts")

    from unkai.cli import render

    app.command("render")(render.render)

    from unkai.cli import cloud

    app.command("up")(cloud.up)
    app.command("preview")(cloud.preview)
    app.command("refresh")(cloud.refresh)
    app.command("destroy")(cloud.destroy)

    from unkai.cli import drift

    app.command("drift")(drift.drift)

    from unkai.cli import status

    app.command("status")(status.status)

    from unkai.cli import console

    app.command("console")(console.console)

    from unkai.cli import review

    app.command("review")(review.review)
    # Everything after the VM is the remote command, its options included (`sh -c ...`).
    app.command(
        "ssh", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True}
    )(cloud.ssh)


def main() -> None:
    """Run the ``unkai`` command; its own errors exit 2 (bad input), 130 (Ctrl-C) or 1."""
    _register()
    try:
        app()
    except KeyboardInterrupt:
        # Outside an engine run (which says what a Ctrl-C left): unkai's own work stops.
        err_console.print("[bold red]error:[/] interrupted", highlight=False)
        sys.exit(130)
    except UnkaiError as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
        sys.exit(2 if isinstance(err, ConfigError) else 130 if isinstance(err, Interrupted) else 1)
    except Exception as err:
        # The Automation API's errors: the engine's output has streamed already, so say
        # what failed in one line and what to do, without a traceback.
        if not type(err).__module__.startswith("pulumi.automation"):
            raise
        err_console.print(f"[bold red]error:[/] {escape(_engine_error(err))}", highlight=False)
        sys.exit(1)


def _engine_error(err: Exception) -> str:
    text = str(err)
    if type(err).__name__ == "ConcurrentUpdateError":
        lock = re.search(r"file://(\S+?\.json)", text)
        release = f"rm {lock.group(1)}" if lock else "pulumi cancel"
        return (
            "the stack is locked by another update. If none is running (it was killed), "
            f"release the lock: {release}"
        )
    if "[mandatory]" in text:
        return "a mandatory policy was violated (listed above); nothing was changed"
    lines = [
        line.strip().removeprefix("error:").strip()
        for line in text.splitlines()
        if line.strip().startswith("error:")
    ]
    return "; ".join(dict.fromkeys(lines[-3:])) or "the engine failed (see its output above)"
