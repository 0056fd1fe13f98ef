"""``unkai up|preview|refresh|destroy <env>``: the environment's stack of ``stacks/cloud``.

The environment is loaded and validated before the engine starts, so bad input fails
with a clear error and creates nothing. Engine output streams live.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import secrets
import socket
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pulumi import automation as auto
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from unkai._files import atomic_write
from unkai.cli._engine_log import SECRET_SAFE_VERBOSITY, plan_engine_log
from unkai.cli._updates import keep_update
from unkai.cli._workspace import (
    Root,
    UpReport,
    pending_operations,
    program_dir,
    release_dead_lock,
    resolve_root,
    run_up,
    select_stack,
    ssh_client,
)
from unkai.drivers import libvirt
from unkai.environments import load_environment
from unkai.errors import ConfigError, DriverError, UnkaiError
from unkai.model import Environment, Host
from unkai.placement import Placement, place
from unkai.provider import parse_replace_reason
from unkai.render import (
    STORAGE_POOL,
    Templates,
    instance_group_name,
    owned_by,
    owner,
    render_tree,
)
from unkai.toolchain import (
    RUN_ENV,
    SSH_ENV,
    cached_probe,
    operator_key,
    ssh_dir,
    stop_leftovers,
    this_run,
)

if TYPE_CHECKING:
    from unkai.drivers.kubernetes import GroupStatus, PoolStatus

console = Console(soft_wrap=True)

Wait = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="When another operation on the environment runs, wait for it instead of failing.",
    ),
]

Verbose = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        min=0,
        help=(
            "The engine's log level (pulumi's -v), on standard error. At most"
            f" {SECRET_SAFE_VERBOSITY}: above, the engine prints the values of secrets."
        ),
    ),
]


PolicyPacks = Annotated[
    list[Path] | None,
    typer.Option(
        "--policy-pack",
        metavar="FOLDER",
        help=(
            "A Pulumi policy pack (CrossGuard) folder the engine runs on every resource;"
            " repeatable. A mandatory violation stops the command before any change."
        ),
    ),
]


PROJECT_PACKS = "policies"
"""The project's folder of policy packs: each ``policies/<pack>/PulumiPolicy.yaml`` runs."""


@dataclass(frozen=True)
class Policies:
    """The policy packs a ``preview`` or ``up`` runs, each with its config.

    Attributes:
        packs: Each pack's folder: ``--policy-pack``'s, the project's, the built-in one.
        configs: One JSON file per pack (``--policy-pack-config``): the levels the
            environment gives the pack's policies (``<pack>/<policy>: mandatory``), keyed
            by the pack's folder name; ``{}`` for a pack it says nothing of.
    """

    packs: list[str]
    configs: list[str]

    def engine_options(self) -> dict[str, list[str]]:
        """The Automation API's arguments (none without packs)."""
        if not self.packs:
            return {}
        return {"policy_packs": self.packs, "policy_pack_configs": self.configs}


