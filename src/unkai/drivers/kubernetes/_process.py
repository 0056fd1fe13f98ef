"""Detached processes with pid files: start, look at, stop.

A process is started through a tiny launcher that exits at once, so the process is
not a child of the caller (no zombie, no ``Popen`` object to outlive), runs in a session
of its own, and survives the caller: the provider that starts a control plane is gone
long before ``pulumi destroy`` stops it. A pid file alone is not trusted: a pid counts
only while ``/proc/<pid>/cmdline`` still runs the expected binary.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from unkai.errors import DriverError
from unkai.toolchain import detached_env, process_start

_LAUNCHER = """
import json, os, subprocess, sys
spec = json.loads(sys.argv[1])
with open(spec["log"], "ab") as log:
    proc = subprocess.Popen(
        spec["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, env=spec["env"], cwd=spec["cwd"],
    )
sys.stdout.write(str(proc.pid))
sys.stdout.flush()
os._exit(0)
"""


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of ``path`` (``(no log)`` when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def running_pid(pid_file: Path, binary: str) -> int | None:
    """The pid in ``pid_file`` when that process is alive and runs ``binary``."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_running(pid, binary) else None


def is_running(pid: int, binary: str | None = None) -> bool:
    """Whether ``pid`` is a live (not zombie) process, running ``binary`` when given."""
    if process_start(pid) is None:
        return False
    return binary is None or next(iter(command_line(pid)), None) == binary


def command_line(pid: int) -> tuple[str, ...]:
    """The argv ``pid`` runs (empty when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0")[:-1])


def launch(
    argv: Sequence[str], *, log: Path, pid_file: Path, env: Mapping[str, str], cwd: Path
) -> int:
    """Start ``argv`` detached, output appended to ``log``, its pid written to ``pid_file``.

    Returns:
        The pid.

    Raises:
        DriverError: the launcher failed (the binary is missing, the log is unwritable).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": list(argv),
        "log": str(log),
        "env": {**detached_env(os.environ), **env},
        "cwd": str(cwd),
    }
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0 or not proc.stdout.strip().isdigit():
        raise DriverError(f"could not start {argv[0]}: {proc.stderr.strip() or proc.stdout}")
    pid = int(proc.stdout.strip())
    pid_file.write_text(f"{pid}\n")
    return pid


def terminate(pids: Sequence[int], *, timeout: float = 20.0) -> None:
    """Stop every process of ``pids`` (and its process group): SIGTERM, then SIGKILL.

    Returns once none of them is alive.

    Raises:
        DriverError: one survived SIGKILL (it is stuck in the kernel).
    """
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(is_running(pid) for pid in pids):
        _reap(pids)
        time.sleep(0.1)
    alive = [pid for pid in pids if is_running(pid)]
    for pid in alive:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(is_running(pid) for pid in alive):
        _reap(alive)
        time.sleep(0.1)
    _reap(pids)
    stuck = [pid for pid in alive if is_running(pid)]
    if stuck:
        raise DriverError(f"processes {stuck} survived SIGKILL")


def _signal(pid: int, sig: signal.Signals) -> None:
    # Each process leads its own session (see launch), so its group is its own.
    try:
        os.killpg(pid, sig)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def _reap(pids: Sequence[int]) -> None:
    # Only matters when the caller is the parent (it never is through launch()).
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``host:port`` (binding it, as Go servers do, works)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, *, avoid: Sequence[int] = (), host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that are free on ``host`` now, none of ``avoid``."""
    out: list[int] = []
    sockets = []
    try:
        while len(out) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
            port = sock.getsockname()[1]
            if port not in avoid and port not in out:
                out.append(port)
    finally:
        for sock in sockets:
            sock.close()
    return out


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def healthy(url: str, *, context: ssl.SSLContext | None, timeout: float = 3.0) -> bool:
    """Whether ``url`` answers 200 with body ``ok`` (or etcd's ``"health":"true"``)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            body = resp.read(4096)
    except urllib.error.HTTPError as err:
        err.close()  # it holds the connection open otherwise
        return False
    except (urllib.error.URLError, OSError, ValueError):
        return False
    if body.strip() == b"ok":
        return True
    try:
        return json.loads(body).get("health") in ("true", True)
    except (ValueError, AttributeError):
        return False
