"""Pulumi workspaces for unkai's stacks, through the Automation API.

Local use needs no ``pulumi login``: unless the user says otherwise, state lives in
Pulumi's file backend under ``.unkai/state/`` of the project, and secrets are encrypted
with a passphrase kept in ``.unkai/passphrase`` (mode 0600, git-ignored, made on first
use). Set ``PULUMI_BACKEND_URL`` (``s3://…``, ``gs://…``, ``https://api.pulumi.com``)
and ``PULUMI_CONFIG_PASSPHRASE`` / ``PULUMI_CONFIG_PASSPHRASE_FILE`` to use others.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import os
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from pulumi import automation as auto
from semver import VersionInfo

from unkai._files import atomic_write, file_lock
from unkai.cli._updates import Step, steps_of
from unkai.errors import ConfigError, Interrupted, ToolchainError, UnkaiError
from unkai.model import Environment
from unkai.render import render_ssh_config
from unkai.toolchain import (
    PROJECT_FILE,
    Found,
    engine_env,
    environment_ssh,
    find_project,
    find_pulumi,
    known_hosts_file,
    load_project,
    operator_key,
    process_start,
    project_root,
    state_dir,
)

ROOT_HELP = (
    "The unkai project (a folder with unkai.toml). Default: the one around the current"
    " directory, found upward like git finds a repository."
)
Root = Annotated[Path | None, typer.Option("--root", help=ROOT_HELP, show_default=False)]
"""The ``--root`` option every command that works on a project takes."""


def resolve_root(root: Path | None) -> Path:
    """The project root ``--root`` names, or the one around the current directory.

    Raises:
        ConfigError: ``root`` is not a project, or none is found; says where it looked.
    """
    return (load_project(root) if root is not None else find_project()).root


def program_dir(root: Path) -> Path:
    """The folder of the project's Pulumi program (``[project] program``).

    Raises:
        ConfigError: It has no ``Pulumi.yaml``.
    """
    program = load_project(root).program
    if not (program / "Pulumi.yaml").is_file():
        raise ConfigError(
            f"{program} has no Pulumi.yaml", file=str(root / PROJECT_FILE),
            key_path="project.program",
        )  # fmt: skip
    return program


def packaged_program(name: str, root: Path) -> Path:
    """A program unkai ships (``unkai/scaffold/<name>``), copied into the project to run.

    The engine writes a stack's settings (``Pulumi.<stack>.yaml``) beside its program,
    so it runs from ``<root>/.unkai/programs/<name>``, refreshed from the package on each
    call: what runs is this unkai's program, whatever the project was made with.
    """
    source = Path(str(importlib.resources.files("unkai"))) / "scaffold" / name
    target = root / ".unkai" / "programs" / name
    target.mkdir(parents=True, exist_ok=True)
    for file in ("Pulumi.yaml", "__main__.py"):
        text = (source / file).read_text(encoding="utf-8")
        if not (target / file).is_file() or (target / file).read_text(encoding="utf-8") != text:
            (target / file).write_text(text, encoding="utf-8")
    return target


def passphrase_file(root: Path) -> Path:
    """The local passphrase file, created (mode 0600) with a random passphrase when missing."""
    path = root / ".unkai" / "passphrase"
    if path.exists():
        return path
    # Two commands of one project started together make one passphrase, written whole.
    with file_lock(path.parent / ".passphrase.lock"):
        if not path.exists():
            atomic_write(path, secrets.token_urlsafe(32) + "\n", mode=0o600)
    return path


def workspace_env(root: Path | None = None) -> dict[str, str]:
    """Environment for every engine run: backend, secrets provider, PATH of the toolchain."""
    root = root or project_root()
    env = engine_env()
    if not os.environ.get("PULUMI_BACKEND_URL"):
        state = state_dir(root)
        state.mkdir(parents=True, exist_ok=True)
        env["PULUMI_BACKEND_URL"] = f"file://{state}"
    if not (
        os.environ.get("PULUMI_CONFIG_PASSPHRASE")
        or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    ):
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(passphrase_file(root))
    return env


class _KnownCommand(auto.PulumiCommand):
    """The pinned pulumi CLI, whose version :func:`find_pulumi` already knows.

    The SDK's ``PulumiCommand`` runs ``pulumi version`` when it is made (0.13 s, on
    every unkai command that reaches a stack); this one takes the version found.
    """

    def __init__(self, found: Found) -> None:  # the SDK's would run the CLI
        self.command = str(found.path)
        self.version = VersionInfo.parse(found.version)

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: Callable[[str], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> auto.CommandResult:
        """Run the CLI as the SDK does, and leave a Ctrl-C to the engine.

        The engine runs in unkai's process group, so a SIGINT to the group (Ctrl-C, or
        ``timeout -s INT``) reaches it as well: its first cancels the update (the steps
        under way finish, the state is saved and the lock released), its second stops it
        at once. Raised in unkai, the ``KeyboardInterrupt`` would close the engine's
        pipes under the SDK's reader threads (a traceback) and leave the engine writing to
        nothing; here unkai ignores it, shows the engine's output to its end, and once the
        engine has stopped says what it left, from what the engine said it did.

        Raises:
            Interrupted: the engine was interrupted and stopped short.
            auto.CommandError: the engine failed (as the SDK raises it).
        """
        if threading.current_thread() is not threading.main_thread():
            return super().run(args, cwd, additional_env, on_output, on_error)
        said: list[str] = []

        def watch(show: Callable[[str], None] | None) -> Callable[[str], None]:
            def line(text: str) -> None:
                if _CANCELLING in text or _TERMINATING in text:
                    said.append(_TERMINATING if _TERMINATING in text else _CANCELLING)
                if show is not None:
                    show(text)

            return line

        previous = signal.signal(signal.SIGINT, lambda *_: None)
        try:
            return super().run(args, cwd, additional_env, watch(on_output), watch(on_error))
        except auto.CommandError as err:
            if said:
                raise Interrupted(_interrupted(args, at_once=_TERMINATING in said)) from err
            raise
        finally:
            signal.signal(signal.SIGINT, previous)


_CANCELLING = "received; cancelling"
_TERMINATING = "received; terminating"
"""What the engine prints on its first SIGINT (or SIGTERM), and on its second."""


def _interrupted(args: Sequence[str], *, at_once: bool) -> str:
    """What an engine run that was interrupted left, and what to run next."""
    verb = next((arg for arg in args if not arg.startswith("-")), "pulumi")
    if verb == "preview":
        return "interrupted: the preview stopped; nothing was changed"
    if verb not in ("up", "destroy", "refresh"):
        return f"interrupted: pulumi {verb} stopped"
    if at_once:
        return (
            "interrupted twice: the engine stopped at once, and steps under way may be"
            f" unfinished; the next {verb} finds and finishes them"
        )
    return (
        "interrupted: the engine finished the steps under way, saved the state and"
        f" stopped; the next {verb} does the rest"
    )


def select_stack(
    stack_dir: Path,
    stack_name: str,
    *,
    env: Mapping[str, str] | None = None,
    create: bool = True,
    root: Path | None = None,
) -> auto.Stack:
    """Create or select ``stack_name`` of the Pulumi project in ``stack_dir``.

    The stack's state is the unkai project's at ``root`` (default: the one around the
    current directory). With ``create=False`` a stack that does not exist is not made:
    the engine's ``StackNotFoundError`` is raised instead (a reader's use).

    Raises:
        ToolchainError: the pinned pulumi CLI is missing (run ``scripts/bootstrap``).
    """
    found = find_pulumi(verify=False)
    if found is None:
        raise ToolchainError("the pinned pulumi CLI is missing; run scripts/bootstrap")
    command = _KnownCommand(found)
    opts = auto.LocalWorkspaceOptions(
        work_dir=str(stack_dir),
        env_vars={**workspace_env(root), **(env or {})},
        pulumi_command=command,
    )
    if not create:
        return auto.select_stack(stack_name=stack_name, work_dir=str(stack_dir), opts=opts)
    return auto.create_or_select_stack(stack_name=stack_name, work_dir=str(stack_dir), opts=opts)


@dataclass(frozen=True)
class UpReport:
    """What one ``pulumi up`` reported: its change counts, the stack's outputs, its steps."""

    changes: dict[str, int]
    outputs: dict[str, auto.OutputValue]
    steps: tuple[Step, ...] = ()


