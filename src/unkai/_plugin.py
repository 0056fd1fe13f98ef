"""``pulumi-resource-unkai``: the provider plugin's entry point, before gRPC loads.

The plugin forks (libvirt runs ``ssh`` for ``qemu+ssh``, Ansible runs in a child). gRPC
core's fork handlers, on by default, restart its poller in the child, where it dies on
the file descriptors the child closes before ``exec`` (grpc/grpc#43055) — so the child
never becomes ``ssh``. Those handlers serve programs that fork *without* exec; this
plugin only ever forks to exec, so they are switched off before gRPC is imported.
"""

from __future__ import annotations

import os


def main() -> None:
    """Serve unkai's provider to the engine that started this process."""
    os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"
    from unkai.provider import serve

    serve()
