"""The gRPC server of the language host."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from pulumi.runtime.proto import (
    LanguageRuntimeServicer,
    add_LanguageRuntimeServicer_to_server,
    language_pb2,
    plugin_pb2,
)

from unkai.langhost._exec import entry_file

# Exit status of a program that already reported its error through the engine:
# the engine should stop without printing it again (the same convention as Pulumi's hosts).
BAIL_STATUS = 32


def program_python(root: str, options: dict[str, Any]) -> str:
    """The interpreter that runs the program: the ``virtualenv`` option's, else ours."""
    venv = options.get("virtualenv")
    if venv:
        path = Path(venv) if os.path.isabs(venv) else Path(root) / venv
        candidate = path / "bin" / "python"
        if candidate.exists():
            return str(candidate)
    return sys.executable


def run_config(request: Any, engine_address: str) -> dict[str, Any]:
    """What the program process needs from a ``RunRequest``, as JSON-able data."""
    info = request.info
    program_dir = info.program_directory or request.pwd or os.getcwd()
    entry = info.entry_point or request.program or "."
    return {
        "project": request.project,
        "stack": request.stack,
        "organization": request.organization or "organization",
        "pwd": request.pwd or program_dir,
        "program_directory": program_dir,
        "entry_point": entry,
        "monitor_address": request.monitor_address,
        "engine_address": engine_address,
        "dry_run": request.dryRun,
        "parallel": request.parallel,
        "config": dict(request.config),
        "config_secret_keys": list(request.configSecretKeys),
    }


class LanguageHost(LanguageRuntimeServicer):  # type: ignore[misc]
    """The ``LanguageRuntime`` service for Python programs."""

    def __init__(self, engine_address: str) -> None:
        self.engine_address = engine_address

    def Handshake(self, request: Any, context: Any) -> Any:
        """Accept the engine's handshake; nothing to negotiate."""
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        """Report the pulumi SDK version as the host's version."""
        return plugin_pb2.PluginInfo(version=metadata.version("pulumi"))

    def GetRequiredPlugins(self, request: Any, context: Any) -> Any:
        """No plugins to install: unkai's provider is on PATH and versioned with unkai."""
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(self, request: Any, context: Any) -> Any:
        """No packages to install, as for plugins."""
        return language_pb2.GetRequiredPackagesResponse()

    def InstallDependencies(self, request: Any, context: Any) -> Any:
        """Dependencies are installed by ``scripts/bootstrap`` from the lock file."""
        yield language_pb2.InstallDependenciesResponse(
            stdout=b"dependencies are installed by scripts/bootstrap\n"
        )

    def RuntimeOptionsPrompts(self, request: Any, context: Any) -> Any:
        """No interactive options."""
        return language_pb2.RuntimeOptionsResponse()

    def About(self, request: Any, context: Any) -> Any:
        """The interpreter that runs programs."""
        v = sys.version_info
        return language_pb2.AboutResponse(
            executable=sys.executable, version=f"{v.major}.{v.minor}.{v.micro}"
        )

    def GetProgramDependencies(self, request: Any, context: Any) -> Any:
        """The distributions installed in the interpreter."""
        dists = metadata.distributions()
        deps = sorted({(d.metadata["Name"], d.version) for d in dists if d.metadata["Name"]})
        return language_pb2.GetProgramDependenciesResponse(
            dependencies=[language_pb2.DependencyInfo(name=n, version=v) for n, v in deps]
        )

    def Run(self, request: Any, context: Any) -> Any:
        """Run the program in a fresh interpreter connected to the resource monitor."""
        options = json_format.MessageToDict(request.info.options) if request.info else {}
        root = request.info.root_directory or request.pwd or os.getcwd()
        config = run_config(request, request.args[0] if request.args else self.engine_address)
        proc = subprocess.run(
            [program_python(root, options), "-u", "-m", "unkai.langhost._exec"],
            input=json.dumps(config),
            text=True,
            cwd=config["pwd"],
            stdout=sys.stderr,
            stderr=subprocess.PIPE,
            check=False,
        )
        if proc.returncode == 0:
            return language_pb2.RunResponse()
        if proc.returncode == BAIL_STATUS:
            return language_pb2.RunResponse(bail=True)
        tail = "\n".join(proc.stderr.strip().splitlines()[-30:])
        return language_pb2.RunResponse(
            error=f"the program exited with status {proc.returncode}:\n{tail}"
        )

    def RunPlugin(self, request: Any, context: Any) -> Iterator[Any]:
        """Run a plugin written in Python (a policy pack) and stream what it prints.

        The engine reads the port the plugin serves on from its standard output, so each
        chunk is sent as it comes; the last message is the exit status.
        """
        argv, cwd, env = plugin_argv(request)
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        chunks: queue.Queue[tuple[str, bytes]] = queue.Queue()
        pumps = [
            threading.Thread(target=_pump, args=(pipe, kind, chunks), daemon=True)
            for pipe, kind in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
        ]
        for pump in pumps:
            pump.start()
        open_pipes = len(pumps)
        try:
            while open_pipes:
                kind, chunk = chunks.get()
                if not chunk:
                    open_pipes -= 1
                    continue
                yield language_pb2.RunPluginResponse(**{kind: chunk})
            yield language_pb2.RunPluginResponse(exitcode=proc.wait())
        finally:
            if proc.poll() is None:  # the engine went away: the plugin goes too
                proc.terminate()
                proc.wait()


def plugin_argv(request: Any) -> tuple[list[str], str, dict[str, str]]:
    """How to run the Python plugin of a ``RunPluginRequest``: argv, folder, environment.

    The plugin (a policy pack, say) is its folder's ``__main__.py`` (or the named entry
    point), run by the interpreter of its ``virtualenv`` option with the engine's
    arguments, in the folder the engine names, with the engine's variables added to ours.
    """
    info = request.info
    root = info.root_directory or request.pwd or os.getcwd()
    options = json_format.MessageToDict(info.options)
    script = entry_file(info.program_directory or root, info.entry_point or request.program or ".")
    env = {**os.environ, **dict(e.split("=", 1) for e in request.env if "=" in e)}
    argv = [program_python(root, options), "-u", str(script), *request.args]
    return argv, request.pwd or root, env


def _pump(stream: Any, kind: str, out: queue.Queue[tuple[str, bytes]]) -> None:
    """Copy a pipe into ``out`` in chunks as they come, then an empty chunk for its end."""
    with stream:
        while chunk := os.read(stream.fileno(), 65536):
            out.put((kind, chunk))
    out.put((kind, b""))


def main(argv: list[str] | None = None) -> None:
    """Serve on a free loopback port and print it, as the engine's plugin protocol wants.

    The engine passes flags (``-tracing X``, ``-root=...``) and the engine's address
    last; flags are ignored.
    """
    args = sys.argv[1:] if argv is None else argv
    engine = args[-1] if args and not args[-1].startswith("-") else ""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    add_LanguageRuntimeServicer_to_server(LanguageHost(engine), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    signal.signal(signal.SIGINT, lambda *_: server.stop(0))
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()
