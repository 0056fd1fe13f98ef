"""metrics-server: what is built from which module, and how the cache is checked.

No build runs here; ``tests/unit/toolchain`` stays off the network.
"""

from __future__ import annotations

from pathlib import Path

from unkai.toolchain import (
    find_metrics_server,
    metrics_server_bin,
    metrics_server_tool,
    metrics_server_version,
)
from unkai.toolchain._doctor import check_metrics_server
from unkai.toolchain._gobuild import build_argv, wrapper_files
from unkai.toolchain._pins import pinned_version


def test_the_version_is_the_pinned_one():
    assert metrics_server_version() == pinned_version("metrics-server") == "0.8.0"


def test_metrics_server_is_built_from_its_module_with_the_version_where_its_makefile_puts_it():
    tool = metrics_server_tool("0.8.0")
    assert tool.name == "metrics-server"
    assert tool.module == "sigs.k8s.io/metrics-server" and tool.version == "v0.8.0"
    assert tool.binaries == (("sigs.k8s.io/metrics-server/cmd/metrics-server", "metrics-server"),)
    # --version prints client-go's gitVersion; the Makefile stamps nothing else it reads.
    assert tool.ldflags == "-s -w -X k8s.io/client-go/pkg/version.gitVersion=v0.8.0"
    assert tool.pin_local_replaces is None and tool.tags == () and not tool.together
    assert tool.env == {}  # CGO_ENABLED=0 comes from build(), as for every tool


def test_the_wrapper_requires_the_module_at_the_pin_and_builds_its_command():
    tool = metrics_server_tool("0.8.0")
    files = wrapper_files(tool, (), "1.24.4")
    assert "\tsigs.k8s.io/metrics-server v0.8.0\n" in files["go.mod"]
    assert "replace" not in files["go.mod"]
    assert '_ "sigs.k8s.io/metrics-server/cmd/metrics-server"' in files["tools.go"]
    package, binary = tool.binaries[0]
    argv = build_argv(tool, package, Path("/out") / binary)
    assert argv[-3:] == ["-o", "/out/metrics-server", package]


def test_the_cache_counts_only_when_the_binary_reports_the_pinned_version(cache, fake_binary):
    folder = cache / "metrics-server-0.8.0" / "bin"
    assert metrics_server_bin("0.8.0") == folder
    assert find_metrics_server("0.8.0") is None  # nothing built
    fake_binary(folder, "metrics-server", "v0.0.0-master+$Format:%H$")  # built without the stamp
    assert find_metrics_server("0.8.0") is None
    binary = fake_binary(folder, "metrics-server", "v0.8.0")
    assert find_metrics_server("0.8.0") == binary
    assert find_metrics_server("0.8.1") is None


def test_doctor_shows_it_built_or_built_on_first_use(cache, fake_binary):
    check = check_metrics_server()
    assert check.ok and check.detail == f"{metrics_server_version()} (built on first use)"
    fake_binary(metrics_server_bin(), "metrics-server", f"v{metrics_server_version()}")
    check = check_metrics_server()
    assert check.ok and check.detail.endswith(f"({metrics_server_bin().parent})")
    assert metrics_server_bin().is_relative_to(cache)
