"""The SSH client configuration: every ssh host, the project's key and known hosts."""

from __future__ import annotations

from pathlib import Path

from unkai.environments import load_environment
from unkai.render import render_ssh_config

ROOT = Path(__file__).resolve().parents[3]


def _config(env_name: str) -> str:
    return render_ssh_config(
        load_environment(env_name, root=ROOT),
        identity_file="/p/.unkai/ssh/id_ed25519",
        known_hosts="/p/.unkai/ssh/known_hosts",
        control_dir="/tmp",
    )


def test_each_ssh_host_has_its_address_and_user_and_keys_are_checked():
    text = _config("dev")
    assert "Host 10.1.0.11 kvm-dev-1\n    HostName 10.1.0.11\n    User unkai\n" in text
    assert "Host 10.1.0.12 kvm-dev-2\n" in text
    assert "IdentityFile /p/.unkai/ssh/id_ed25519\n" in text
    assert "UserKnownHostsFile /p/.unkai/ssh/known_hosts\n" in text
    assert "StrictHostKeyChecking yes\n" in text
    assert "ControlPath /tmp/unkai-%C\n" in text


def test_local_hosts_are_not_listed_and_rendering_is_deterministic():
    text = _config("local")
    assert "localhost" not in text and "127.0.0.1" not in text
    assert text == _config("local")
