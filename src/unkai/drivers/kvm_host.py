r"""A KVM hypervisor host: configured by ``playbooks/kvm-host.yml``, read through libvirt.

:func:`kvm_host_plan` (pure) turns a :class:`KvmHostSpec` into the playbook run that
installs and starts libvirt and QEMU, creates the storage pool (and networks when
asked) and decides the accelerator; :func:`configure_kvm_host` runs it and returns the
host's :class:`KvmHostFacts`. :func:`libvirt_state` is the cheap read (one libvirt
session, no playbook) and :func:`remove_pool_if_empty` the only thing a delete undoes
(the driver's one pool-removal path, :meth:`~unkai.drivers.libvirt.Session.remove_pool`).

The playbook's variables are the host's rendered ``host_vars`` file
(:func:`unkai.render.render_host_vars`), passed as text and applied as it is: what
``unkai render`` writes is what Ansible runs with.

Example:
    >>> spec = KvmHostSpec(
    ...     host=AnsibleHost(name="localhost", connection="local"),
    ...     libvirt_uri="qemu:///system",
    ...     pool_name="unkai",
    ...     pool_path="/var/lib/libvirt/images/unkai",
    ...     accelerator="tcg",
    ...     host_vars="kvm_host_accelerator: tcg\n",
    ... )
    >>> plan = kvm_host_plan(spec, playbooks_dir=Path("/p"), local_python="/venv/bin/python")
    >>> plan.playbook, plan.host_vars, plan.extravars
    (PosixPath('/p/kvm-host.yml'), {'localhost': 'kvm_host_accelerator: tcg\n'}, {})
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from unkai.drivers.ansible import AnsibleHost, PlaybookPlan, playbook_plan, run_playbook
from unkai.drivers.libvirt import session
from unkai.errors import DriverError

__all__ = [
    "ACCELERATORS",
    "FACTS_VAR",
    "PLAYBOOK",
    "KvmHostFacts",
    "KvmHostSpec",
    "LibvirtState",
    "configure_kvm_host",
    "kvm_host_plan",
    "libvirt_state",
    "remove_pool_if_empty",
]

PLAYBOOK = "kvm-host.yml"
"""The playbook that configures a KVM host."""
FACTS_VAR = "kvm_host_facts"
"""The variable its last task reports."""
ACCELERATORS = ("auto", "kvm", "tcg")
"""Values of :attr:`KvmHostSpec.accelerator`."""


@dataclass(frozen=True)
class KvmHostSpec:
    """What a KVM host should be.

    Attributes:
        host: How Ansible reaches it.
        libvirt_uri: Its libvirt connection URI (``qemu:///system``, ``qemu+ssh://...``).
        pool_name: The ``dir`` storage pool holding unkai's volumes.
        pool_path: That pool's folder.
        accelerator: ``auto``, ``kvm`` or ``tcg`` (what unkai's KVM probe found).
        host_vars: The host's rendered ``host_vars`` file: the playbook's variables
            (``kvm_host_*``, the connection), which say the same as the fields above.
        networks: libvirt networks the playbook defines, each ``{"name", "xml"}``.
    """

    host: AnsibleHost
    libvirt_uri: str
    pool_name: str
    pool_path: str
    accelerator: Literal["auto", "kvm", "tcg"]
    host_vars: str
    networks: tuple[Mapping[str, str], ...] = field(default=())


@dataclass(frozen=True)
class KvmHostFacts:
    """What the playbook found and did on the host.

    Attributes:
        cpus: CPU threads.
        memory_mb: Memory in MiB.
        accelerator: ``kvm`` or ``tcg``.
        accelerator_reason: Why, with the evidence (CPU flags, modules, /dev/kvm).
        libvirt_version: libvirt's version (``9.0.0``).
        qemu_version: QEMU's version (``7.2.22``).
        pool_path: The storage pool's folder.
        changed: How many tasks changed something (0: it was already right).
        seconds: How long the run took.
    """

    cpus: int
    memory_mb: int
    accelerator: str
    accelerator_reason: str
    libvirt_version: str
    qemu_version: str
    pool_path: str
    changed: int
    seconds: float


def kvm_host_plan(
    spec: KvmHostSpec, *, playbooks_dir: Path | None = None, local_python: str | None = None
) -> PlaybookPlan:
    """The playbook run that makes the host match ``spec``; pure.

    The run's variables are ``spec.host_vars`` alone: no extra variables override them.

    Args:
        spec: The host.
        playbooks_dir: The playbooks folder (default: unkai's own).
        local_python: Interpreter of ``connection: local`` hosts (default: unkai's).
    """
    return playbook_plan(
        spec.host,
        playbook=PLAYBOOK,
        host_vars=spec.host_vars,
        playbooks_dir=playbooks_dir,
        local_python=local_python,
    )


def configure_kvm_host(
    spec: KvmHostSpec,
    *,
    on_task: Callable[[str], None] | None = None,
    playbooks_dir: Path | None = None,
) -> KvmHostFacts:
    """Run the playbook on the host and return its facts.

    Side effects: installs the libvirt and QEMU packages, starts libvirtd and virtlogd,
    creates and starts the storage pool (and ``spec.networks``). Idempotent: a second
    run changes nothing (``changed == 0``).

    Args:
        spec: The host.
        on_task: Called with each task's name as it starts.
        playbooks_dir: The playbooks folder (default: unkai's own).

    Raises:
        PlaybookFailed: A task failed; names it and why.
        DriverError: The playbook reported no facts for the host.
    """
    plan = kvm_host_plan(spec, playbooks_dir=playbooks_dir)
    result = run_playbook(plan, facts_var=FACTS_VAR, on_task=on_task)
    facts = result.facts.get(spec.host.name)
    if facts is None:
        raise DriverError(f"host {spec.host.name}: {PLAYBOOK} reported no {FACTS_VAR}")
    return KvmHostFacts(
        cpus=int(facts["cpus"]),
        memory_mb=int(facts["memory_mb"]),
        accelerator=str(facts["accelerator"]),
        accelerator_reason=str(facts["accelerator_reason"]),
        libvirt_version=str(facts["libvirt_version"]),
        qemu_version=str(facts["qemu_version"]),
        pool_path=str(facts["pool_path"]),
        changed=result.changed.get(spec.host.name, 0),
        seconds=result.seconds,
    )


@dataclass(frozen=True)
class LibvirtState:
    """What libvirt says about a host now.

    Attributes:
        libvirt_version: libvirt's version (``9.0.0``).
        qemu_version: The hypervisor's version (``7.2.22``).
        pool_path: The storage pool's folder, or None when the pool does not exist.
        pool_active: Whether the pool is started.
        pool_autostart: Whether it starts with libvirtd.
        networks_active: Names of the asked-for networks that exist and are active.
    """

    libvirt_version: str
    qemu_version: str
    pool_path: str | None
    pool_active: bool
    pool_autostart: bool
    networks_active: tuple[str, ...] = ()


def libvirt_state(uri: str, pool_name: str, *, networks: Sequence[str] = ()) -> LibvirtState | None:
    """Ask libvirt about the host: versions, the storage pool, the networks; cheap.

    One libvirt session does every lookup.

    Args:
        uri: The host's libvirt URI.
        pool_name: The storage pool to look up.
        networks: libvirt network names to look up.

    Returns:
        The state, or None when libvirtd does not answer (not running, host unreachable).

    Raises:
        DriverError: libvirt answered with an unexpected error.
    """
    with contextlib.ExitStack() as stack:
        try:
            lv = stack.enter_context(session(uri))
        except DriverError:
            return None
        libvirt_version, qemu_version = lv.versions()
        pool = lv.pool(pool_name)
        active = tuple(
            name for name in networks if (found := lv.network(name)) is not None and found.active
        )
    return LibvirtState(
        libvirt_version=libvirt_version,
        qemu_version=qemu_version,
        pool_path=None if pool is None else pool.path,
        pool_active=pool is not None and pool.active,
        pool_autostart=pool is not None and pool.autostart,
        networks_active=active,
    )


def remove_pool_if_empty(uri: str, pool_name: str) -> bool:
    """Stop, delete and undefine the storage pool when it holds no volume.

    :meth:`unkai.drivers.libvirt.Session.remove_pool` on a session of its own. Side
    effects: the pool's definition goes, and its folder when empty (libvirt's
    ``pool-delete`` of a ``dir`` pool removes only an empty folder).

    Returns:
        True when the pool is gone (removed now or already absent), False when it still
        holds volumes and was left alone.

    Raises:
        DriverError: libvirtd does not answer, or refused to remove the pool.
    """
    with session(uri) as lv:
        return lv.remove_pool(pool_name, only_if_empty=True)


def check_kvm_host(spec: KvmHostSpec, *, playbooks_dir: Path | None = None) -> tuple[str, ...]:
    """The tasks a run of the playbook would change on the host, changing nothing.

    Runs the playbook in check mode (``--check``). Empty when the host matches ``spec``.

    Raises:
        PlaybookFailed: A task failed even in check mode (the host is unreachable, ...).
    """
    plan = dataclasses.replace(kvm_host_plan(spec, playbooks_dir=playbooks_dir), check=True)
    result = run_playbook(plan, facts_var=FACTS_VAR)
    return tuple(task for host, task in result.changed_tasks if host == spec.host.name)
