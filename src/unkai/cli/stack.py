"""``unkai smoke``: the smallest real deployment, proving the engine end to end."""

from __future__ import annotations

import shlex
import sys
import time

import typer
from rich.console import Console

from unkai.cli._workspace import Root, packaged_program, resolve_root, select_stack, workspace_env
from unkai.errors import UnkaiError

console = Console()


def _stream(line: str) -> None:
    # The engine's own lines, untouched: rich would re-wrap them.
    sys.stdout.write(line if line.endswith("\n") else line + "\n")
    sys.stdout.flush()


def _color() -> str:
    return "always" if sys.stdout.isatty() else "never"


def smoke(
    stack: str = typer.Option("local", help="Name of the smoke stack."),
    keep: bool = typer.Option(False, help="Leave the stack up instead of destroying it."),
    root: Root = None,
) -> None:
    """Deploy the smoke stack, check a second preview changes nothing, then destroy it.

    The stack writes one file, ``.unkai/smoke/<stack>.txt`` of the project, whose content
    is a Pulumi secret: it proves the engine, the language host and unkai's provider.
    """
    root = resolve_root(root)
    st = select_stack(packaged_program("smoke", root), stack, root=root)
    st.set_config("message", _secret("hello from unkai"))
    st.set_config("path", _plain(str(root / ".unkai" / "smoke" / f"{stack}.txt")))
    timings: dict[str, float] = {}

    start = time.monotonic()
    up = st.up(on_output=_stream, color=_color())
    timings["up"] = time.monotonic() - start
    console.print(f"[green]up:[/] {dict(up.summary.resource_changes or {})}")

    start = time.monotonic()
    preview = st.preview(on_output=_stream, expect_no_changes=True, color=_color())
    timings["preview"] = time.monotonic() - start
    changes = {k: v for k, v in preview.change_summary.items() if k != "same"}
    if changes:
        raise UnkaiError(f"a second preview wants changes: {changes}")
    console.print("[green]preview:[/] no changes")

    if not keep:
        start = time.monotonic()
        st.destroy(on_output=_stream, color=_color())
        st.workspace.remove_stack(stack)
        timings["destroy"] = time.monotonic() - start
        console.print("[green]destroy:[/] nothing left")
    console.print(
        "[bold green]smoke ok[/] " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()),
        highlight=False,
    )


def _secret(value: str):  # type: ignore[no-untyped-def]
    from pulumi import automation as auto

    return auto.ConfigValue(value=value, secret=True)


def _plain(value: str):  # type: ignore[no-untyped-def]
    from pulumi import automation as auto

    return auto.ConfigValue(value=value)


def shell_env() -> None:
    """Print ``export`` lines that let a shell run ``pulumi`` on unkai's stacks directly.

    Use as ``eval "$(.venv/bin/unkai shell-env)"``, then ``cd`` to the project's program
    (``stacks/cloud`` in this checkout) and run ``pulumi preview`` / ``pulumi up``.
    Creates the local passphrase file when it does not exist yet; prints no secret.
    """
    for key, value in sorted(workspace_env().items()):
        sys.stdout.write(f"export {key}={shlex.quote(value)}\n")