def run_up(
    stack: auto.Stack,
    *,
    on_output: Callable[[str], None],
    color: str,
    expect_no_changes: bool = False,
    policy_packs: Sequence[str] = (),
    policy_pack_configs: Sequence[str] = (),
    log_verbosity: int = 0,
    log_to_std_err: bool = False,
    on_error: Callable[[str], None] | None = None,
    extra_env: Mapping[str, str] | None = None,
    on_report: Callable[[UpReport, bool], None] | None = None,
) -> UpReport:
    """Run ``pulumi up`` on ``stack`` and read what it reported from its event log.

    The Automation API's ``Stack.up`` runs two more ``pulumi`` commands when the update
    is over (``stack output`` and ``stack history``, 0.8 s of a 5 s no-change ``up
    local``) to return what the engine has just written to the update's event log: the
    change counts (its summary event) and the stack's outputs (the root resource's
    outputs event). This runs the same ``pulumi up`` and reads them from that log.
    Outputs the engine marked secret arrive as its ``[secret]`` placeholder.

    ``on_report`` gets what the log holds and whether the update succeeded, a failed
    update included (its steps up to the failure).

    Raises:
        auto.CommandError: the update failed (as ``Stack.up`` raises it).
        Interrupted: a Ctrl-C stopped the update short.
    """
    args = ["up", "--yes", "--skip-preview", "--exec-kind", "auto.local", "--color", color]
    args += ["--expect-no-changes"] if expect_no_changes else []
    for pack in policy_packs:
        args += ["--policy-pack", pack]
    for config in policy_pack_configs:
        args += ["--policy-pack-config", config]
    args += ["--verbose", str(log_verbosity)] if log_verbosity else []
    args += ["--logtostderr"] if log_to_std_err else []
    logs = Path(tempfile.mkdtemp(prefix="unkai-up-"))
    try:
        events = logs / "events.jsonl"
        args += ["--event-log", str(events), "--stack", stack.name]
        env = {"PULUMI_DEBUG_COMMANDS": "true", **stack.workspace.env_vars, **(extra_env or {})}
        try:
            stack.workspace.pulumi_command.run(
                args, stack.workspace.work_dir, env, on_output, on_error
            )
        except (auto.CommandError, Interrupted):
            # The engine's error is the one to raise, whatever its log holds.
            if on_report is not None and events.is_file():
                with contextlib.suppress(ValueError):
                    on_report(_up_report(events.read_text().splitlines()), False)
            raise
        report = _up_report(events.read_text().splitlines())
        if on_report is not None:
            on_report(report, True)
        return report
    finally:
        shutil.rmtree(logs, ignore_errors=True)


