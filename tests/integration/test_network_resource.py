"""The Network resource against real libvirt: an isolated network (no forwarding, no
traffic leaves the host) defined from the rendered XML, read back, changed behind
unkai's back and repaired, and deleted."""

from __future__ import annotations

import uuid

import libvirt as virt

from unkai.drivers import libvirt
from unkai.kinds import NetworkInputs, NetworkState
from unkai.model import Network as NetworkModel
from unkai.provider import Props
from unkai.provider.resources import Network
from unkai.render import libvirt_network_name, render_network_xml

URI = "qemu:///system"


def _props(state: NetworkState) -> Props:
    return Props(state.model_dump(mode="json"))


def _redefine_by_hand(name: str, xml: str) -> None:
    """What an operator's ``virsh net-destroy/net-undefine/net-define/net-start`` does."""
    conn = virt.open(URI)
    try:
        net = conn.networkLookupByName(name)
        net.destroy()
        net.undefine()
        conn.networkDefineXML(xml).create()
    finally:
        conn.close()


def _stop_by_hand(name: str) -> None:
    conn = virt.open(URI)
    try:
        conn.networkLookupByName(name).destroy()
    finally:
        conn.close()


def test_isolated_network_lifecycle_drift_and_repair():
    name = f"it{uuid.uuid4().hex[:6]}"
    model = NetworkModel(name=name, mode="isolated", cidr="10.213.7.0/24")
    libvirt_name = libvirt_network_name("itest", name)
    resource = Network()
    checked = resource.check(
        Props(
            {
                "name": libvirt_name,
                "libvirt_uri": URI,
                "xml": render_network_xml(model, environment="itest"),
            }
        )
    )
    inputs = NetworkInputs.model_validate(checked)
    rid, state = resource.create(inputs)
    try:
        assert rid == libvirt_name and state.active is True and state.autostart is True
        assert libvirt.network_active(URI, libvirt_name) is True
        assert "<forward" not in (libvirt.network_xml(URI, libvirt_name) or "")
        assert resource.read(rid, state) == state
        assert not resource.diff(_props(state), Props(checked)).has_changes

        # Redefined with another address range behind unkai's back: read tells the truth.
        other = render_network_xml(
            NetworkModel(name=name, mode="isolated", cidr="10.213.8.0/24"), environment="itest"
        )
        assert other != inputs.xml
        _redefine_by_hand(libvirt_name, other)
        drifted = resource.read(rid, state)
        assert drifted is not None
        assert drifted.xml != inputs.xml
        assert drifted.xml == libvirt.network_xml(URI, libvirt_name)
        assert "10.213.8.1" in drifted.xml and "10.213.7.1" not in drifted.xml
        assert libvirt.network_matches(other, drifted.xml)
        diff = resource.diff(_props(drifted), Props(checked))
        assert diff.changed == ("xml",) and diff.replaces == ("xml",)
        assert "recreating" in diff.reasons["xml"]

        # `up` replaces it (delete before create, as the provider asks): repaired.
        resource.delete(rid, drifted)
        rid, state = resource.create(inputs)
        repaired = resource.read(rid, state)
        assert repaired == state and repaired.xml == inputs.xml
        assert "10.213.7.1" in (libvirt.network_xml(URI, libvirt_name) or "")
        assert not resource.diff(_props(repaired), Props(checked)).has_changes

        # Stopped behind unkai's back: an in-place change of `active`; update starts it.
        _stop_by_hand(libvirt_name)
        stopped = resource.read(rid, state)
        assert stopped is not None and stopped.active is False
        diff = resource.diff(_props(stopped), Props(checked))
        assert diff.changed == ("active",) and diff.replaces == ()
        state = resource.update(rid, stopped, inputs)
        assert libvirt.network_active(URI, libvirt_name) is True
        assert resource.read(rid, state) == state
    finally:
        resource.delete(rid, state)
    assert libvirt.network_active(URI, libvirt_name) is None
    assert resource.read(rid, state) is None
