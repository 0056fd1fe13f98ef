"""``unkai:compute:Network``: a libvirt network defined from the rendered XML."""

from __future__ import annotations

from typing import Any, ClassVar

from unkai.drivers import libvirt
from unkai.errors import ConfigError
from unkai.provider._resource import Resource
from unkai.provider._values import UNKNOWN, Props


class Network(Resource):
    """A libvirt network (NAT, isolated or bridged) on one host.

    ``user``-mode networks have no libvirt object (QEMU provides them per domain), so
    components create no Network resource for them.
    """

    token = "unkai:compute:Network"
    inputs = ("name", "libvirt_uri", "xml")
    replace_on: ClassVar = {
        "name": "a libvirt network cannot be renamed",
        "libvirt_uri": "the network moves to another host",
        "xml": "libvirt applies a changed network definition only by recreating it",
    }

    def check(self, news: Props) -> dict[str, Any]:
        """The XML must be a ``<network>`` whose name is ``name``."""
        xml, name = news.get("xml"), news.get("name")
        if xml is not UNKNOWN and name is not UNKNOWN:
            if not isinstance(xml, str) or "<network" not in xml:
                raise ConfigError("must be libvirt network XML", key_path="xml")
            if f"<name>{name}</name>" not in xml:
                raise ConfigError(f"must name the network {name!r}", key_path="xml")
        return dict(news.values)

    def create(self, inputs: Props) -> tuple[str, dict[str, Any]]:
        """Define and start the network."""
        uri, name = inputs.get("libvirt_uri"), inputs.get("name")
        libvirt.apply_network(uri, name, inputs.get("xml"))
        return name, {**inputs.values, "active": True}

    def read(self, resource_id: str, state: Props) -> dict[str, Any] | None:
        """Whether the network is still defined and active."""
        active = libvirt.network_active(state.get("libvirt_uri"), resource_id)
        if active is None:
            return None
        return {**state.values, "active": active}

    def update(self, resource_id: str, olds: Props, news: Props) -> dict[str, Any]:
        """Nothing but ``active`` can differ in place: start the network again."""
        return self.create(news)[1]

    def delete(self, resource_id: str, state: Props) -> None:
        """Stop and undefine the network."""
        libvirt.delete_network(state.get("libvirt_uri"), resource_id)
