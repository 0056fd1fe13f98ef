"""The one exception tree of unkai.

Every error a user can meet derives from :class:`UnkaiError` and carries the context
needed to act on it: the file and key path of bad configuration, the host and the
shortfall of a placement, the command and output of a failed tool. Errors raised while
handling another exception are always chained with ``raise ... from err``.
"""

from __future__ import annotations

from collections.abc import Sequence


class UnkaiError(Exception):
    """Base class of every error unkai raises on purpose."""


class ConfigError(UnkaiError):
    """Invalid configuration: names the file, the key path, the value and what is allowed.

    Args:
        message: What is wrong, in a sentence.
        file: The file the value came from, if any.
        key_path: Dotted path of the key inside that file (``instance_groups.web.size``).
        value: The offending value, if it helps (never a secret).
        allowed: What would have been accepted.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key_path: str | None = None,
        value: object = None,
        allowed: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.key_path = key_path
        self.value = value
        self.allowed = allowed
        super().__init__(self._format())

    def _where(self) -> str:
        """Where the problem is: ``file:key.path``."""
        return ":".join(p for p in (self.file, self.key_path) if p)

    def _shown(self, value: object) -> str:
        """How the bad value appears in the message."""
        return repr(value)

    def _format(self) -> str:
        where = self._where()
        text = f"{where}: {self.message}" if where else self.message
        if self.value is not None:
            text += f" (got {self._shown(self.value)})"
        if self.allowed:
            text += f"; allowed: {self.allowed}"
        return text


class PlacementError(UnkaiError):
    """Instances that fit on no host: which ones, which resource, and by how much."""


class RenderError(UnkaiError):
    """A template could not be rendered: names the template and the missing or bad value."""


class DriverError(UnkaiError):
    """A side effect on the real world failed (libvirt, Docker, Ansible, Kubernetes)."""


class CommandFailed(DriverError):
    """An external command exited non-zero.

    Args:
        argv: The command that ran.
        returncode: Its exit status.
        output: The tail of what it printed, for the user to read.
    """

    def __init__(self, argv: Sequence[str], returncode: int, output: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-20:])
        msg = f"`{' '.join(self.argv)}` exited with status {returncode}"
        super().__init__(f"{msg}\n{tail}" if tail else msg)


class PlaybookFailed(DriverError):
    """An Ansible playbook run did not end "successful".

    Args:
        status: ansible-runner's status (``failed``, ``timeout``, ``canceled``, ...).
        rc: The exit status of ``ansible-playbook``.
        failed_tasks: ``(host, task, message)`` of every task that failed or found its
            host unreachable, in the order they failed (messages are Ansible's, which
            hides the output of ``no_log`` tasks).
        playbook: The playbook that ran.
        output: The end of Ansible's output, shown when no task failed (a playbook that
            does not parse, a run stopped by its timeout).
    """

    def __init__(
        self,
        status: str,
        rc: int,
        failed_tasks: Sequence[tuple[str, str, str]] = (),
        *,
        playbook: str = "",
        output: str = "",
    ) -> None:
        self.status = status
        self.rc = rc
        self.failed_tasks = list(failed_tasks)
        self.playbook = playbook
        self.output = output
        what = f"playbook {playbook}" if playbook else "playbook"
        lines = [f"{what} ended {status} (exit status {rc})"]
        lines += [f"  {host}: {task}: {message}" for host, task, message in self.failed_tasks]
        if not self.failed_tasks and output.strip():
            lines += output.strip().splitlines()[-15:]
        super().__init__("\n".join(lines))


class ToolchainError(UnkaiError):
    """A component of the toolchain (pulumi, docker, libvirtd, ...) is missing or broken."""


class Interrupted(UnkaiError):
    """The user stopped a run (Ctrl-C): says what was left and how the next run ends it."""
