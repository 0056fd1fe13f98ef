"""The Network resource against real libvirt: an isolated network (no forwarding, no
traffic leaves the host) defined from the rendered XML, read back, and deleted."""

from __future__ import annotations

import uuid

from unkai.drivers import libvirt
from unkai.model import Network as NetworkModel
from unkai.provider import Props
from unkai.provider.resources import Network
from unkai.render import libvirt_network_name, render_network_xml

URI = "qemu:///system"


def test_isolated_network_lifecycle():
    name = f"it{uuid.uuid4().hex[:6]}"
    model = NetworkModel(name=name, mode="isolated", cidr="10.213.7.0/24")
    libvirt_name = libvirt_network_name(name)
    resource = Network()
    inputs = resource.check(
        Props({"name": libvirt_name, "libvirt_uri": URI, "xml": render_network_xml(model)})
    )
    rid, outputs = resource.create(Props(inputs))
    try:
        assert rid == libvirt_name and outputs["active"] is True
        assert libvirt.network_active(URI, libvirt_name) is True
        assert "<forward" not in (libvirt.network_xml(URI, libvirt_name) or "")
        assert resource.read(rid, Props(outputs)) == outputs
        same = resource.diff(Props(outputs), Props(inputs))
        assert not same.has_changes
    finally:
        resource.delete(rid, Props(outputs))
    assert libvirt.network_active(URI, libvirt_name) is None
    assert resource.read(rid, Props(outputs)) is None