def _up_report(lines: Sequence[str]) -> UpReport:
    """The change counts and stack outputs in the lines of an update's event log."""
    changes: dict[str, int] = {}
    outputs: dict[str, auto.OutputValue] = {}
    events = [json.loads(line) for line in lines if line.strip()]
    for event in events:
        if "summaryEvent" in event:
            changes = dict(event["summaryEvent"].get("resourceChanges") or {})
        step = (event.get("resOutputsEvent") or {}).get("metadata") or {}
        if step.get("type") == "pulumi:pulumi:Stack":
            new = step.get("new") or {}
            outputs = {
                name: auto.OutputValue(value, value == SECRET_PLACEHOLDER)
                for name, value in (new.get("outputs") or {}).items()
            }
    return UpReport(changes=changes, outputs=outputs, steps=steps_of(events))


SECRET_PLACEHOLDER = "[secret]"
"""What the engine's event log shows for a secret value."""


def ssh_client(env: Environment, root: Path) -> Path:
    """Write ``env``'s SSH client configuration and wrapper; return the wrapper.

    Every SSH client of unkai runs it (libvirt's ``qemu+ssh``, Ansible, ``unkai ssh``):
    the operator key, the project's ``known_hosts``, shared connections.
    """
    config = render_ssh_config(
        env,
        identity_file=str(operator_key(root)),
        known_hosts=str(known_hosts_file(root)),
        # Short: a socket path is limited to 108 bytes, and %C alone takes 40.
        control_dir=tempfile.gettempdir(),
    )
    return environment_ssh(root, env.name, config)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs on this machine; a zombie does not (see ``process_start``)."""
    return process_start(pid) is not None


_OPERATIONS = ("up", "preview", "refresh", "destroy", "import")


def _operation(pid: int) -> str:
    """The engine command ``pid`` runs (``up``, ``destroy``…); ``update`` when unknown."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "update"
    return next((a for a in argv[1:] if a in _OPERATIONS), "update")


