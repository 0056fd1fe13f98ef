"""Runs one ansible-runner job in a process of its own.

Started by :func:`unkai.drivers.ansible.run_playbook` with the job as JSON on stdin.
It prints each Ansible event as one JSON line and, last, ``{"result": ...}``.

ansible-runner runs ``ansible-playbook`` through pexpect, which forks a Python child. In a
process with gRPC threads, such as the provider plugin, that child now and then dies
by a signal before ``ansible-playbook`` starts. This process has no such threads, and
the provider starts it with a plain fork and exec.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import ansible_runner


def _read_stdout(runner: Any) -> str:
    try:
        return str(runner.stdout.read())
    except (OSError, AttributeError, ValueError):
        return ""


def main() -> int:
    """Run the job read from stdin; events and the result go to stdout as JSON lines."""
    job = json.load(sys.stdin)
    events = 0

    def handle(event: dict[str, Any]) -> bool:
        nonlocal events
        events += 1
        sys.stdout.write(json.dumps({"event": event}, default=str) + "\n")
        sys.stdout.flush()
        return True

    with tempfile.TemporaryDirectory(prefix="unkai-ansible-") as tmp:
        # The inventory folder: the hosts file and each host's host_vars file, as given.
        inventory = Path(tmp) / "inventory"
        for relative, text in job.pop("inventory_files").items():
            (inventory / relative).parent.mkdir(parents=True, exist_ok=True)
            (inventory / relative).write_text(text, encoding="utf-8")
        try:
            runner = ansible_runner.run(
                private_data_dir=tmp,
                event_handler=handle,
                quiet=True,
                suppress_env_files=True,
                inventory=str(inventory),
                **job,
            )
        except Exception as err:
            result = {"status": "error", "rc": None, "stats": None, "raw": str(err)}
        else:
            raw = "" if events or runner.status == "successful" else _read_stdout(runner)
            result = {"status": runner.status, "rc": runner.rc, "stats": runner.stats, "raw": raw}
    sys.stdout.write(json.dumps({"result": result}, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
