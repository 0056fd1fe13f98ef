"""A cache entry needed by several hosts at once is built once (found by the fleet e2e on a
cold cache: four VmImages of one digest raced, the later renames found the entry there)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from unkai.drivers import images
from unkai.drivers.images import ImageSpec, RootfsSpec


def _at_once(count: int, call) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def one(i: int) -> None:
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_four_builds_of_one_image_at_once_build_it_once(tmp_path: Path, monkeypatch):
    builds: list[str] = []

    def fake_build(spec: ImageSpec, cache_root: Path, say) -> images.BuiltImage:
        builds.append(spec.digest())
        time.sleep(0.2)  # long enough for the others to be waiting
        layout = images._layout(spec.digest(), images.image_cache(spec.digest(), cache_root))
        layout.folder.mkdir(parents=True)
        for file in (layout.disk, layout.kernel, layout.initrd, layout.rootfs):
            file.write_text("x")
        (layout.folder / "manifest.json").write_text("{}")
        return layout

    monkeypatch.setattr(images, "_build_image", fake_build)
    spec = ImageSpec(name="debian-12", version="1")
    results = _at_once(4, lambda: images.build_image(spec, tmp_path))
    assert builds == [spec.digest()]
    assert {r.folder for r in results} == {images.image_cache(spec.digest(), tmp_path)}


def test_four_builds_of_one_tree_at_once_build_it_once(tmp_path: Path, monkeypatch):
    builds: list[str] = []

    def fake_build(spec: RootfsSpec, cache_root: Path, say) -> images.BuiltRootfs:
        builds.append(spec.digest())
        time.sleep(0.2)
        layout = images.rootfs_layout(spec, cache_root)
        layout.folder.mkdir(parents=True)
        layout.rootfs.write_text("x")
        (layout.folder / "manifest.json").write_text("{}")
        return layout

    monkeypatch.setattr(images, "_build_rootfs", fake_build)
    spec = RootfsSpec(name="t", packages=(), slim=True)
    results = _at_once(4, lambda: images.build_rootfs(spec, tmp_path))
    assert builds == [spec.digest()]
    assert len({r.folder for r in results}) == 1
