"""The gRPC server of the language host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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