def policy_packs(packs: list[Path] | None, env_name: str, root: Path) -> Policies:
    """The packs ``preview``, ``up`` and ``review`` run in ``env_name``, with their levels.

    Each ``--policy-pack`` folder is checked first; the project's are the folders of
    ``policies/`` with a ``PulumiPolicy.yaml``; the built-in pack comes when ``env_name``
    turns a built-in policy on. The configs go to ``.unkai/policy/<env>/config/``.

    Raises:
        ConfigError: a folder does not exist or has no ``PulumiPolicy.yaml``, or the
            environment does not load.
    """
    from unkai.environments import environment_file
    from unkai.policies import prepare_pack, project_levels
    from unkai.toolchain import ensure_policy_venv

    for pack in packs or []:
        if not (pack / "PulumiPolicy.yaml").is_file():
            raise ConfigError(
                f"{pack} is not a policy pack: it has no PulumiPolicy.yaml",
                key_path="--policy-pack",
                value=str(pack),
            )
    project = sorted(p.parent for p in (root / PROJECT_PACKS).glob("*/PulumiPolicy.yaml"))
    chosen = list(dict.fromkeys(pack.resolve() for pack in [*(packs or []), *project]))
    env = load_environment(env_name, root=root)
    file = environment_file(env_name, root=root)
    shown = file.relative_to(root) if file.is_relative_to(root) else file
    builtin = prepare_pack(
        env,
        root=root,
        env_file=str(shown),
        venv=lambda: ensure_policy_venv(say=lambda line: console.print(escape(line))),
    )
    folder = root / ".unkai" / "policy" / env_name / "config"
    configs = []
    for index, pack in enumerate([*chosen, *([builtin] if builtin else [])]):
        levels = {} if pack == builtin else project_levels(env, pack.name)
        config = {policy: {"enforcementLevel": level} for policy, level in levels.items()}
        path = folder / f"{index}-{pack.name}.json"
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(config, indent=2, sort_keys=True) + "\n")
        configs.append(str(path))
    return Policies([str(p) for p in [*chosen, *([builtin] if builtin else [])]], configs)


def _stream(line: str) -> None:
    sys.stdout.write(line if line.endswith("\n") else line + "\n")
    sys.stdout.flush()


def _stream_err(line: str) -> None:
    sys.stderr.write(line if line.endswith("\n") else line + "\n")
    sys.stderr.flush()


def engine_log_options(verbose: int) -> dict[str, Any]:
    """The Automation API's log options for ``--verbose``, after saying what the user must know.

    The notes of :func:`plan_engine_log` (a level lowered so that no secret is printed, a
    gRPC trace that would hold secrets) are printed before any engine runs.
    """
    log = plan_engine_log(verbose, os.environ)
    for note in log.notes:
        console.print(f"[yellow]{escape(note)}[/]")
    if not log.verbosity:
        return {}
    return {"log_verbosity": log.verbosity, "log_to_std_err": True, "on_error": _stream_err}


def _color() -> str:
    return "always" if sys.stdout.isatty() else "never"


def ensure_local_secrets(
    stack: auto.Stack, env: Environment, config: Mapping[str, auto.ConfigValue] | None = None
) -> list[str]:
    """Give each SecretRef the stack has no value for a random one.

    For ``local`` and environments whose settings say ``generate_secrets: true`` (so
    ``unkai up local`` works on a fresh machine). Values are stored as encrypted stack
    config (``secret=True``) and never printed; other environments must set theirs
    (``pulumi config set --secret <name> …``).

    ``config`` is the stack's config when the caller has just read it (each read runs
    the ``pulumi`` command).

    Returns:
        The names of the secrets generated.
    """
    project = stack.workspace.project_settings().name
    config = stack.get_all_config() if config is None else config
    refs = sorted(
        {ref.name for w in env.workloads.values() for ref in w.secret_env.values()}
        | {ref.name for i in env.all_instances() for ref in i.secrets.values()}
    )
    made = []
    for ref in refs:
        key = ref if ":" in ref else f"{project}:{ref}"
        if key not in config:
            stack.set_config(ref, auto.ConfigValue(secrets.token_urlsafe(24), secret=True))
            made.append(ref)
    return made


