"""``kube_session``: one client per ``with`` block, closed however the block ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from unkai.drivers.kubernetes import _client, kube_session
from unkai.errors import DriverError

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def test_session_closes_its_client_also_on_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    closed: list[bool] = []
    monkeypatch.setattr(_client.Client, "close", lambda self: closed.append(True))
    with kube_session(config) as client:
        assert client.config.namespace == "default"
    with pytest.raises(RuntimeError), kube_session(config):
        raise RuntimeError("handler failed")
    assert closed == [True, True]


def test_unreadable_kubeconfig_is_a_driver_error(tmp_path: Path) -> None:
    with (
        pytest.raises(DriverError, match="cannot read the kubeconfig"),
        kube_session(tmp_path / "missing"),
    ):
        pass


def test_kubeconfigs_are_parsed_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lightkube parses a kubeconfig into msgspec structs, whose first use is not
    thread-safe (a refresh's parallel handlers crashed the provider): parsing holds the
    lock the decoders are built under."""
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    parse = _client.KubeConfig.from_file
    held: list[bool] = []

    def watched(path: Path) -> object:
        held.append(_client._WARM_LOCK.locked())
        return parse(path)

    monkeypatch.setattr(_client.KubeConfig, "from_file", watched)
    with kube_session(config) as client:
        assert client.config.namespace == "default"
    assert held == [True]
