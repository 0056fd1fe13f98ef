"""The machine half of ``scripts/bootstrap``: engine, daemons, accelerator.

``scripts/bootstrap`` installs Debian packages and the venv, then runs
``unkai bootstrap``, which calls :func:`bootstrap`. Every step checks before it acts, so
a second run only looks.
"""

from __future__ import annotations

from collections.abc import Callable

from unkai.toolchain._daemons import DOCKER, LIBVIRTD, ensure_running, registry_daemon
from unkai.toolchain._kubernetes import ensure_etcd, ensure_kubernetes, ensure_kwok
from unkai.toolchain._kvm import KvmReport, cached_probe, share_kvm_device
from unkai.toolchain._policy import ensure_policy_venv
from unkai.toolchain._pulumi import ensure_langhost, ensure_pulumi, link_into_venv


def bootstrap(*, say: Callable[[str], None] = lambda _: None, probe_kvm: bool = True) -> KvmReport:
    """Provide the pinned engine and Kubernetes, start the daemons (registry too), probe KVM.

    Args:
        say: Receives one line of progress per step.
        probe_kvm: Boot the probe guest again instead of trusting the remembered result.

    Returns:
        The accelerator VMs will use.

    Raises:
        CommandFailed: building the engine, Kubernetes, kwok or etcd failed.
        ToolchainError: a daemon would not start.
    """
    pulumi = ensure_pulumi(say=say)
    say(f"pulumi CLI {pulumi.version}: {pulumi.path} ({pulumi.origin})")
    link_into_venv(pulumi.path)
    host = ensure_langhost()
    say(f"pulumi language host (python): {host.path} ({host.origin})")
    kube = ensure_kubernetes(say=say)
    say(f"Kubernetes {kube.version}: {kube.path.parent} ({kube.origin})")
    kwok = ensure_kwok(say=say)
    say(f"kwok {kwok.version}: {kwok.path} ({kwok.origin})")
    etcd = ensure_etcd(say=say)
    say(f"etcd {etcd.version}: {etcd.path} ({etcd.origin})")
    say(f"policy packs' virtualenv: {ensure_policy_venv(say=say)}")
    if share_kvm_device():
        say("/dev/kvm: set to root:kvm 0660 (what udev would do)")
    for daemon in (DOCKER, LIBVIRTD, registry_daemon()):
        state = ensure_running(daemon, say=say)
        say(f"{daemon.name}: {state}")
    report = cached_probe(refresh=probe_kvm)
    say(f"accelerator: {report.accelerator} ({report.reason})")
    return report