def cloud_stack(env_name: str, root: Path, *, wait: bool = False) -> auto.Stack:
    """The stack of ``env_name``, validated and configured (accelerator, operator key).

    What an interrupted run left is dealt with first, and the user told: its lock is
    released, the processes it started that still run are stopped, and its pending
    operations are cleared (the provider adopts what they made). A run that is still
    alive is refused, or with ``wait`` waited for.

    For ``local``, a workload secret missing from the stack's config is generated
    (:func:`ensure_local_secrets`) and the user told so.

    Raises:
        ConfigError: the environment is invalid (nothing is created).
        PlacementError: its instances do not fit its hosts.
    """
    declared = load_environment(env_name, root=root)
    place(declared)  # before anything is created
    wrapper = ssh_client(declared, root)
    run = this_run(root, env_name)
    env_vars = {SSH_ENV: str(wrapper), RUN_ENV: run.marker()}
    with ThreadPoolExecutor(max_workers=1) as renderer:
        # Every template renders with what the environment gives it, or nothing starts:
        # the render (0.3 s at 1,000 instances) runs while an existing stack is selected,
        # and a new stack is made only once it has passed.
        rendered = renderer.submit(
            render_tree,
            declared,
            accelerator="kvm" if cached_probe().accelerator == "kvm" else "tcg",
            templates=Templates(root),
        )
        try:
            stack = select_stack(program_dir(root), env_name, env=env_vars, create=False, root=root)
        except auto.StackNotFoundError:
            rendered.result()
            stack = select_stack(program_dir(root), env_name, env=env_vars, root=root)
        rendered.result()
    released = release_dead_lock(
        stack, root, wait=wait, say=lambda line: console.print(f"[yellow]{escape(line)}[/]")
    )
    if released:
        console.print(f"[yellow]{released}[/]")
    stopped = stop_leftovers(root, env_name)
    if stopped:
        listed = ", ".join(str(p) for p in stopped)
        console.print(
            f"[yellow]stopped {len(stopped)} process(es) an interrupted run of {env_name}"
            f" left running: {escape(listed)}[/]"
        )
    with ThreadPoolExecutor(max_workers=1) as reader:
        # Two reads of the stack, each a pulumi command (0.3 s): side by side.
        config_read = reader.submit(stack.get_all_config)
        pending = pending_operations(stack)
        config = config_read.result()  # read once; a refresh leaves the config alone
    if pending:
        # An interrupted run: what it was creating may exist. Clearing the entries lets
        # the next create find it; the provider adopts what is its own.
        kinds = ", ".join(sorted({str(op.get("type")) for op in pending}))
        console.print(
            f"[yellow]an interrupted run of {env_name} left {len(pending)} operation(s)"
            f" pending ({kinds}): reading the real world back and clearing them[/]"
        )
        stack.refresh(clear_pending_creates=True, on_output=_stream, color=_color())
    overrides = config.get("unkai:overrides")
    env = load_environment(
        env_name, root=root, overrides=json.loads(overrides.value) if overrides else None
    )
    previous = stored_placement(config)
    unreachable = unreachable_hosts(env)
    remote = [h for h in env.hosts.values() if h.connection == "ssh"]
    if unreachable and len(unreachable) == len(remote):
        listed = ", ".join(f"{h.name} ({h.address})" for h in unreachable)
        raise DriverError(
            f"{env_name}: no SSH answers from {listed}. Start them, or, when they are"
            f" simulated hosts, run: unkai hosts up {env_name}"
        )
    drained = stored_list(config, DRAINED_KEY)
    down = sorted({h.name for h in unreachable})
    placement = place(env, previous=previous, unavailable=sorted({*down, *drained}))
    if down:
        show_unreachable(env, down, previous, placement)
    public = operator_key(root).with_suffix(".pub").read_text().strip()
    wanted = {
        "unkai:accelerator": cached_probe().accelerator,
        "unkai:sshKeys": json.dumps([public]),
        UNAVAILABLE_KEY: json.dumps(sorted({*down, *drained})),
    }
    changed = {
        key: auto.ConfigValue(value)
        for key, value in wanted.items()
        if (had := config.get(key)) is None or had.secret or had.value != value
    }
    if changed:  # the same values again would cost a pulumi command (0.25 s) for nothing
        stack.set_all_config(changed)
    if env_name == "local" or env.settings.get(GENERATE_SECRETS) is True:
        for name in ensure_local_secrets(stack, env, config):
            console.print(
                f"generated a random value for secret [bold]{name}[/] (encrypted stack config)"
            )
    return stack


