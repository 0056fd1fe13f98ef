"""Fixtures the integration tests share, one per module (a test may restart dockerd): the
Docker engine and unkai's Debian base on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from unkai.components import container_image_inputs
from unkai.drivers import docker as d
from unkai.drivers.images import build_rootfs
from unkai.environments import load_environment
from unkai.provider.resources.container_image import base_spec
from unkai.toolchain import cache_root

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client():
    engine = d.connect()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def local():
    return load_environment("local", root=ROOT)


@pytest.fixture(scope="module")
def rootfs(local):
    args = container_image_inputs(local.container_images["api"], local)
    assert args.base is not None
    return build_rootfs(base_spec(args.base), cache_root())


@pytest.fixture(scope="module")
def base(client, rootfs):
    return d.ensure_base_image(client, rootfs)
