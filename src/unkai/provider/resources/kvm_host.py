"""``unkai:compute:KvmHost``: a hypervisor host configured by ``playbooks/kvm-host.yml``.

Create and update run the playbook through ansible-runner (libvirt and QEMU installed
and running, the storage pool defined, started and autostarted, networks when asked)
and output the host's facts. Read asks libvirt directly — no playbook, one connection —
so ``refresh`` is cheap and tells the truth: a storage pool deleted, stopped or moved
behind unkai's back, a network gone or libvirtd not answering shows as drift of
``pool_path`` / ``networks`` and the next ``up`` runs the playbook again to repair it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, ClassVar

from unkai.drivers.ansible import AnsibleHost
from unkai.drivers.kvm_host import (
    ACCELERATORS,
    KvmHostSpec,
    configure_kvm_host,
    libvirt_state,
    remove_pool_if_empty,
)
from unkai.errors import ConfigError
from unkai.provider._resource import Diff, Resource
from unkai.provider._values import UNKNOWN, Props
from unkai.render import STORAGE_POOL, STORAGE_POOL_PATH

__all__ = ["KvmHost", "default_libvirt_uri"]

_log = logging.getLogger(__name__)

_CONNECTIONS = ("local", "ssh")
_FACTS = (
    "cpus",
    "memory_mb",
    "accelerator",
    "accelerator_reason",
    "libvirt_version",
    "qemu_version",
    "changed",
)


def default_libvirt_uri(*, connection: str, address: str, ssh_user: str | None) -> str:
    """The libvirt URI of a host, as ``unkai.model.Host`` derives it.

    ``qemu:///system`` for ``connection: local``; ``qemu+ssh://[user@]address/system``
    for ``ssh``.
    """
    if connection == "local":
        return "qemu:///system"
    user = f"{ssh_user}@" if ssh_user else ""
    return f"qemu+ssh://{user}{address}/system"


def _known(*values: Any) -> bool:
    return all(v is not UNKNOWN for v in values)


def _text(news: Props, key: str, *, required: bool = True) -> Any:
    value = news.get(key)
    if value is UNKNOWN or (value is None and not required):
        return value
    if not isinstance(value, str) or not value:
        raise ConfigError("must be a non-empty string", key_path=key, value=value)
    return value


class KvmHost(Resource):
    """A KVM hypervisor host.

    Inputs: ``name`` (inventory name), ``address``, ``connection`` (``local`` or
    ``ssh``), ``ssh_user``, ``libvirt_uri`` (derived when omitted), ``pool_name``
    (default ``unkai``), ``pool_path`` (default ``/var/lib/libvirt/images/unkai``),
    ``accelerator`` (``auto``, ``kvm`` or ``tcg``; unkai passes what its KVM probe
    found), ``networks`` (libvirt networks to define and start, each ``{name, xml}``;
    usually empty, unkai's ``Network`` resource manages networks itself).

    Outputs, besides the inputs: ``cpus``, ``memory_mb``, ``accelerator`` (the one in
    use, ``kvm`` or ``tcg``), ``accelerator_reason``, ``accelerator_requested`` (the
    input), ``libvirt_version``, ``qemu_version``, ``changed`` (tasks the last
    playbook run changed).

    ``address`` and ``connection`` force a replacement: they name a different machine
    (or a different way into it), so the new one is configured from scratch and the old
    one is released. Everything else — the pool's name or folder, the libvirt URI, the
    accelerator, the networks — updates in place by running the playbook again (a pool
    that moves is removed first when empty).

    Delete leaves the packages installed and the daemons running (other tenants of the
    host may use them, and reinstalling is slow) but removes the storage pool when it
    holds no volume; a pool that still holds volumes is left as it is.
    """

    token = "unkai:compute:KvmHost"
    inputs = (
        "name",
        "address",
        "connection",
        "ssh_user",
        "libvirt_uri",
        "pool_name",
        "pool_path",
        "accelerator",
        "networks",
    )
    replace_on: ClassVar = {
        "address": "a different address is a different machine: it is configured anew "
        "and the old host's storage pool is released",
        "connection": "local and ssh reach different machines (this one, or one over SSH): "
        "the host is configured anew",
    }

    def check(self, news: Props) -> dict[str, Any]:
        """Types, allowed values and defaults; an ``ssh`` host needs an address."""
        name = _text(news, "name")
        connection = news.get("connection") or "local"
        if _known(connection) and connection not in _CONNECTIONS:
            raise ConfigError(
                "unknown connection", key_path="connection", value=connection, allowed="local, ssh"
            )
        address: Any = news.get("address") or ("127.0.0.1" if connection == "local" else None)
        if connection == "ssh":
            address = _text(news, "address")
        ssh_user = _text(news, "ssh_user", required=False)
        libvirt_uri = news.get("libvirt_uri")
        if not libvirt_uri and _known(connection, address, ssh_user):
            libvirt_uri = default_libvirt_uri(
                connection=connection, address=address, ssh_user=ssh_user
            )
        pool_name = news.get("pool_name") or STORAGE_POOL
        pool_path = news.get("pool_path") or STORAGE_POOL_PATH
        if _known(pool_path) and (not isinstance(pool_path, str) or not os.path.isabs(pool_path)):
            raise ConfigError("must be an absolute path", key_path="pool_path", value=pool_path)
        accelerator = news.get("accelerator") or "auto"
        if _known(accelerator) and accelerator not in ACCELERATORS:
            raise ConfigError(
                "unknown accelerator",
                key_path="accelerator",
                value=accelerator,
                allowed=", ".join(ACCELERATORS),
            )
        networks = news.get("networks") or []
        if _known(networks):
            if not isinstance(networks, list):
                raise ConfigError("must be a list", key_path="networks", allowed="[{name, xml}]")
            for index, net in enumerate(networks):
                ok = (
                    isinstance(net, Mapping)
                    and set(net) == {"name", "xml"}
                    and all(isinstance(v, str) and v for v in net.values())
                )
                if not ok and _known(net):
                    raise ConfigError(
                        "must be {name, xml} with non-empty strings",
                        key_path=f"networks[{index}]",
                        allowed="{name: <libvirt network name>, xml: <network XML>}",
                    )
        return {
            "name": name,
            "address": address,
            "connection": connection,
            "ssh_user": ssh_user,
            "libvirt_uri": libvirt_uri,
            "pool_name": pool_name,
            "pool_path": pool_path,
            "accelerator": accelerator,
            "networks": networks,
        }

    def diff(self, olds: Props, news: Props) -> Diff:
        """The generic diff, with ``accelerator`` compared to what was asked for.

        The state's ``accelerator`` is the one in use (``kvm`` or ``tcg``); an input of
        ``auto`` is compared with ``accelerator_requested``, so it never shows as a change.
        """
        asked = olds.get("accelerator_requested", olds.get("accelerator"))
        return super().diff(Props({**olds.values, "accelerator": asked}, olds.secrets), news)

    @staticmethod
    def _spec(inputs: Props) -> KvmHostSpec:
        return KvmHostSpec(
            host=AnsibleHost(
                name=inputs.get("name"),
                connection=inputs.get("connection"),
                address=inputs.get("address"),
                ssh_user=inputs.get("ssh_user"),
            ),
            libvirt_uri=inputs.get("libvirt_uri"),
            pool_name=inputs.get("pool_name"),
            pool_path=inputs.get("pool_path"),
            accelerator=inputs.get("accelerator"),
            networks=tuple(inputs.get("networks") or ()),
        )

    def _configure(self, inputs: Props) -> dict[str, Any]:
        spec = self._spec(inputs)

        def progress(task: str) -> None:
            _log.info("%s: %s", spec.host.name, task)

        facts = configure_kvm_host(spec, on_task=progress)
        _log.info(
            "%s: configured in %.1f s, %d task(s) changed",
            spec.host.name,
            facts.seconds,
            facts.changed,
        )
        return {
            **{key: inputs.get(key) for key in self.inputs},
            "accelerator_requested": inputs.get("accelerator"),
            **{key: getattr(facts, key) for key in _FACTS},
        }

    def create(self, inputs: Props) -> tuple[str, dict[str, Any]]:
        """Run the playbook; the id is ``<connection>:<address>``, what forces a replace."""
        resource_id = f"{inputs.get('connection')}:{inputs.get('address')}"
        return resource_id, self._configure(inputs)

    def read(self, resource_id: str, state: Props) -> dict[str, Any] | None:
        """The state, with what libvirt says now.

        ``pool_path`` reads as the folder of the storage pool when it exists, is active
        and autostarts, else as empty; ``networks`` keeps only those active; the
        versions are libvirt's. libvirtd not answering reads as an empty ``pool_path``
        too: in every case the next ``up`` sees drift and runs the playbook.
        """
        wanted = [net["name"] for net in state.get("networks") or []]
        found = libvirt_state(state.get("libvirt_uri"), state.get("pool_name"), networks=wanted)
        props = dict(state.values)
        if found is None:
            props["pool_path"] = ""
            props["networks"] = []
            return props
        healthy = found.pool_active and found.pool_autostart
        props["pool_path"] = (found.pool_path or "") if healthy else ""
        props["networks"] = [
            net for net in state.get("networks") or [] if net["name"] in found.networks_active
        ]
        props["libvirt_version"] = found.libvirt_version
        props["qemu_version"] = found.qemu_version
        return props

    def update(self, resource_id: str, olds: Props, news: Props) -> dict[str, Any]:
        """Run the playbook again; a pool that is renamed or moves is released first."""
        moved = (olds.get("pool_name"), olds.get("pool_path")) != (
            news.get("pool_name"),
            news.get("pool_path"),
        )
        if moved and olds.get("pool_path"):
            remove_pool_if_empty(olds.get("libvirt_uri"), olds.get("pool_name"))
        return self._configure(news)

    def delete(self, resource_id: str, state: Props) -> None:
        """Remove the storage pool when empty; packages and daemons stay (see the class)."""
        removed = remove_pool_if_empty(state.get("libvirt_uri"), state.get("pool_name"))
        if not removed:
            _log.warning(
                "%s: storage pool %s still holds volumes; left in place",
                state.get("name"),
                state.get("pool_name"),
            )