GENERATE_SECRETS = "generate_secrets"
"""An environment setting: when true, secrets missing from the stack's config are
generated at random on ``up`` (always so for ``local``); for test and lab clouds."""

UNAVAILABLE_KEY = "unkai:unavailable"
"""Stack config: hosts that did not answer when ``up`` started; they take no instance."""

DRAINED_KEY = "unkai:drained"
"""Stack config: hosts drained by ``unkai hosts drain``; they take no instance."""

PLACEMENT_KEY = "unkai:placement"
"""Stack config: instance → host after the last ``up`` (what makes placement sticky)."""


def stored_placement(config: Mapping[str, auto.ConfigValue]) -> dict[str, str]:
    """Where each instance ran after the last ``up``, from the stack's ``config`` (or empty)."""
    value = config.get(PLACEMENT_KEY)
    return dict(json.loads(value.value)) if value is not None else {}


def stored_list(config: Mapping[str, auto.ConfigValue], key: str) -> list[str]:
    """A JSON list kept in the stack's ``config`` (empty when unset)."""
    value = config.get(key)
    return list(json.loads(value.value)) if value is not None else []


def drain(
    env: str = typer.Argument(..., help="Environment (and stack) name."),
    host: str = typer.Argument(..., help="The host to empty."),
    undo: bool = typer.Option(False, "--undo", help="Let the host take instances again."),
    root: Root = None,
) -> None:
    """Move every instance off a host, live, and keep it empty (``--undo`` to stop)."""
    root = resolve_root(root)
    environment = load_environment(env, root=root)
    if host not in environment.hosts:
        raise ConfigError(
            f"{env} has no host {host!r}", allowed=", ".join(sorted(environment.hosts))
        )
    stack = cloud_stack(env, root)
    drained = set(stored_list(stack.get_all_config(), DRAINED_KEY))
    drained = drained - {host} if undo else drained | {host}
    stack.set_config(DRAINED_KEY, auto.ConfigValue(json.dumps(sorted(drained))))
    if undo:
        console.print(f"{host} takes instances again (nothing moves back: placement is sticky)")
        return
    up(env, expect_no_changes=False, root=root)
    console.print(f"[green]drained[/] {host}: it runs no instance of {env}")


def store_placement(stack: auto.Stack, outputs: auto.OutputMap) -> None:
    """Record where each instance runs now, from the stack's ``outputs``, in its config."""
    instances = (outputs.get("instances") or auto.OutputValue({}, False)).value or {}
    placement = {name: vm["host"] for name, vm in sorted(instances.items()) if vm.get("host")}
    stack.set_config(PLACEMENT_KEY, auto.ConfigValue(json.dumps(placement, sort_keys=True)))


def show_unreachable(
    env: Environment, down: list[str], previous: Mapping[str, str], placement: Placement
) -> None:
    """A table of the hosts that do not answer, the instances on them and where they go."""
    table = Table(title=f"unreachable hosts of {env.name}")
    for column in ("host", "address", "instance", "goes to"):
        table.add_column(column)
    stranded = {p.instance: p.detail for p in placement.stranded}
    for host in down:
        names = sorted(n for n, h in previous.items() if h == host) or ["-"]
        for name in names:
            target = placement.assignments.get(name, "")
            where = f"stays: {stranded[name]}" if name in stranded else target
            table.add_row(host, env.hosts[host].address, name, where if name != "-" else "")
    console.print(table)


def unreachable_hosts(env: Environment, *, timeout: float = 3.0) -> list[Host]:
    """The ``ssh`` hosts of ``env`` whose SSH port does not accept a connection."""
    down = []
    for host in sorted(env.hosts.values(), key=lambda h: h.name):
        if host.connection != "ssh":
            continue
        try:
            socket.create_connection((host.address, 22), timeout=timeout).close()
        except OSError:
            down.append(host)
    return down


