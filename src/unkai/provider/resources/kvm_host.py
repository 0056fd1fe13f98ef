"""``unkai:compute:KvmHost``: a hypervisor host configured by ``playbooks/kvm-host.yml``.

Create and update run the playbook through ansible-runner (libvirt and QEMU installed
and running, the storage pool defined, started and autostarted, networks when asked)
and output the host's facts. Read asks libvirt first (one connection): a pool deleted,
stopped or moved behind unkai's back, a network gone or libvirtd not answering shows as
drift at once; otherwise it runs the playbook in check mode, so any task that would
change something (a package removed, a config file edited) shows as ``converged:
false`` with the tasks in ``drift``, and the next ``up`` runs the playbook to repair it.

Delete leaves the packages installed and the daemons running (other tenants of the host
may use them, and reinstalling is slow) but removes the storage pool when it holds no
volume; a pool that still holds volumes is left as it is.
"""

from __future__ import annotations

import yaml

from unkai.drivers.ansible import AnsibleHost
from unkai.drivers.kvm_host import (
    KvmHostSpec,
    check_kvm_host,
    configure_kvm_host,
    libvirt_state,
    remove_pool_if_empty,
)
from unkai.drivers.libvirt import unreachable
from unkai.errors import ConfigError, DriverError
from unkai.kinds import KvmHostInputs, KvmHostState
from unkai.provider._log import say, warn
from unkai.provider._resource import Diff, Resource
from unkai.provider._values import Props


def _spec(inputs: KvmHostInputs) -> KvmHostSpec:
    return KvmHostSpec(
        host=AnsibleHost(
            name=inputs.name,
            connection=inputs.connection,
            address=inputs.address,
            ssh_user=inputs.ssh_user,
        ),
        libvirt_uri=inputs.libvirt_uri or "",
        pool_name=inputs.pool_name,
        pool_path=inputs.pool_path,
        accelerator=inputs.accelerator,
        host_vars=inputs.host_vars,
        networks=tuple({"name": n.name, "xml": n.xml} for n in inputs.networks),
    )


class KvmHost(Resource[KvmHostInputs, KvmHostState]):
    """A KVM hypervisor host (see :class:`unkai.kinds.KvmHostInputs`)."""

    inputs_model = KvmHostInputs
    state_model = KvmHostState

    def validate(self, inputs: KvmHostInputs, *, secrets: frozenset[str]) -> None:
        """The rendered ``host_vars`` say what the other inputs say, or nothing runs.

        The playbook applies ``host_vars``; unkai reads the host through the fields. A
        ``host_vars`` written for another pool, accelerator or address would configure
        one host and check another.

        Raises:
            ConfigError: naming ``host_vars`` and each variable that disagrees.
        """
        try:
            found = yaml.safe_load(inputs.host_vars)
        except yaml.YAMLError as err:
            raise ConfigError("is not YAML", key_path="host_vars", value=str(err)) from err
        if not isinstance(found, dict):
            raise ConfigError("must be a YAML mapping of variables", key_path="host_vars")
        wanted: dict[str, object] = {
            "ansible_connection": inputs.connection,
            "kvm_host_accelerator": inputs.accelerator,
            "kvm_host_pool_name": inputs.pool_name,
            "kvm_host_pool_path": inputs.pool_path,
        }
        if inputs.connection == "ssh":
            wanted["ansible_host"] = inputs.address
        wrong = [f"{k} is {found.get(k)!r}" for k, v in wanted.items() if found.get(k) != v]
        if wrong:
            raise ConfigError(
                "disagrees with the other inputs", key_path="host_vars", value="; ".join(wrong),
                allowed=", ".join(f"{k}: {v}" for k, v in wanted.items()),
            )  # fmt: skip

    def diff(self, olds: Props, news: Props) -> Diff:
        """The generic diff, with ``accelerator`` compared to what was asked for.

        The state's ``accelerator`` is the one in use (``kvm`` or ``tcg``); an input of
        ``auto`` is compared with ``accelerator_requested``, so it never shows as a change.
        """
        asked = olds.get("accelerator_requested", olds.get("accelerator"))
        return super().diff(Props({**olds.values, "accelerator": asked}, olds.secrets), news)

    def _configure(self, inputs: KvmHostInputs) -> KvmHostState:
        spec = _spec(inputs)
        facts = configure_kvm_host(spec, on_task=lambda task: say(f"{spec.host.name}: {task}"))
        changed = f"{facts.changed} task(s) changed"
        say(f"{spec.host.name}: configured in {facts.seconds:.1f} s, {changed}")
        return KvmHostState(
            **{**dict(inputs), "accelerator": facts.accelerator},
            accelerator_requested=inputs.accelerator,
            accelerator_reason=facts.accelerator_reason,
            cpus=facts.cpus,
            memory_mb=facts.memory_mb,
            libvirt_version=facts.libvirt_version,
            qemu_version=facts.qemu_version,
            changed=facts.changed,
        )

    def create(self, inputs: KvmHostInputs) -> tuple[str, KvmHostState]:
        """Run the playbook; the id is ``<connection>:<address>``, what forces a replace."""
        return f"{inputs.connection}:{inputs.address}", self._configure(inputs)

    def read(self, resource_id: str, state: KvmHostState) -> KvmHostState | None:
        """The host as it is: libvirt's view, then a check-mode run of the playbook.

        ``pool_path`` reads as the pool's folder when it exists, is active and
        autostarts, else as empty; ``networks`` keeps only those active; libvirtd not
        answering reads as an empty ``pool_path``. When libvirt looks right, the
        playbook runs in check mode and ``converged``/``drift`` say whether any task
        would change something.
        """
        wanted = [net.name for net in state.networks]
        if state.libvirt_uri and unreachable(state.libvirt_uri):
            warn(f"{state.name} ({state.address}) is unreachable: not checked")
            return state
        try:
            found = libvirt_state(state.libvirt_uri or "", state.pool_name, networks=wanted)
        except DriverError:
            found = None
        if found is None:
            return state.model_copy(update={"pool_path": "", "networks": ()})
        healthy = found.pool_active and found.pool_autostart
        update: dict[str, object] = {
            "pool_path": (found.pool_path or "") if healthy else "",
            "networks": tuple(n for n in state.networks if n.name in found.networks_active),
            "libvirt_version": found.libvirt_version,
            "qemu_version": found.qemu_version,
        }
        if healthy:
            asked = state.model_copy(
                update={"accelerator": state.accelerator_requested or state.accelerator}
            )
            drift = check_kvm_host(_spec(asked))
            if drift:
                warn(f"{state.name}: the playbook would change: {', '.join(drift)}")
            update["converged"] = not drift
            update["drift"] = drift
        return state.model_copy(update=update)

    def update(self, resource_id: str, olds: KvmHostState, news: KvmHostInputs) -> KvmHostState:
        """Run the playbook again; a pool that is renamed or moves is released first."""
        moved = (olds.pool_name, olds.pool_path) != (news.pool_name, news.pool_path)
        if moved and olds.pool_path:
            remove_pool_if_empty(olds.libvirt_uri or "", olds.pool_name)
        return self._configure(news)

    def delete(self, resource_id: str, state: KvmHostState) -> None:
        """Remove the storage pool when empty; packages and daemons stay (see the module)."""
        if state.libvirt_uri and unreachable(state.libvirt_uri):
            warn(f"{state.name} ({state.address}) is unreachable; its storage pool stays")
            return
        if not remove_pool_if_empty(state.libvirt_uri or "", state.pool_name):
            warn(f"{state.name}: storage pool {state.pool_name} still holds volumes; left in place")
