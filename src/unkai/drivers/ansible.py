"""Running unkai's Ansible playbooks through ansible-runner.

Plan, then apply (STYLE.md #2): :func:`playbook_plan` is pure and returns everything a
run needs — the inventory text, the host's variables (the bytes ``unkai render`` writes),
the extra variables, the playbook's path — so tests compare it without running
anything; :func:`run_playbook` executes a plan in a throw-away private data directory
and turns the runner's result into values (:class:`PlaybookResult`) or into
:class:`~unkai.errors.PlaybookFailed`.

Nothing a run is given is logged: progress reports only task names, and
ansible-runner writes no ``env/`` files (extra variables stay in memory).

Example:
    >>> plan = playbook_plan(
    ...     AnsibleHost(name="kvm-1", connection="ssh", address="10.0.0.5", ssh_user="ops"),
    ...     playbook="kvm-host.yml",
    ...     extravars={"kvm_host_accelerator": "tcg"},
    ...     playbooks_dir=Path("/srv/unkai/playbooks"),
    ... )
    >>> print(plan.inventory, end="")
    all:
      children:
        kvm_hosts:
          hosts:
            kvm-1:
              ansible_become: true
              ansible_connection: ssh
              ansible_host: 10.0.0.5
              ansible_user: ops
    >>> plan.playbook
    PosixPath('/srv/unkai/playbooks/kvm-host.yml')
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from unkai.drivers._ssh import ssh_executable
from unkai.errors import DriverError, PlaybookFailed

__all__ = [
    "HOSTS_GROUP",
    "AnsibleHost",
    "PlaybookPlan",
    "PlaybookResult",
    "builtin_playbooks_dir",
    "changed_counts",
    "failed_tasks",
    "playbook_plan",
    "reported_facts",
    "run_playbook",
]

HOSTS_GROUP = "kvm_hosts"
"""The inventory group the plays of unkai's playbooks target (as in ``unkai.render``)."""

_FAILED_EVENTS = ("runner_on_failed", "runner_on_unreachable")


def builtin_playbooks_dir() -> Path:
    """Locate unkai's built-in ``playbooks/`` folder: ``unkai/playbooks`` in the package.

    They are package data, so a wheel carries them.

    Raises:
        DriverError: The package has no playbooks folder (a broken install).
    """
    packaged = Path(__file__).resolve().parents[1] / "playbooks"
    if not packaged.is_dir():
        raise DriverError(f"unkai's playbooks are missing from {packaged}")
    return packaged


@dataclass(frozen=True)
class AnsibleHost:
    """A host as Ansible reaches it.

    Attributes:
        name: Inventory name (the model's host name).
        connection: ``local`` (this machine, no SSH) or ``ssh``.
        address: IP address or DNS name (``ssh`` only; ``local`` ignores it).
        ssh_user: The SSH user (``ssh`` only); anyone but root becomes root by sudo.
    """

    name: str
    connection: Literal["local", "ssh"]
    address: str | None = None
    ssh_user: str | None = None


@dataclass(frozen=True)
class PlaybookPlan:
    """Everything one playbook run needs; pure data, compared by tests.

    Attributes:
        playbook: Absolute path of the playbook (its ``roles/`` folder beside it).
        inventory: The YAML inventory text (one host in :data:`HOSTS_GROUP`).
        host_vars: Host → the text of its ``host_vars/<host>.yml`` beside the inventory.
        extravars: Extra variables passed with ``-e``.
        hosts: Inventory names of the hosts the run targets.
        check: Check mode (``--check``): report what would change, change nothing.
    """

    playbook: Path
    inventory: str
    extravars: Mapping[str, Any]
    hosts: tuple[str, ...]
    check: bool = False
    host_vars: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlaybookResult:
    """What a successful run reported.

    Attributes:
        changed: Host → how many tasks changed something (0: the host was already right).
        facts: Host → the variable the playbook reported last (``kvm_host_facts``).
        seconds: Wall-clock time of the run.
        tasks: The task names in the order they started.
        changed_tasks: ``(host, task)`` of each task that changed something (in check
            mode: would have).
    """

    changed: Mapping[str, int]
    facts: Mapping[str, Mapping[str, Any]]
    seconds: float
    tasks: tuple[str, ...] = field(default=())
    changed_tasks: tuple[tuple[str, str], ...] = field(default=())