def _show_kubernetes(stack: auto.Stack, outputs: auto.OutputMap) -> None:
    clusters = outputs.get("clusters")
    if clusters is not None and clusters.value:
        table = Table(title=f"clusters of {stack.name}")
        for column in ("cluster", "endpoint", "nodes Ready per pool", "kubeconfig"):
            table.add_column(column)
        for name, cluster in sorted(clusters.value.items()):
            pools = cluster.get("pools") or {}
            table.add_row(
                name,
                cluster.get("endpoint") or "",
                ", ".join(f"{pool}: {int(n or 0)}" for pool, n in sorted(pools.items())),
                cluster.get("kubeconfig") or "",
            )
        console.print(table)
    workloads = outputs.get("workloads")
    if workloads is not None and workloads.value:
        table = Table(title=f"workloads of {stack.name}")
        for column in ("workload", "cluster", "available / replicas"):
            table.add_column(column)
        for name, workload in sorted(workloads.value.items()):
            table.add_row(
                name,
                workload.get("cluster") or "",
                f"{int(workload.get('available') or 0)} / {int(workload.get('replicas') or 0)}",
            )
        console.print(table)


def _show(stack: auto.Stack, outputs: auto.OutputMap, root: Path) -> None:
    instances = outputs.get("instances")
    if instances is None:
        return
    key = operator_key(root)
    table = Table(title=f"instances of {stack.name}")
    for column in ("VM", "host", "state", "accelerator", "guest IP", "ssh port", "boot s"):
        table.add_column(column)
    for name, vm in sorted(instances.value.items()):
        port = vm.get("ssh_port")
        table.add_row(
            name,
            vm.get("host") or "",
            vm.get("state") or "",
            vm.get("accelerator") or "",
            ", ".join(vm.get("ips") or []),
            str(int(port)) if port else "",
            f"{vm['boot_seconds']:.0f}" if vm.get("boot_seconds") else "",
        )
    console.print(table)
    if any(vm.get("ssh_port") for vm in instances.value.values()):
        console.print(f"log in: ssh -i {key.relative_to(root)} -p <ssh port> unkai@127.0.0.1")
    console.print(f"or: unkai ssh {stack.name} <VM>")
    groups = outputs.get("instance_groups")
    if groups is not None and groups.value:
        table = Table(title=f"instance groups of {stack.name} (kept by the operator)")
        for column in ("group", "healthy / target", "updated", "members"):
            table.add_column(column)
        for name, group in sorted(groups.value.items()):
            table.add_row(
                name,
                f"{int(group.get('healthy') or 0)} / {int(group.get('target') or 0)}",
                str(int(group.get("updated") or 0)),
                ", ".join(group.get("members") or ()),
            )
        console.print(table)
        console.print(f"members, hosts and health: unkai status {stack.name}")
    images = outputs.get("container_images")
    if images is None or not images.value:
        return
    table = Table(title=f"container images of {stack.name}")
    for column in ("image", "reference", "id", "size MB"):
        table.add_column(column)
    for name, image in sorted(images.value.items()):
        table.add_row(
            name,
            image.get("reference") or "",
            (image.get("image_id") or "")[:19],
            f"{(image.get('size_bytes') or 0) / 1e6:.0f}",
        )
    console.print(table)