def release_dead_lock(
    stack: auto.Stack,
    root: Path,
    *,
    wait: bool = False,
    say: Callable[[str], None] = lambda _: None,
    poll: float = 1.0,
) -> str | None:
    """Release ``stack``'s lock when its holder is a dead process on this machine.

    Pulumi's file backend keeps a lock per running update naming its pid and host; an
    ``up`` that was killed leaves it behind, and every later run refuses to start. A
    lock of a process that no longer exists here is removed (and said). A live holder is
    refused with what it runs, its pid and since when — or, with ``wait``, waited for
    (``say`` tells the user once). A holder on another machine cannot be checked from
    here: it is treated as live.

    Returns:
        What was released, for the user; None when there was no lock to release.

    Raises:
        UnkaiError: another operation on the stack is running and ``wait`` is false.
    """
    backend = os.environ.get("PULUMI_BACKEND_URL")
    if backend and not backend.startswith("file://"):
        return None  # a service backend keeps its own locks
    base = Path(backend.removeprefix("file://")) if backend else state_dir(root)
    project = stack.workspace.project_settings().name
    folder = base / ".pulumi" / "locks" / "organization" / project / stack.name
    released = None
    told = False
    while True:
        live = None
        for lock in sorted(folder.glob("*.json")):
            try:
                holder = json.loads(lock.read_text())
                pid, host, since = int(holder["pid"]), str(holder["hostname"]), holder["timestamp"]
            except (OSError, ValueError, KeyError):
                continue
            if host != socket.gethostname() or _alive(pid):
                where = "" if host == socket.gethostname() else f" on {host}"
                live = (
                    f"another `{_operation(pid)}` of {stack.name} is running"
                    f" (pid {pid}{where} since {since})"
                )
                continue
            lock.unlink(missing_ok=True)
            lock.with_name(lock.name + ".attrs").unlink(missing_ok=True)
            released = (
                f"released the lock of an interrupted run of {stack.name} (pid {pid}, {since})"
            )
        if live is None:
            return released
        if not wait:
            raise UnkaiError(f"{live}; wait for it to end, or pass --wait")
        if not told:
            say(f"{live}: waiting for it to end")
            told = True
        time.sleep(poll)


def pending_operations(stack: auto.Stack) -> list[dict[str, object]]:
    """The operations an interrupted run left pending in ``stack``'s state."""
    deployment = stack.export_stack().deployment or {}
    return list(deployment.get("pending_operations") or [])
