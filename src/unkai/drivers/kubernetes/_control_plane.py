"""A real Kubernetes control plane on loopback: etcd, API server, controllers, kwok.

:class:`ControlPlane` is what the ``Cluster`` resource of the provider calls:
:meth:`~ControlPlane.plan` is pure; :meth:`~ControlPlane.start`,
:meth:`~ControlPlane.stop`, :meth:`~ControlPlane.status` and
:meth:`~ControlPlane.remove` act on processes and on the cluster's state folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from unkai._files import atomic_write
from unkai.drivers.kubernetes._encryption import ensure_encryption_config
from unkai.drivers.kubernetes._metrics import apply_metrics_objects
from unkai.drivers.kubernetes._pki import issue, pki_current, write_pki
from unkai.drivers.kubernetes._plan import (
    Binaries,
    Component,
    Plan,
    Ports,
    plan_control_plane,
    render_kubeconfig,
)
from unkai.drivers.kubernetes._process import (
    command_line,
    free_ports,
    healthy,
    is_running,
    launch,
    port_free,
    running_pid,
    tail,
    terminate,
)
from unkai.errors import DriverError, ToolchainError

START_TIMEOUTS = {
    "etcd": 60.0,
    "kube-apiserver": 180.0,
    "kube-controller-manager": 90.0,
    "kube-scheduler": 90.0,
    "kwok": 90.0,
    "unkai-operator": 90.0,
    "metrics-server": 90.0,
}
"""Seconds each component gets to answer its health URL (2 slow cores, cold caches)."""

START_TOGETHER = (
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "unkai-operator",
    "metrics-server",
)
"""Started at once after the API server is ready; they only need the API server."""


@dataclass(frozen=True)
class ComponentStatus:
    """What :meth:`ControlPlane.status` reports about one process.

    Attributes:
        name: The component.
        pid: Its pid when it runs, else ``None``.
        healthy: Whether its health URL answers ok.
        port: The loopback port it serves on.
        log: Its log file.
    """

    name: str
    pid: int | None
    healthy: bool
    port: int
    log: Path

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.pid is not None


def operator_code() -> str:
    """A digest of the code the operator runs (:mod:`unkai.operator` and the node driver).

    It is in the operator's command line, so a control plane started by an older unkai
    restarts its operator with the new code (which may serve a newer NodePool schema).
    """
    here = Path(__file__).parent
    package = here.parents[1] / "operator"  # src/unkai/operator, read, not imported
    files = sorted(package.glob("*.py")) + [
        here / name for name in ("_nodes.py", "_node_pools.py", "_client.py")
    ]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def pinned_binaries(version: str | None = None) -> Binaries:
    """The binaries of the pinned toolchain (Kubernetes ``version``, default the pin).

    Raises:
        ToolchainError: one is missing; ``scripts/bootstrap`` builds them.
    """
    from unkai.toolchain._kubernetes import etcd_bin, kubernetes_bin, kwok_bin, kwok_stages

    kube = kubernetes_bin(version)
    binaries = Binaries(
        etcd=etcd_bin() / "etcd",
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        kube_scheduler=kube / "kube-scheduler",
        kwok=kwok_bin() / "kwok",
        kwok_stages=kwok_stages(),
        python=Path(sys.executable),
        operator_code=operator_code(),
    )
    paths = [value for value in vars(binaries).values() if isinstance(value, Path)]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise ToolchainError(
            f"the local control plane needs {', '.join(missing)}; run scripts/bootstrap"
        )
    return binaries


class ControlPlane:
    """The control plane of one local cluster, kept in ``state_dir``.

    Args:
        name: The cluster name.
        state_dir: Its state folder (``<project>/.unkai/clusters/<name>``); created on
            start, deleted by :meth:`remove`.
        host: The API server host of ``Cluster.control_plane`` (loopback only).
        port: The API server port of ``Cluster.control_plane``.
        version: The Kubernetes version; its binaries must be in the toolchain cache.
        binaries: Explicit executables (tests), instead of the pinned toolchain.
        metrics: Run metrics-server too (a cluster with VM nodes), built by :meth:`start`
            when the toolchain cache lacks it.
    """

    def __init__(
        self,
        *,
        name: str,
        state_dir: Path,
        host: str = "127.0.0.1",
        port: int = 6443,
        version: str | None = None,
        binaries: Binaries | None = None,
        metrics: bool = False,
    ) -> None:
        self.name = name
        self.state_dir = state_dir.absolute()
        self.host = host
        self.port = port
        self.version = version
        self.metrics = metrics
        self._binaries = binaries

    @property
    def binaries(self) -> Binaries:
        """The executables run (resolved from the toolchain cache on first use).

        Raises:
            ToolchainError: the pinned binaries are not built.
        """
        if self._binaries is None:
            self._binaries = pinned_binaries(self.version)
        if self.metrics and self._binaries.metrics_server is None:
            from unkai.toolchain import metrics_server_bin

            binary = metrics_server_bin() / "metrics-server"
            self._binaries = replace(self._binaries, metrics_server=binary)
        return self._binaries

    @property
    def kubeconfig_path(self) -> Path:
        """The admin kubeconfig (``system:masters``), written by :meth:`start`."""
        return self.state_dir / "kubeconfig" / "admin.kubeconfig"

    @property
    def endpoint(self) -> str:
        """The API server URL."""
        return self.plan(self._recorded_ports() or self._placeholder_ports()).endpoint

    def plan(self, ports: Ports) -> Plan:
        """The plan with ``ports``: argvs, health URLs, files. Pure.

        Raises:
            DriverError: the host is not loopback.
        """
        try:
            return plan_control_plane(
                cluster=self.name,
                state_dir=self.state_dir,
                host=self.host,
                ports=ports,
                binaries=self.binaries,
            )
        except ValueError as err:
            raise DriverError(f"cluster {self.name}: {err}") from err

    # -- ports -----------------------------------------------------------------------

    def _placeholder_ports(self) -> Ports:
        return Ports(self.port, 0, 0, 0, 0, 0, 0)

    def _recorded_ports(self) -> Ports | None:
        try:
            ports = Ports.from_json((self.state_dir / "ports.json").read_text())
        except (OSError, ValueError):
            return None
        return ports if ports.apiserver == self.port else None

    def _choose_ports(self) -> Ports:
        """The recorded ports where still usable, fresh free ones for the rest."""
        recorded = self._recorded_ports()
        owners = {
            "etcd_client": "etcd",
            "etcd_peer": "etcd",
            "controller_manager": "kube-controller-manager",
            "scheduler": "kube-scheduler",
            "kwok": "kwok",
            "operator": "unkai-operator",
            "metrics_server": "metrics-server",
        }
        names = list(owners)
        keep: dict[str, int] = {}
        if recorded is not None:
            running = self._running(self.plan(recorded))
            for field in names:
                port = getattr(recorded, field)
                if port and (owners[field] in running or port_free(port)):
                    keep[field] = port
        fresh = iter(free_ports(len(names) - len(keep), avoid=[self.port, *keep.values()]))
        values = {field: keep.get(field) or next(fresh) for field in names}
        return Ports(apiserver=self.port, **values)

    # -- state -----------------------------------------------------------------------

    def _serving(
        self, component: Component, pid: int | None, context: ssl.SSLContext | None
    ) -> bool:
        # Running the planned argv (not one from an older plan) and answering.
        return (
            pid is not None
            and command_line(pid) == component.argv
            and healthy(component.health_url, context=context)
        )

    def _running(self, plan: Plan) -> dict[str, int]:
        out = {}
        for component in plan.components:
            pid = running_pid(component.pid_file, component.argv[0])
            if pid is not None:
                out[component.name] = pid
        return out

    def _tls(self, plan: Plan) -> ssl.SSLContext | None:
        ca = plan.pki_dir / "ca.crt"
        if not ca.is_file():
            return None
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(str(plan.pki_dir / "admin.crt"), str(plan.pki_dir / "admin.key"))
        return context

    def status(self) -> tuple[ComponentStatus, ...]:
        """Each component's pid, health, port and log, in start order. Looks only.

        A cluster never started reports every component not running, on port 0 but
        the API server's.
        """
        plan = self.plan(self._recorded_ports() or self._placeholder_ports())
        running = self._running(plan)
        context = self._tls(plan)
        return tuple(
            ComponentStatus(
                name=c.name,
                pid=running.get(c.name),
                healthy=c.name in running and healthy(c.health_url, context=context),
                port=c.port,
                log=c.log,
            )
            for c in plan.components
        )

    def is_healthy(self) -> bool:
        """Whether every component runs and answers its health URL."""
        return all(s.healthy for s in self.status())

    # -- start -----------------------------------------------------------------------

    def _write_files(self, plan: Plan, *, now: dt.datetime, say: Callable[[str], None]) -> bool:
        """Write certificates (when not current), kubeconfigs and configuration.

        The Secrets' encryption key is made the first time only (see
        :func:`ensure_encryption_config`); a cluster that stored data before it had
        one is told that its existing Secrets stay as they were.

        Returns:
            Whether the certificates were issued anew (running processes must restart).
        """
        reissued = False
        if not pki_current(plan.pki_dir, plan.certs):
            write_pki(plan.pki_dir, issue(plan.certs, cluster=self.name, now=now))
            reissued = True
        ca = (plan.pki_dir / "ca.crt").read_bytes()
        for kubeconfig in plan.kubeconfigs:
            text = render_kubeconfig(
                cluster=self.name,
                server=kubeconfig.server,
                user=kubeconfig.user,
                ca_pem=ca,
                cert_pem=(plan.pki_dir / f"{kubeconfig.cert}.crt").read_bytes(),
                key_pem=(plan.pki_dir / f"{kubeconfig.cert}.key").read_bytes(),
            )
            _write_private(kubeconfig.path, text)
        for path, text in plan.files.items():
            _write_private(path, text)
        had_data = plan.etcd_data.exists()
        if ensure_encryption_config(plan.encryption_config) and had_data:
            say(
                f"Secrets are encrypted in etcd from now on; those cluster {self.name}"
                " already holds stay unencrypted there until they are written again"
            )
        return reissued

    def start(
        self,
        *,
        say: Callable[[str], None] = lambda _: None,
        now: dt.datetime | None = None,
    ) -> Plan:
        """Start every component not yet running and healthy, and wait until all are.

        Idempotent: when everything already runs with the planned flags and answers,
        nothing is started or written; a component that runs with other flags (an older
        plan) or does not answer is restarted. Components are started in order (etcd,
        the API server, then the controller manager, the scheduler, kwok, the operator
        and metrics-server together), each awaited on its health URL — the API server on
        ``/readyz`` — never after a fixed sleep. With ``metrics``, metrics-server is
        built first when the cache lacks it, and its APIService is applied once it runs;
        without, one left running from before is stopped.

        Args:
            say: Receives one line per component started.
            now: The time certificates start from (default: now).

        Returns:
            The plan that runs.

        Raises:
            DriverError: a component exited or did not answer in time (the error holds
                the end of its log), the API server port is taken by another process,
                or the Secrets' encryption configuration was damaged.
            ToolchainError: the binaries are not built.
        """
        if self.metrics:
            from unkai.toolchain import ensure_metrics_server

            ensure_metrics_server(say=say)
        else:
            self._stop_metrics_server()
        recorded = self._recorded_ports()
        if recorded is not None and self._all_healthy(self.plan(recorded)):
            return self.plan(recorded)
        ports = self._choose_ports()
        plan = self.plan(ports)
        running = self._running(plan)
        if "kube-apiserver" not in running and not port_free(self.port):
            raise DriverError(
                f"cluster {self.name}: 127.0.0.1:{self.port} is taken by another process;"
                " choose another control_plane.port"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._write_files(plan, now=now or dt.datetime.now(dt.UTC), say=say) and running:
            say("certificates issued anew: restarting the running components")
            self.stop()
            running = {}
        context = self._tls(plan)
        # Each stage is awaited before the next: the API server needs etcd, the rest
        # need the API server.
        stages = (("etcd",), ("kube-apiserver",), START_TOGETHER)
        for stage in stages:
            started = []
            for component in (c for c in plan.components if c.name in stage):
                pid = running.get(component.name)
                if self._serving(component, pid, context):
                    continue
                if pid is not None:
                    say(f"restarting {component.name}: not healthy or started with other flags")
                    terminate([pid])
                say(f"starting {component.name} (log: {component.log})")
                started.append(self._launch(component))
            for component, pid in started:
                self._await(component, pid, context)
        if self.metrics:
            ca = (plan.pki_dir / "ca.crt").read_bytes()
            port = plan.ports.metrics_server
            apply_metrics_objects(kubeconfig=self.kubeconfig_path, port=port, ca_pem=ca)
        return plan

    def _stop_metrics_server(self) -> None:
        """Stop a metrics-server started while the cluster had VM nodes."""
        from unkai.toolchain import metrics_server_bin

        _end(
            self.state_dir / "run" / "metrics-server.pid",
            str(metrics_server_bin() / "metrics-server"),
        )

    def _launch(self, component: Component) -> tuple[Component, int]:
        pid = launch(
            component.argv,
            log=component.log,
            pid_file=component.pid_file,
            env=component.env,
            cwd=self.state_dir,
        )
        return component, pid

    def _await(self, component: Component, pid: int, context: ssl.SSLContext | None) -> None:
        timeout = START_TIMEOUTS[component.name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if healthy(component.health_url, context=context, timeout=2):
                return
            # Alive is enough here: right after exec the kernel may not show the new
            # command line yet (the launcher returns as soon as exec succeeds), and a
            # check of the binary then read a starting component as gone.
            if not is_running(pid):
                raise DriverError(
                    f"cluster {self.name}: {component.name} exited while starting;"
                    f" end of {component.log}:\n{tail(component.log)}"
                )
            time.sleep(0.2)
        raise DriverError(
            f"cluster {self.name}: {component.name} did not answer {component.health_url}"
            f" within {timeout:.0f} s; end of {component.log}:\n{tail(component.log)}"
        )

    def _all_healthy(self, plan: Plan) -> bool:
        running = self._running(plan)
        if len(running) != len(plan.components):
            return False
        context = self._tls(plan)
        return all(self._serving(c, running[c.name], context) for c in plan.components)

    # -- stop ------------------------------------------------------------------------

    def stop(self) -> tuple[str, ...]:
        """Stop every running component (kwok first, etcd last) and wait until gone.

        Returns:
            The components that were running.

        Raises:
            DriverError: a process survived SIGKILL.
        """
        plan = self.plan(self._recorded_ports() or self._placeholder_ports())
        stopped = []
        # In reverse start order, each awaited: etcd outliving its clients keeps the
        # API server's shutdown clean.
        for component in reversed(plan.components):
            if _end(component.pid_file, component.argv[0]):
                stopped.append(component.name)
        return tuple(reversed(stopped))

    def remove(self) -> None:
        """Stop the control plane and delete its state folder (data, certificates, logs).

        Raises:
            DriverError: a process survived SIGKILL or the folder could not be deleted.
        """
        self.stop()
        try:
            shutil.rmtree(self.state_dir, ignore_errors=False)
        except FileNotFoundError:
            return
        except OSError as err:
            raise DriverError(f"cannot delete {self.state_dir}: {err}") from err


def _end(pid_file: Path, binary: str) -> bool:
    """Stop the process of ``pid_file`` if it runs ``binary``, and forget it.

    Returns:
        Whether one was running.

    Raises:
        DriverError: it survived SIGKILL.
    """
    pid = running_pid(pid_file, binary)
    if pid is not None:
        terminate([pid])
    pid_file.unlink(missing_ok=True)
    return pid is not None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, text, mode=0o600)