def up(
    env: str = typer.Argument(..., help="Environment (and stack) name, e.g. local."),
    expect_no_changes: bool = typer.Option(False, help="Fail if anything would change."),
    root: Root = None,
    verbose: Verbose = 0,
    wait: Wait = False,
    policy_pack: PolicyPacks = None,
    no_wait: bool = typer.Option(
        False,
        "--no-wait",
        help="Apply managed instance groups and return: the operator makes their members.",
    ),
) -> None:
    """Deploy the environment and show what came up."""
    root = resolve_root(root)
    policies = policy_packs(policy_pack, env, root)
    log = engine_log_options(verbose)
    stack = cloud_stack(env, root, wait=wait)
    start = time.monotonic()
    if policies.packs:
        # The engine checks a resource when it is registered, so a violation late in the
        # program would stop an up after the resources before it were made: a preview
        # checks them all first, and nothing is made unless it passes.
        count = len(policies.packs)
        console.print(f"checking the policies of {count} pack(s) before anything changes")
        stack.preview(on_output=_stream, color=_color(), **policies.engine_options(), **log)
    began = dt.datetime.now(dt.UTC)

    def keep(report: UpReport, succeeded: bool) -> None:
        # What each resource's step did, and why, for the console's history page. The
        # update is done either way: a file that cannot be written is said, not raised.
        now = dt.datetime.now(dt.UTC)
        try:
            keep_update(
                root, env, started=began, ended=now, succeeded=succeeded, steps=report.steps
            )
        except OSError as err:
            console.print(f"[yellow]warning:[/] the update's steps were not kept: {err}")

    report = run_up(
        stack,
        on_output=_stream,
        color=_color(),
        expect_no_changes=expect_no_changes,
        extra_env={"UNKAI_NO_WAIT": "1"} if no_wait else None,
        on_report=keep,
        **policies.engine_options(),
        **log,
    )
    # The outputs the engine reported (each stack.outputs() would run the pulumi command).
    store_placement(stack, report.outputs)
    console.print(f"[green]up[/] {env}: {report.changes} in {time.monotonic() - start:.0f} s")
    _show(stack, report.outputs, root)
    _show_kubernetes(stack, report.outputs)


def preview(
    env: str = typer.Argument(..., help="Environment (and stack) name."),
    expect_no_changes: bool = typer.Option(False, help="Fail if anything would change."),
    root: Root = None,
    verbose: Verbose = 0,
    wait: Wait = False,
    policy_pack: PolicyPacks = None,
) -> None:
    """Show what ``up`` would change, and why (replacements name their property)."""
    root = resolve_root(root)
    policies = policy_packs(policy_pack, env, root)
    log = engine_log_options(verbose)
    stack = cloud_stack(env, root, wait=wait)
    reasons: list[tuple[str, str, str]] = []
    result = stack.preview(
        on_output=_stream,
        on_event=lambda event: _collect_reasons(event, reasons),
        color=_color(),
        diff=True,
        expect_no_changes=expect_no_changes,
        **policies.engine_options(),
        **log,
    )
    _show_reasons(reasons)
    console.print(f"[green]preview[/] {env}: {result.change_summary}")


def _collect_reasons(event: auto.EngineEvent, into: list[tuple[str, str, str]]) -> None:
    diagnostic = event.diagnostic_event
    found = parse_replace_reason(diagnostic.message) if diagnostic is not None else None
    if diagnostic is not None and found is not None:
        entry = ((diagnostic.urn or "").rsplit("::", 1)[-1], *found)
        if entry not in into:
            into.append(entry)


def _show_reasons(reasons: list[tuple[str, str, str]]) -> None:
    """A table of every replacement the preview plans: the resource, what changed, why."""
    if not reasons:
        return
    table = Table(title="replacements, and why")
    for column in ("resource", "property", "why"):
        table.add_column(column)
    for row in reasons:
        table.add_row(*row)
    console.print(table)


def refresh(
    env: str = typer.Argument(..., help="Environment (and stack) name."),
    root: Root = None,
    verbose: Verbose = 0,
    wait: Wait = False,
) -> None:
    """Read every resource back from the real world into the state."""
    root = resolve_root(root)
    log = engine_log_options(verbose)
    stack = cloud_stack(env, root, wait=wait)
    result = stack.refresh(on_output=_stream, color=_color(), **log)
    console.print(f"[green]refresh[/] {env}: {dict(result.summary.resource_changes or {})}")


