"""Ansible connection ``unkai_chroot``: run tasks inside a root filesystem with chroot.

Loaded by Ansible from ``ANSIBLE_CONNECTION_PLUGINS`` while an image is baked (never
imported by unkai). The controller (ansible-playbook of unkai's venv) stays on the
build host; only modules run inside the tree, with the tree's own Python
(``ansible_python_interpreter=/usr/bin/python3``). It is ansible-core's ``local``
connection with every command wrapped in ``chroot <root>``: no community collection
is needed, and nothing of the host is mounted into the image.

Files go in and out through ``dd`` inside the chroot so that absolute symlinks in the
tree resolve as the image sees them, not as the host would.
"""

from __future__ import annotations

import os
import shlex
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.connection import ConnectionBase

DOCUMENTATION = """
    name: unkai_chroot
    short_description: run tasks inside a root filesystem with chroot
    description:
        - Runs modules inside a directory tree with chroot; used by unkai to bake
          playbooks into images while they are built.
    author: unkai
    options:
        remote_addr:
            description: The root of the tree (an absolute path).
            default: inventory_hostname
            type: str
            vars:
                - name: inventory_hostname
                - name: ansible_host
        executable:
            description: The shell inside the tree.
            default: /bin/sh
            type: str
            vars:
                - name: ansible_executable
    extends_documentation_fragment:
        - connection_pipelining
"""


class Connection(ConnectionBase):  # type: ignore[misc]  # ansible ships no type hints
    """Run commands and copy files inside a chroot."""

    transport = "unkai_chroot"
    has_pipelining = True
    has_tty = False
    default_user = "root"

    def _root(self) -> str:
        root = str(self.get_option("remote_addr"))
        if not os.path.isabs(root) or not os.path.isfile(os.path.join(root, "bin/sh")):
            raise AnsibleConnectionFailure(f"{root!r} is not the root of a tree with /bin/sh")
        return root

    def _connect(self) -> Connection:
        self._root()
        self._connected = True
        return self

    def _argv(self, cmd: str) -> list[str]:
        return ["chroot", self._root(), str(self.get_option("executable")), "-c", cmd]

    def exec_command(
        self, cmd: str, in_data: bytes | None = None, sudoable: bool = True
    ) -> tuple[int, bytes, bytes]:
        """Run ``cmd`` with the tree's shell inside the chroot."""
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        proc = subprocess.run(
            self._argv(cmd), input=in_data or b"", capture_output=True, check=False
        )
        return proc.returncode, proc.stdout, proc.stderr

    def put_file(self, in_path: str, out_path: str) -> None:
        """Copy ``in_path`` of the host to ``out_path`` inside the tree."""
        super().put_file(in_path, out_path)
        with open(in_path, "rb") as source:
            proc = subprocess.run(
                self._argv(f"dd of={shlex.quote(out_path)} bs=65536 status=none"),
                stdin=source, capture_output=True, check=False,
            )  # fmt: skip
        if proc.returncode != 0:
            raise AnsibleError(f"copying {in_path} into the tree as {out_path} failed: "
                               f"{proc.stderr.decode(errors='replace')}")  # fmt: skip

    def fetch_file(self, in_path: str, out_path: str) -> None:
        """Copy ``in_path`` inside the tree to ``out_path`` of the host."""
        super().fetch_file(in_path, out_path)
        with open(out_path, "wb") as target:
            proc = subprocess.run(
                self._argv(f"dd if={shlex.quote(in_path)} bs=65536 status=none"),
                stdout=target, stderr=subprocess.PIPE, check=False,
            )  # fmt: skip
        if proc.returncode != 0:
            raise AnsibleError(f"copying {in_path} out of the tree failed: "
                               f"{proc.stderr.decode(errors='replace')}")  # fmt: skip

    def close(self) -> None:
        """Nothing stays open between commands."""
        self._connected = False
