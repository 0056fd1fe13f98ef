"""The console's reads of one environment: its files, its hosts, its clusters, its stack.

:class:`Cloud` is the only place the console touches the world, and only to read: the
environment through :func:`unkai.environments.load_environment`, each host's libvirt
through :func:`unkai.drivers.libvirt.session` (over the environment's SSH client, as
``up`` reaches it), each cluster through :func:`unkai.cli.status.cluster_status`, and
the stack through the engine (an existing stack is selected, never created). A host or
cluster that does not answer is a page that says so, not an error page.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from pulumi import automation as auto

from unkai.cli._updates import kept_updates
from unkai.cli._workspace import program_dir, select_stack, ssh_client
from unkai.cli.drift import DriftReport, latest_report
from unkai.cli.measure import load_measured
from unkai.cli.status import cluster_status
from unkai.components import clusters_root
from unkai.console._views import (
    ClusterView,
    HistoryEntry,
    HostView,
    PlanView,
    VmView,
    history_entries,
    host_views,
    plan_view,
    vm_views,
)
from unkai.drivers import libvirt
from unkai.environments import load_environment
from unkai.errors import UnkaiError
from unkai.model import Environment
from unkai.render import owner

__all__ = ["Cloud"]

HISTORY = 20
"""How many of the stack's latest updates the history page shows."""


class Cloud:
    """The reads behind every page, for environment ``name`` of the project at ``root``.

    Each method reads afresh (a page is what is true when it is drawn); they block, so
    the web app runs them in threads.
    """

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root

    def environment(self) -> Environment:
        """The environment as every command loads it (a bad file raises ConfigError)."""
        return load_environment(self.name, root=self.root)

    def plan(self, env: Environment | None = None) -> PlanView:
        """The plan, as ``unkai plan`` computes it (with what ``unkai measure`` kept)."""
        return plan_view(env or self.environment(), load_measured(self.root, self.name))

    def clusters(self, env: Environment | None = None) -> list[ClusterView]:
        """Each cluster of the environment as ``unkai status`` reads it."""
        env = env or self.environment()
        kubeconfigs = {
            name: clusters_root(self.root) / name / "kubeconfig" / "admin.kubeconfig"
            for name in sorted(env.clusters)
        }
        return [ClusterView(name, cluster_status(path)) for name, path in kubeconfigs.items()]

    def _stack(self) -> auto.Stack | None:
        try:
            return select_stack(program_dir(self.root), self.name, create=False, root=self.root)
        except auto.StackNotFoundError:
            return None

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs (``{}`` before the first ``up``), secrets left masked.

        Not ``Stack.outputs``: it decrypts every secret output as well.
        """
        stack = self._stack()
        if stack is None:
            return {}
        workspace = cast(auto.LocalWorkspace, stack.workspace)  # select_stack makes one
        masked = workspace.pulumi_command.run(
            ["stack", "output", "--json", "--stack", self.name],
            workspace.work_dir,
            workspace.env_vars,
        )
        found: dict[str, Any] = json.loads(masked.stdout or "{}")
        return found

    def history(self) -> list[HistoryEntry]:
        """The stack's latest updates, newest first (``[]`` before the first ``up``)."""
        stack = self._stack()
        if stack is None:
            return []
        updates = stack.history(page_size=HISTORY, page=1) or []
        return history_entries(updates, kept_updates(self.root, self.name))

    def drift(self) -> tuple[DriftReport, str] | None:
        """The latest report ``unkai drift`` kept, and when it was made (None: never run)."""
        return latest_report(self.root, self.name)

    def vms(
        self, env: Environment, clusters: list[ClusterView], outputs: Mapping[str, Any]
    ) -> dict[str, list[VmView] | str]:
        """Host → the environment's VMs on it, or why the host could not be read."""
        instances = outputs.get("instances") or {}
        ssh = str(ssh_client(env, self.root))
        hosts = sorted(env.hosts.values(), key=lambda host: host.name)
        read = functools.partial(self._read_host, ssh=ssh, env=env)
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(hosts)))) as pool:
            domains = dict(zip((h.name for h in hosts), pool.map(read, hosts), strict=True))
        views = functools.partial(
            vm_views,
            owner=owner(env),
            groups=sorted(env.instance_groups),
            outputs=instances,
            clusters=clusters,
        )
        return {
            host: found if isinstance(found, str) else views(host, found)
            for host, found in domains.items()
        }

    @staticmethod
    def _read_host(host: Any, *, ssh: str, env: Environment) -> list[Any] | str:
        if libvirt.unreachable(host.libvirt_uri):
            return f"no answer from {host.address}"
        try:
            with libvirt.session(host.libvirt_uri, ssh=ssh) as conn:
                return conn.domains(env.name, project=env.project)
        except UnkaiError as err:
            return str(err)

    def hosts(self) -> list[HostView]:
        """Every host with its bars and the VMs on it (members with the operator's health)."""
        env = self.environment()
        vms = self.vms(env, self.clusters(env), self.outputs())
        return host_views(env, self.plan(env), vms)
