"""The ImageBuild resource against a cache folder: create, read, refresh after a loss, delete."""

from __future__ import annotations

from pathlib import Path

from unkai.drivers import images
from unkai.kinds import ImageBuildInputs, ImageBuildState
from unkai.provider.resources.image_build import ImageBuild, image_spec

INPUTS = ImageBuildInputs(name="debian-12", version="12.0.1", profile="lean")


def _fake_build(spec: images.ImageSpec, cache_root: Path, say) -> images.BuiltImage:
    """What a build leaves in the cache (the files cached_image looks for), at once."""
    folder = images.image_cache(spec.digest(), cache_root)
    folder.mkdir(parents=True, exist_ok=True)
    built = images._layout(spec.digest(), folder, seconds=41.5)
    for path in (built.disk, built.kernel, built.initrd, built.rootfs, folder / "manifest.json"):
        path.write_bytes(b"x" * 10)
    return built


def test_a_build_is_made_once_read_back_and_refreshed_when_the_cache_lost_it(tmp_path, monkeypatch):
    monkeypatch.setenv("UNKAI_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(images, "_build_image", _fake_build)
    resource = ImageBuild()

    resource_id, state = resource.create(INPUTS)
    assert resource_id == state.digest == image_spec(INPUTS).digest()
    assert (state.disk_bytes, state.build_seconds) == (10, 41.5)
    assert isinstance(state, ImageBuildState) and state.name == "debian-12"

    # Read back: the same state (its build time stays the build's).
    assert resource.read(resource_id, state) == state

    # A cache wiped by hand: the build reads as gone, and the next up makes it again.
    for path in images.image_cache(resource_id, tmp_path).iterdir():
        path.unlink()
    assert resource.read(resource_id, state) is None

    # Deleting keeps the cache, which every stack on the machine shares.
    _fake_build(image_spec(INPUTS), tmp_path, None)
    resource.delete(resource_id, state)
    assert images.cached_image(image_spec(INPUTS), tmp_path) is not None
