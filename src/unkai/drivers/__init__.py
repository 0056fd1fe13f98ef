"""Thin adapters that touch the world: files, libvirt, Docker, Ansible, Kubernetes.

Each driver takes rendered artifacts or plain values, does one kind of side effect, and
turns failures into :class:`~unkai.errors.DriverError`. Drivers never import Pulumi.
"""

from __future__ import annotations

from unkai.drivers.files import FileState, read_file, remove_file, write_file

__all__ = ["FileState", "read_file", "remove_file", "write_file"]
