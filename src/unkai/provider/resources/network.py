"""``unkai:compute:Network``: a libvirt network defined from the rendered XML."""

from __future__ import annotations

from unkai.drivers import libvirt
from unkai.kinds import NetworkInputs, NetworkState
from unkai.provider._log import warn
from unkai.provider._resource import Resource


class Network(Resource[NetworkInputs, NetworkState]):
    """A libvirt network (NAT, isolated or bridged) on one host.

    ``user``-mode networks have no libvirt object (QEMU provides them per domain), so
    components create no Network resource for them.
    """

    inputs_model = NetworkInputs
    state_model = NetworkState

    def create(self, inputs: NetworkInputs) -> tuple[str, NetworkState]:
        """Define and start the network, marked autostart."""
        with libvirt.session(inputs.libvirt_uri) as conn:
            conn.apply_network(inputs.name, inputs.xml)
        return inputs.name, NetworkState(**{**dict(inputs), "active": True}, autostart=True)

    def read(self, resource_id: str, state: NetworkState) -> NetworkState | None:
        """The live network: its XML when it no longer matches the rendered one.

        ``xml`` reads as the rendered text while libvirt's live definition holds every
        element and attribute of it (libvirt adds a uuid, MACs, ...); a hand change
        (``virsh net-edit``) reads as the live XML, so the next preview shows ``xml``
        drifted and ``up`` recreates the network from the rendered one.
        """
        if libvirt.unreachable(state.libvirt_uri):
            warn(f"{state.libvirt_uri} is unreachable; network {state.name} is not checked")
            return state
        with libvirt.session(state.libvirt_uri) as conn:
            found = conn.network(resource_id)
        if found is None:
            return None
        xml = state.xml if libvirt.network_matches(state.xml, found.xml) else found.xml
        return state.model_copy(
            update={"xml": xml, "active": found.active, "autostart": found.autostart}
        )

    def update(self, resource_id: str, olds: NetworkState, news: NetworkInputs) -> NetworkState:
        """Nothing but ``active`` can differ in place: start the network again."""
        return self.create(news)[1]

    def delete(self, resource_id: str, state: NetworkState) -> None:
        """Stop and undefine the network (on a host that is unreachable it stays: said)."""
        if libvirt.unreachable(state.libvirt_uri):
            warn(f"{state.libvirt_uri} is unreachable; network {state.name} stays there")
            return
        with libvirt.session(state.libvirt_uri) as conn:
            conn.delete_network(resource_id)
