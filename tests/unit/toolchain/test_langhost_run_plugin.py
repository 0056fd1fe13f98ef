"""The language host runs Python plugins (policy packs) as the engine asks: RunPlugin."""

from __future__ import annotations

import sys
from pathlib import Path

from google.protobuf import struct_pb2
from pulumi.runtime.proto import language_pb2

from unkai.langhost import LanguageHost
from unkai.langhost._server import plugin_argv

PLUGIN = """\
import os, sys
print("port 12345", flush=True)
print("args", *sys.argv[1:], flush=True)
print("cwd", os.getcwd(), flush=True)
print("env", os.environ.get("FROM_ENGINE"), flush=True)
print("to stderr", file=sys.stderr, flush=True)
sys.exit(3)
"""


def _request(pack: Path, **options: str) -> language_pb2.RunPluginRequest:
    struct = struct_pb2.Struct()
    struct.update(options)
    return language_pb2.RunPluginRequest(
        pwd=str(pack),
        args=["127.0.0.1:5555", "--flag"],
        env=["FROM_ENGINE=yes"],
        kind="analyzer",
        name="my-pack",
        info=language_pb2.ProgramInfo(
            root_directory=str(pack),
            program_directory=str(pack),
            entry_point=".",
            options=struct,
        ),
    )


def test_a_plugin_is_run_from_its_folder_and_what_it_prints_is_streamed(tmp_path):
    (tmp_path / "__main__.py").write_text(PLUGIN)
    replies = list(LanguageHost("127.0.0.1:1").RunPlugin(_request(tmp_path), context=None))
    stdout = b"".join(r.stdout for r in replies if r.WhichOneof("output") == "stdout").decode()
    stderr = b"".join(r.stderr for r in replies if r.WhichOneof("output") == "stderr").decode()
    assert stdout.splitlines() == [
        "port 12345",
        "args 127.0.0.1:5555 --flag",
        f"cwd {tmp_path}",
        "env yes",
    ]
    assert stderr == "to stderr\n"
    assert replies[-1].WhichOneof("output") == "exitcode" and replies[-1].exitcode == 3


def test_a_plugin_runs_with_the_interpreter_of_its_virtualenv(tmp_path):
    venv_python = tmp_path / "venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(sys.executable)
    (tmp_path / "__main__.py").write_text(PLUGIN)
    argv, cwd, env = plugin_argv(_request(tmp_path, virtualenv="venv"))
    script = str(tmp_path / "__main__.py")
    assert argv == [str(venv_python), "-u", script, "127.0.0.1:5555", "--flag"]
    assert cwd == str(tmp_path) and env["FROM_ENGINE"] == "yes"