def destroy(
    env: str = typer.Argument(..., help="Environment (and stack) name."),
    root: Root = None,
    verbose: Verbose = 0,
    wait: Wait = False,
) -> None:
    """Delete everything the environment's stack created."""
    root = resolve_root(root)
    log = engine_log_options(verbose)
    stack = cloud_stack(env, root, wait=wait)
    result = stack.destroy(on_output=_stream, color=_color(), **log)
    if result.summary.result != "succeeded":
        raise UnkaiError(f"destroy of {env} did not succeed: {result.summary.message}")
    environment = load_environment(env, root=root)
    removed, left, unchecked = sweep_hosts(environment, ssh=ssh_dir(root) / env / "ssh")
    for line in removed:
        console.print(f"[yellow]removed a leftover of {env}:[/] {line}")
    checked = len(environment.hosts) - len(unchecked)
    if left or unchecked:
        for line in left:
            console.print(f"[red]left:[/] {line}")
        for host in unchecked:
            console.print(f"[red]not checked (unreachable):[/] {host}")
        raise UnkaiError(
            f"destroy {env}: {len(left)} object(s) remain and {len(unchecked)} host(s) could"
            " not be checked (listed above)"
        )
    console.print(
        f"[green]destroy[/] {env}: checked {checked} host(s) for anything of {env}'s; nothing left"
    )


def sweep_hosts(env: Environment, *, ssh: Path) -> tuple[list[str], list[str], list[str]]:
    """After a destroy, look on every host of ``env`` for anything of its own and remove it.

    ``ssh`` is the environment's SSH client (:func:`unkai.cli._workspace.ssh_client`).

    Returns:
        What was removed, what is still there (``host: object``), and the hosts that
        could not be checked (unreachable).
    """
    removed: list[str] = []
    left: list[str] = []
    unchecked: list[str] = []
    for host in sorted(env.hosts.values(), key=lambda h: h.name):
        if libvirt.unreachable(host.libvirt_uri):
            unchecked.append(f"{host.name} ({host.address})")
            continue
        with libvirt.session(host.libvirt_uri, ssh=str(ssh)) as conn:
            gone, there = conn.sweep(
                env.name,
                project=env.project,
                pool=STORAGE_POOL,
                owns=functools.partial(owned_by, owner(env)),
            )
        removed += [f"{host.name}: {what}" for what in gone]
        left += [f"{host.name}: {what}" for what in there]
    return removed, left, unchecked


CommandArgument = typer.Argument(None, help="A command to run instead of a shell.")

GUEST_USER = "unkai"
"""The user cloud-init creates in every guest, with the operator key authorised."""


def guest_known_hosts(vm: Mapping[str, Any]) -> str:
    """The ``known_hosts`` lines of a VM (pure): its address and the keys it printed.

    A VM on a forwarded port is ``[127.0.0.1]:<port>``; any other its first address.
    """
    port = vm.get("ssh_port")
    addresses = vm.get("ips") or []
    where = f"[127.0.0.1]:{int(port)}" if port else (addresses[0] if addresses else "")
    keys = vm.get("host_keys") or []
    return "".join(f"{where} {key}\n" for key in keys) if where else ""


def ssh_argv(
    *, wrapper: Path, vm: Mapping[str, Any], host: Host, guest_known_hosts: Path
) -> list[str]:
    """The command that logs in to a VM (pure): through its forwarded port or its host.

    A VM on QEMU user networking is reached on the loopback port forwarded to it; any
    other through its hypervisor host (``ProxyJump``), the host's SSH settings coming
    from the environment's client configuration. The guest's host key is checked
    against the keys it printed on its console at first boot (``guest_known_hosts``,
    written by :func:`ssh` from the stack's outputs): never trusted on first use.
    """
    guest = [
        "-o",
        f"UserKnownHostsFile={guest_known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
    ]
    port = vm.get("ssh_port")
    if port:
        return [str(wrapper), *guest, "-p", str(int(port)), f"{GUEST_USER}@127.0.0.1"]
    addresses = vm.get("ips") or []
    if not addresses:
        raise DriverError(f"VM {vm.get('name', '')} reported no address to log in to")
    return [str(wrapper), *guest, "-J", host.address, f"{GUEST_USER}@{addresses[0]}"]


