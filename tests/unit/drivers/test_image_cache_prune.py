"""The image cache keeps what is in use and forgets what is not.

Every edit of an image's packages or playbook is a new digest and a new entry of a
gigabyte or so; this machine's cache had passed 14 GB in a week before builds pruned it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from unkai._files import file_lock
from unkai.drivers import images
from unkai.drivers.images import CACHE_IDLE, ImageSpec

DAY = 24 * 3600.0
NOW = 1_900_000_000.0


def entry(cache: Path, digest: str, name: str, *, used: float, kind: str = "images") -> Path:
    folder = cache / kind / digest
    folder.mkdir(parents=True)
    (folder / "disk.qcow2").write_bytes(b"x" * 4096)
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"digest": digest, "spec": {"name": name}}))
    os.utime(manifest, (used, used))
    return folder


def test_only_idle_entries_beyond_the_newest_two_of_their_name_go(tmp_path: Path):
    entry(tmp_path, "a1", "app", used=NOW - 5 * DAY)
    entry(tmp_path, "a2", "app", used=NOW - 4 * DAY)
    entry(tmp_path, "a3", "app", used=NOW - 3 * DAY)  # the two newest stay, however old
    entry(tmp_path, "a4", "app", used=NOW - 2 * DAY)
    entry(tmp_path, "n1", "node", used=NOW - 9 * DAY)  # alone of its name: stays
    entry(tmp_path, "w1", "web", used=NOW - 3600)  # used within the day: stays
    entry(tmp_path, "w2", "web", used=NOW - 1800)
    entry(tmp_path, "w3", "web", used=NOW - 60)
    stale = images.stale_entries(images.cache_entries(tmp_path, "images"), now=NOW)
    assert [e.digest for e in stale] == ["a1", "a2"]


def test_a_build_removes_the_stale_entries_and_says_so(tmp_path: Path):
    old = [entry(tmp_path, f"r{i}", "kvm-host", used=NOW - (9 - i) * DAY, kind="rootfs")
           for i in range(4)]  # fmt: skip
    said: list[str] = []
    removed = images.prune_cache(tmp_path, "rootfs", now=NOW, say=said.append)
    assert [e.digest for e in removed] == ["r0", "r1"]
    assert [f.exists() for f in old] == [False, False, True, True]
    assert not list((tmp_path / "rootfs").glob(".*"))  # nothing left half removed
    assert said == ["removed 2 rootfs entries unused for 24 h from the cache (0 MiB): kvm-host"]


def test_an_entry_another_process_is_building_stays(tmp_path: Path):
    for i in range(3):
        entry(tmp_path, f"d{i}", "app", used=NOW - (5 - i) * DAY)
    with file_lock(images._build_lock(tmp_path, "images", "d0")):
        assert images.prune_cache(tmp_path, "images", now=NOW) == []
    assert [e.digest for e in images.prune_cache(tmp_path, "images", now=NOW)] == ["d0"]


def test_a_build_in_progress_or_a_half_entry_is_not_an_entry(tmp_path: Path):
    entry(tmp_path, "whole", "app", used=NOW)
    (tmp_path / "images" / ".whole-1234").mkdir()  # a build's work folder
    (tmp_path / "images" / "nomanifest").mkdir()
    assert [e.digest for e in images.cache_entries(tmp_path, "images")] == ["whole"]


def test_a_cache_hit_marks_the_entry_used(tmp_path: Path):
    spec = ImageSpec(name="debian-12", version="1")
    layout = images._layout(spec.digest(), images.image_cache(spec.digest(), tmp_path))
    entry(tmp_path, spec.digest(), spec.name, used=NOW - 3 * DAY)
    for file in (layout.kernel, layout.initrd, layout.rootfs):
        file.write_text("x")
    assert images.cached_image(spec, tmp_path) is not None
    (seen,) = images.cache_entries(tmp_path, "images")
    assert time.time() - seen.used < CACHE_IDLE / 24


def test_each_build_prunes_its_kind(tmp_path: Path, monkeypatch):
    def fake_build(spec: ImageSpec, cache_root: Path, say) -> images.BuiltImage:
        folder = entry(cache_root, spec.digest(), spec.name, used=time.time())
        return images._layout(spec.digest(), folder, 1.0)

    monkeypatch.setattr(images, "_build_image", fake_build)
    long_ago = time.time() - 3 * DAY
    for i in range(2):
        entry(tmp_path, f"old{i}", "debian-12", used=long_ago + i)
    said: list[str] = []
    images.build_image(ImageSpec(name="debian-12", version="2"), tmp_path, say=said.append)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == sorted(
        ["old1", ImageSpec(name="debian-12", version="2").digest()]
    )
    assert said and said[-1].startswith("removed 1 images entry unused for 24 h")
