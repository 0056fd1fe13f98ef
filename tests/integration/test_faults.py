"""Faults on the real daemons end in a sentence that names the object and the fault,
leave nothing half-made, and the next try succeeds once the fault is gone."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from unkai.drivers.libvirt import Session, session
from unkai.errors import DriverError

pytestmark = pytest.mark.integration

URI = "qemu:///system"


@pytest.fixture
def small_pool(tmp_path: Path) -> Iterator[tuple[Session, str, Path]]:
    """A storage pool on a 8 MiB tmpfs of its own; unmounted and undefined at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    name = f"unkai-test-full-{uuid.uuid4().hex[:6]}"
    try:
        with session(URI) as lv:
            lv.ensure_pool(name, str(mount / "pool"))
            try:
                yield lv, name, mount
            finally:
                lv.remove_pool(name, only_if_empty=False)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_pool_is_said_before_anything_is_made_and_room_lets_it_through(
    small_pool: tuple[Session, str, Path], tmp_path: Path
):
    lv, pool, mount = small_pool
    image = tmp_path / "disk.raw"
    image.write_bytes(os.urandom(16 * 2**20))
    with pytest.raises(DriverError) as caught:
        lv.upload_volume(pool, "img.raw", image, fmt="raw")
    said = str(caught.value)
    assert said.startswith(f"storage pool {pool} at {URI} is full: volume img.raw needs 16 MiB")
    assert "Traceback" not in said and "libvirtError" not in said
    assert lv.volume(pool, "img.raw") is None  # nothing half-written
    subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
    made = lv.upload_volume(pool, "img.raw", image, fmt="raw")
    assert Path(made.path).read_bytes() == image.read_bytes()