def _this_machine_vars(host: AnsibleHost, local_python: str) -> dict[str, Any]:
    """How this machine reaches ``host``: its SSH client, or its Python; not the host's."""
    if host.connection == "local":
        # The venv's interpreter: ansible-core's modules run where ansible runs; the
        # apt module re-executes itself with the system python that has python3-apt.
        return {"ansible_python_interpreter": local_python}
    executable = ssh_executable()
    # The environment's client: its key and known hosts.
    return {} if executable is None else {"ansible_ssh_executable": executable}


def _connection_vars(host: AnsibleHost) -> dict[str, Any]:
    if host.connection == "local":
        return {"ansible_connection": "local"}
    if not host.address:
        raise DriverError(f"host {host.name}: connection ssh needs an address")
    hostvars: dict[str, Any] = {"ansible_connection": "ssh", "ansible_host": host.address}
    if host.ssh_user:
        hostvars["ansible_user"] = host.ssh_user
    if host.ssh_user != "root":
        hostvars["ansible_become"] = True
    return hostvars


def playbook_plan(
    host: AnsibleHost,
    *,
    playbook: str,
    host_vars: str | None = None,
    extravars: Mapping[str, Any] | None = None,
    playbooks_dir: Path | None = None,
    local_python: str | None = None,
) -> PlaybookPlan:
    """Plan a run of ``playbook`` against one host; pure.

    With ``host_vars`` (the text ``unkai render`` writes for the host), the run uses
    that file as the host's variables, connection included, and the inventory adds only
    how this machine reaches the host (its SSH client or its Python). Without, the
    connection variables come from ``host``.

    Args:
        host: The target host.
        playbook: File name of the playbook inside ``playbooks_dir`` (``kvm-host.yml``).
        host_vars: The host's rendered ``host_vars`` file.
        extravars: Extra variables.
        playbooks_dir: The playbooks folder (default: :func:`builtin_playbooks_dir`).
        local_python: Interpreter for ``connection: local`` hosts (default: the one
            running unkai, the project's venv).

    Returns:
        The plan; :func:`run_playbook` executes it.

    Raises:
        DriverError: An ``ssh`` host without an address.
    """
    folder = playbooks_dir if playbooks_dir is not None else builtin_playbooks_dir()
    hostvars = _this_machine_vars(host, local_python or sys.executable)
    if host_vars is None:
        hostvars.update(_connection_vars(host))
    inventory = {"all": {"children": {HOSTS_GROUP: {"hosts": {host.name: hostvars}}}}}
    return PlaybookPlan(
        playbook=folder / playbook,
        inventory=yaml.safe_dump(inventory, sort_keys=True, default_flow_style=False),
        extravars=dict(extravars or {}),
        hosts=(host.name,),
        host_vars={} if host_vars is None else {host.name: host_vars},
    )


def _message(result: Mapping[str, Any]) -> str:
    """The most useful line(s) of a failed task's result."""
    parts: list[str] = []
    if result.get("msg"):
        parts.append(str(result["msg"]).strip())
    stderr = str(result.get("stderr") or "").strip()
    if stderr:
        parts.append("\n".join(stderr.splitlines()[-5:]))
    for item in result.get("results") or ():
        if isinstance(item, Mapping) and item.get("failed"):
            label = repr(item.get("item"))
            label = label if len(label) <= 60 else label[:57] + "..."
            parts.append(f"item {label}: {_message(item)}")
    return "; ".join(parts) or "failed (no message)"


