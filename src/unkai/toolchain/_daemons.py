"""Starting the Docker engine, libvirtd and the image registry when they are not running.

No init system runs here, so the daemons are started directly, detached into their own
session, with their output in ``<cache>/logs/<name>.log``; a start is done when the
daemon's socket answers, not after a fixed sleep.

The registry (Debian's ``docker-registry``) serves the images unkai builds to real
Kubernetes nodes: it listens on ``127.0.0.1:5000`` only, which a VM on QEMU user
networking reaches at ``10.0.2.2:5000``, and keeps its blobs in ``<cache>/registry``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from unkai._files import atomic_write
from unkai.errors import ToolchainError
from unkai.toolchain._paths import cache_root, log_dir
from unkai.toolchain._run import which
from unkai.toolchain._run_marker import detached_env


@dataclass(frozen=True)
class Daemon:
    """A daemon unkai may start.

    Attributes:
        name: Short name, also the log file's.
        argv: The command that runs it in the foreground.
        socket: The unix socket that answers once it is ready (or ``tcp``).
        probe: Bytes to send on the socket to check it answers (``b""``: connecting is enough).
        expect: What the answer must contain.
        needs: Daemons that must run first.
        tcp: ``(host, port)`` to probe instead of ``socket``.
        files: ``(path, text)`` written before it starts (its configuration).
    """

    name: str
    argv: tuple[str, ...]
    socket: Path | None = None
    probe: bytes = b""
    expect: bytes = b""
    needs: tuple[str, ...] = ()
    tcp: tuple[str, int] | None = None
    files: tuple[tuple[Path, str], ...] = ()

    @property
    def where(self) -> str:
        """Where it answers, for messages."""
        return f"{self.tcp[0]}:{self.tcp[1]}" if self.tcp else str(self.socket)


DOCKER = Daemon(
    name="dockerd",
    argv=("dockerd", "--host=unix:///var/run/docker.sock", "--log-level=warn"),
    socket=Path("/var/run/docker.sock"),
    probe=b"GET /_ping HTTP/1.0\r\n\r\n",
    expect=b"OK",
)
VIRTLOGD = Daemon(
    name="virtlogd", argv=("virtlogd",), socket=Path("/var/run/libvirt/virtlogd-sock")
)
# QEMU daemonizes, so its processes are reparented to PID 1; where PID 1 is no init
# that reaps them (a container, a sandbox), libvirtd waits forever on their zombies.
# tini as a subreaper (-s) adopts and reaps them instead.
LIBVIRTD = Daemon(
    name="libvirtd",
    argv=("tini", "-s", "-w", "--", "libvirtd"),
    socket=Path("/var/run/libvirt/libvirt-sock"),
    needs=("virtlogd",),
)
DAEMONS: dict[str, Daemon] = {d.name: d for d in (DOCKER, VIRTLOGD, LIBVIRTD)}

REGISTRY_ADDRESS = ("127.0.0.1", 5000)
"""Where the registry listens; images pushed there are named ``127.0.0.1:5000/<name>``."""


def registry_config(root: Path) -> str:
    """The registry's configuration: blobs under ``root``, loopback only, no auth."""
    host, port = REGISTRY_ADDRESS
    return (
        "# unkai's image registry (Debian's docker-registry), written by unkai.\n"
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {host}:{port}\n"
    )


def registry_daemon() -> Daemon:
    """The image registry, with its configuration and blobs in unkai's cache."""
    config = cache_root() / "registry.yml"
    return Daemon(
        name="registry",
        argv=("docker-registry", "serve", str(config)),
        probe=b"GET /v2/ HTTP/1.0\r\n\r\n",
        expect=b"200 OK",
        tcp=REGISTRY_ADDRESS,
        files=((config, registry_config(cache_root() / "registry")),),
    )


def answers(daemon: Daemon, *, timeout: float = 2.0) -> bool:
    """True when the daemon's socket accepts a connection (and answers its probe)."""
    if daemon.tcp is not None:
        family, address = socket.AF_INET, daemon.tcp
    elif daemon.socket is not None and daemon.socket.exists():
        family, address = socket.AF_UNIX, str(daemon.socket)
    else:
        return False
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
            if not daemon.probe:
                return True
            sock.sendall(daemon.probe)
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
            return daemon.expect in reply
    except OSError:
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_STARTED: list[subprocess.Popen[bytes]] = []
"""The daemons this process started. They outlive it by design (a session of their own);
kept here so that their ``Popen`` is never collected while they run, which Python would
report as a leak."""


def ensure_running(
    daemon: Daemon, *, timeout: float = 60.0, say: Callable[[str], None] = lambda _: None
) -> str:
    """Start ``daemon`` (and what it needs) unless its socket already answers.

    Returns:
        ``"running"`` when it already answered, ``"started"`` when unkai started it.

    Raises:
        ToolchainError: the binary is missing, or the socket did not answer in time
            (the error holds the end of the daemon's log).
    """
    for need in daemon.needs:
        ensure_running(DAEMONS[need], timeout=timeout, say=say)
    if answers(daemon):
        return "running"
    binary = which(daemon.argv[0])
    if binary is None:
        raise ToolchainError(f"{daemon.argv[0]} is not installed; run scripts/bootstrap")
    log = log_dir() / f"{daemon.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    for path, text in daemon.files:
        atomic_write(path, text)
    say(f"starting {daemon.name} (log: {log})")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(binary), *daemon.argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={
                **detached_env(os.environ),
                "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin",
            },
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(daemon):
            _STARTED.append(proc)
            return "started"
        if proc.poll() is not None:
            raise ToolchainError(
                f"{daemon.name} exited with status {proc.returncode} while starting; "
                f"end of {log}:\n{_tail(log)}"
            )
        time.sleep(0.2)
    raise ToolchainError(
        f"{daemon.name} did not answer on {daemon.where} within {timeout:.0f} s; "
        f"end of {log}:\n{_tail(log)}"
    )
