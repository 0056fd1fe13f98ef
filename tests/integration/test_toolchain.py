"""The toolchain the bootstrap provides, checked for real on this machine."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import language_pb2, language_pb2_grpc
from typer.testing import CliRunner

from unkai.cli import app
from unkai.cli.app import _register
from unkai.toolchain import (
    DOCKER,
    LIBVIRTD,
    answers,
    find_langhost,
    find_pulumi,
    probe,
    run_checks,
)

ROOT = Path(__file__).resolve().parents[2]


def test_pulumi_cli_matches_the_pinned_sdk():
    found = find_pulumi()
    assert found is not None, "run scripts/bootstrap"
    assert found.version == metadata.version("pulumi")
    out = subprocess.run([str(found.path), "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"v{metadata.version('pulumi')}"


def test_language_host_serves_the_plugin_protocol():
    host = find_langhost()
    assert host is not None
    argv = [str(host.path), "127.0.0.1:1"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        try:
            port = int(proc.stdout.readline())
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = language_pb2_grpc.LanguageRuntimeStub(channel)
                info = stub.GetPluginInfo(empty_pb2.Empty(), timeout=10)
                assert info.version == metadata.version("pulumi")
                about = stub.About(language_pb2.AboutRequest(), timeout=10)
                assert about.version.startswith("3.11")
        finally:
            proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_daemons_answer():
    assert answers(DOCKER), "dockerd is not answering; run scripts/bootstrap"
    assert answers(LIBVIRTD), "libvirtd is not answering; run scripts/bootstrap"


def test_kvm_probe_boots_a_guest_or_says_why_not():
    report = probe(timeout=15)
    assert report.accelerator in {"kvm", "tcg"}
    if report.accelerator == "kvm":
        assert report.reason == "a guest booted under KVM"
    else:
        assert report.reason


def test_doctor_shows_every_component_ok():
    checks = run_checks()
    assert {c.component for c in checks} >= {
        "pulumi CLI",
        "pulumi language host (python)",
        "unkai provider plugin",
        "Docker engine",
        "libvirtd",
        "QEMU accelerator",
        "ansible-core",
        "debootstrap",
    }
    assert [c.component for c in checks if not c.ok] == []
    _register()
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "ready" in result.output


def test_bootstrap_a_second_time_only_checks():
    out = subprocess.run(
        [str(ROOT / "scripts" / "bootstrap")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Debian packages: all" in out.stdout
    assert "Python dependencies: up to date" in out.stdout
    assert "building" not in out.stdout
    assert "dockerd: running" in out.stdout
    assert "libvirtd: running" in out.stdout
    assert sys.executable  # the venv that runs this test is the one bootstrap keeps
