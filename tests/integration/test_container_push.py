"""Pushing a built image to a registry: Debian's docker-registry, on loopback only."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from unkai.components import container_image_inputs
from unkai.drivers import docker as d
from unkai.drivers.images import RootfsSpec, build_rootfs
from unkai.environments import load_environment
from unkai.provider.resources.container_image import base_spec
from unkai.toolchain import cache_root

ROOT = Path(__file__).resolve().parents[2]


def _base_spec() -> RootfsSpec:
    """The Debian base the example images use (cached by the other image tests)."""
    env = load_environment("local", root=ROOT)
    base = container_image_inputs(env.container_images["api"], env).base
    assert base is not None
    return base_spec(base)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def registry(tmp_path: Path):
    port = _free_port()
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    with subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2).close()
                    break
                except OSError:
                    time.sleep(0.2)
            else:
                pytest.fail("docker-registry did not answer within 30 s")
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_a_built_image_is_pushed_and_the_registry_has_its_digest(registry):
    client = d.connect()
    try:
        d.ensure_base_image(client, build_rootfs(_base_spec(), cache_root()))
        name, tag = f"unkai-push-{uuid.uuid4().hex[:8]}", "t1"
        d.build_image(
            client,
            dockerfile=f"FROM {d.DEBIAN_BASE_REF}\nLABEL dev.unkai.test=push\nUSER 10001:10001\n",
            tag=f"{name}:{tag}",
        )
        plan = d.plan_push(name=name, tag=tag, registry=registry)
        assert plan is not None and plan.reference == f"{registry}/{name}:{tag}"
        pushed = d.push_image(client, plan)
        repo, digest = pushed.split("@")
        assert repo == f"{registry}/{name}" and digest.startswith("sha256:")

        with urllib.request.urlopen(f"http://{registry}/v2/_catalog", timeout=10) as reply:
            assert name in json.load(reply)["repositories"]
        request = urllib.request.Request(
            f"http://{registry}/v2/{name}/manifests/{tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.headers["Docker-Content-Digest"] == digest
    finally:
        for ref in (f"{name}:{tag}", f"{registry}/{name}:{tag}"):
            d.remove_image(client, ref)
        client.close()
