"""The toolchain unkai runs on: the Pulumi engine, Docker, libvirt/QEMU, and their health.

This package touches the machine (builds tools, starts daemons) on behalf of
``scripts/bootstrap`` and ``unkai doctor``; the layers of the cloud itself never import it.
"""

from __future__ import annotations

from unkai.toolchain._bootstrap import bootstrap
from unkai.toolchain._daemons import (
    DAEMONS,
    DOCKER,
    LIBVIRTD,
    REGISTRY_ADDRESS,
    Daemon,
    answers,
    ensure_running,
    registry_daemon,
)
from unkai.toolchain._doctor import Check, run_checks
from unkai.toolchain._gobuild import GoTool, Replace, build, build_argv, wrapper_files
from unkai.toolchain._kubernetes import (
    ensure_etcd,
    ensure_kubernetes,
    ensure_kwok,
    etcd_bin,
    etcd_version,
    find_etcd,
    find_kubernetes,
    find_kwok,
    kubernetes_bin,
    kubernetes_version,
    kwok_bin,
    kwok_version,
)
from unkai.toolchain._kvm import KvmReport, boot_sector, cached_probe, probe
from unkai.toolchain._metrics import (
    ensure_metrics_server,
    find_metrics_server,
    metrics_server_bin,
    metrics_server_tool,
    metrics_server_version,
)
from unkai.toolchain._node import (
    NodeBinaries,
    Pause,
    containerd_version,
    ensure_node,
    ensure_pause,
    find_node,
)
from unkai.toolchain._paths import (
    cache_root,
    project_root,
    pulumi_version,
    state_dir,
    toolchain_dir,
    venv_bin,
)
from unkai.toolchain._pins import pinned_version, pins
from unkai.toolchain._policy import POLICY_PINS, ensure_policy_venv, policy_venv
from unkai.toolchain._project import PROJECT_FILE, Project, find_project, load_project
from unkai.toolchain._pulumi import (
    Found,
    engine_env,
    ensure_langhost,
    ensure_pulumi,
    find_langhost,
    find_pulumi,
    pulumi_tool,
)
from unkai.toolchain._run_marker import (
    RUN_ENV,
    Leftover,
    Run,
    detached_env,
    leftovers,
    process_start,
    stop_leftovers,
    this_run,
)
from unkai.toolchain._ssh import SSH_ENV, environment_ssh, known_hosts_file, operator_key, ssh_dir

__all__ = [
    "DAEMONS",
    "DOCKER",
    "LIBVIRTD",
    "POLICY_PINS",
    "PROJECT_FILE",
    "REGISTRY_ADDRESS",
    "RUN_ENV",
    "SSH_ENV",
    "Check",
    "Daemon",
    "Found",
    "GoTool",
    "KvmReport",
    "Leftover",
    "NodeBinaries",
    "Pause",
    "Project",
    "Replace",
    "Run",
    "answers",
    "boot_sector",
    "bootstrap",
    "build",
    "build_argv",
    "cache_root",
    "cached_probe",
    "containerd_version",
    "detached_env",
    "engine_env",
    "ensure_etcd",
    "ensure_kubernetes",
    "ensure_kwok",
    "ensure_langhost",
    "ensure_metrics_server",
    "ensure_node",
    "ensure_pause",
    "ensure_policy_venv",
    "ensure_pulumi",
    "ensure_running",
    "environment_ssh",
    "etcd_bin",
    "etcd_version",
    "find_etcd",
    "find_kubernetes",
    "find_kwok",
    "find_langhost",
    "find_metrics_server",
    "find_node",
    "find_project",
    "find_pulumi",
    "known_hosts_file",
    "kubernetes_bin",
    "kubernetes_version",
    "kwok_bin",
    "kwok_version",
    "leftovers",
    "load_project",
    "metrics_server_bin",
    "metrics_server_tool",
    "metrics_server_version",
    "operator_key",
    "pinned_version",
    "pins",
    "policy_venv",
    "probe",
    "process_start",
    "project_root",
    "pulumi_tool",
    "pulumi_version",
    "registry_daemon",
    "run_checks",
    "ssh_dir",
    "state_dir",
    "stop_leftovers",
    "this_run",
    "toolchain_dir",
    "venv_bin",
    "wrapper_files",
]