def failed_tasks(events: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """``(host, task, message)`` of each failed or unreachable task in runner events.

    Failures the playbook ignores (``ignore_errors``) are left out. Pure: tests feed it
    a recorded event list.

    Args:
        events: ansible-runner job events, in order.
    """
    found: list[tuple[str, str, str]] = []
    for event in events:
        if event.get("event") not in _FAILED_EVENTS:
            continue
        data = event.get("event_data") or {}
        if data.get("ignore_errors"):
            continue
        result = data.get("res") or {}
        found.append((str(data.get("host", "?")), str(data.get("task", "?")), _message(result)))
    return found


def reported_facts(events: Iterable[Mapping[str, Any]], variable: str) -> dict[str, dict[str, Any]]:
    """Host → the value of ``variable`` as the playbook's ``debug: var=...`` printed it.

    Args:
        events: ansible-runner job events, in order; a later report wins.
        variable: The variable's name (``kvm_host_facts``).
    """
    facts: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.get("event") != "runner_on_ok":
            continue
        data = event.get("event_data") or {}
        value = (data.get("res") or {}).get(variable)
        if isinstance(value, Mapping):
            facts[str(data.get("host"))] = dict(value)
    return facts


def changed_tasks(events: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(host, task)`` of each task that reported a change, in order; pure.

    Args:
        events: ansible-runner job events, in order.
    """
    found: list[tuple[str, str]] = []
    for event in events:
        if event.get("event") != "runner_on_ok":
            continue
        data = event.get("event_data") or {}
        if (data.get("res") or {}).get("changed"):
            found.append((str(data.get("host", "?")), str(data.get("task", "?"))))
    return found


def changed_counts(stats: Mapping[str, Any] | None, hosts: Iterable[str]) -> dict[str, int]:
    """Host → changed task count from the runner's final stats (a missing host: 0)."""
    changed = (stats or {}).get("changed") or {}
    return {host: int(changed.get(host, 0)) for host in hosts}


def _envvars() -> dict[str, str]:
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return {
        # ansible-playbook of the venv first; virsh, libvirtd and friends live in sbin.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), path, "/usr/sbin", "/sbin"]),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }


def run_playbook(
    plan: PlaybookPlan,
    *,
    facts_var: str,
    on_task: Callable[[str], None] | None = None,
    timeout: int = 1800,
) -> PlaybookResult:
    """Run a plan through ``ansible_runner.run`` and return what it reported.

    Side effects: whatever the playbook does on its hosts; a temporary private data
    directory (removed afterwards); ``on_task`` is called with each task's name as it
    starts (nothing else of the run is reported: no variables, no output).

    Args:
        plan: From :func:`playbook_plan`.
        facts_var: The variable the playbook reports with a final ``debug: var=...``.
        on_task: Progress callback, given ``"<host pattern>: <task name>"``.
        timeout: Seconds before the run is stopped (status ``timeout``).

    Returns:
        Changed counts, facts and duration.

    Raises:
        PlaybookFailed: The status is not ``successful``; names every failed task.
        DriverError: ansible-runner could not start the run.
    """
    events: list[dict[str, Any]] = []
    tasks: list[str] = []

    def handle(event: dict[str, Any]) -> bool:
        events.append(event)
        if event.get("event") == "playbook_on_task_start":
            name = str((event.get("event_data") or {}).get("task", ""))
            tasks.append(name)
            if on_task is not None:
                on_task(name)
        return True  # kept in the artifacts folder too: runner.stats reads it from there

    job = {
        "project_dir": str(plan.playbook.parent),
        "playbook": str(plan.playbook),
        "inventory_files": {
            "hosts.yml": plan.inventory,
            **{f"host_vars/{name}.yml": text for name, text in plan.host_vars.items()},
        },
        "extravars": dict(plan.extravars),
        "envvars": _envvars(),
        "timeout": timeout,
        **({"cmdline": "--check"} if plan.check else {}),
    }
    start = time.monotonic()
    # In a child process of its own: see unkai.drivers._ansible_child for why.
    result: dict[str, Any] = {"status": "error", "rc": None, "stats": None, "raw": ""}
    with subprocess.Popen(
        [sys.executable, "-m", "unkai.drivers._ansible_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(job))
        child.stdin.close()
        for line in child.stdout:
            message = json.loads(line)
            if "event" in message:
                handle(message["event"])
            elif "result" in message:
                result = message["result"]
        stderr = child.stderr.read() if child.stderr else ""
    if result["status"] == "error":
        raise DriverError(
            f"ansible-runner could not run {plan.playbook}: {result['raw'] or stderr.strip()}"
        )
    status, rc, stats, raw = result["status"], result["rc"], result["stats"], result["raw"]
    seconds = round(time.monotonic() - start, 2)
    if status != "successful":
        raise PlaybookFailed(
            status,
            int(rc if rc is not None else -1),
            failed_tasks(events),
            playbook=plan.playbook.name,
            output="\n".join(str(event.get("stdout") or "") for event in events[-20:]) or raw,
        )
    return PlaybookResult(
        changed=changed_counts(stats, plan.hosts),
        facts=reported_facts(events, facts_var),
        seconds=seconds,
        tasks=tuple(tasks),
        changed_tasks=tuple(changed_tasks(events)),
    )