def member_vms(groups: Mapping[str, GroupStatus | PoolStatus]) -> dict[str, dict[str, Any]]:
    """The members of ``groups`` (or ``vm`` pools' nodes) as :func:`ssh` takes a VM (pure).

    Each from the operator's status (its host, the address and host keys it recorded
    when the member came up) and its slot in the spec (the forwarded port, if any).
    """
    found: dict[str, dict[str, Any]] = {}
    for group in groups.values():
        ports = {
            slot["name"]: (slot.get("inputs") or {}).get("ssh_port")
            for slot in group.spec.get("slots") or ()
        }
        for member in group.members:
            address = member.address
            found[member.name] = {
                "name": member.name,
                "host": member.host,
                "ssh_port": ports.get(member.name),
                "ips": [address] if address and address != "127.0.0.1" else [],
                "host_keys": list(member.host_keys),
            }
    return found


def _members(environment: Environment, root: Path) -> dict[str, dict[str, Any]]:
    """The VMs the operator keeps for ``environment``: groups' members, ``vm`` pools' nodes."""
    from unkai.components import clusters_root
    from unkai.drivers.kubernetes import read_instance_group, read_node_pool

    cluster = environment.management_cluster
    if cluster is None:
        return {}
    kept: dict[str, GroupStatus | PoolStatus] = {}
    kubeconfig = clusters_root(root) / cluster / "kubeconfig" / "admin.kubeconfig"
    for group in environment.instance_groups.values() if kubeconfig.is_file() else ():
        name = instance_group_name(environment, group)
        found = read_instance_group(kubeconfig=kubeconfig, name=name)
        if found is not None:
            kept[name] = found
    for cluster_name, spec in environment.clusters.items():
        own = clusters_root(root) / cluster_name / "kubeconfig" / "admin.kubeconfig"
        for pool in spec.node_pools if own.is_file() else ():
            if pool.kind == "vm":
                found_pool = read_node_pool(kubeconfig=own, name=pool.name)
                if found_pool is not None:
                    kept[f"{cluster_name}/{pool.name}"] = found_pool
    return member_vms(kept)


def ssh(
    env: str = typer.Argument(..., help="Environment (and stack) name."),
    instance: str = typer.Argument(..., help="The VM (an instance or a group's member)."),
    command: list[str] | None = CommandArgument,
    root: Root = None,
) -> None:
    """Log in to a VM with the operator key (through its host when it has no forwarded port).

    A member of a group the operator keeps is found in its group's status on the
    management cluster, with the host keys it printed when it came up.
    """
    root = resolve_root(root)
    environment = load_environment(env, root=root)
    stack = cloud_stack(env, root)
    instances = (stack.outputs().get("instances") or auto.OutputValue({}, False)).value or {}
    if instance not in instances:
        instances = {**_members(environment, root), **instances}
    if instance not in instances:
        allowed = ", ".join(sorted(instances)) or "none (run unkai up first)"
        raise ConfigError(f"{env} has no VM named {instance!r}", allowed=allowed)
    vm = instances[instance]
    known = ssh_dir(root) / env / "guests_known_hosts"
    atomic_write(known, "".join(guest_known_hosts(v) for _, v in sorted(instances.items())))
    if not vm.get("host_keys"):
        raise DriverError(
            f"{instance} printed no SSH host key on its console; refresh, or up again"
        )
    argv = ssh_argv(
        wrapper=ssh_dir(root) / env / "ssh",
        vm=vm,
        host=environment.hosts[vm["host"]],
        guest_known_hosts=known,
    )
    os.execvp(argv[0], [*argv, *(command or [])])
