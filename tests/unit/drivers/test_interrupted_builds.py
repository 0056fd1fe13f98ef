"""What a killed image or tree build left in the cache is removed by the next build."""

from __future__ import annotations

from pathlib import Path

from unkai.drivers import images
from unkai.drivers.images import RootfsSpec, clear_interrupted_builds

DIGEST = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4


def _leftover(folder: Path, digest: str, tag: str) -> Path:
    stale = folder / f".{digest[:12]}-{tag}"
    (stale / "image").mkdir(parents=True)
    (stale / "image" / "rootfs.tar").write_bytes(b"x" * 1024)
    return stale


def test_leftovers_of_the_digest_go_and_nothing_else(tmp_path: Path):
    mine = [_leftover(tmp_path, DIGEST, "a1"), _leftover(tmp_path, DIGEST, "b2")]
    other = _leftover(tmp_path, OTHER, "c3")  # another entry's: its build may be running
    entry = tmp_path / DIGEST
    entry.mkdir()
    cleared = clear_interrupted_builds(tmp_path, DIGEST, mounts=list)
    assert cleared == mine
    assert not any(p.exists() for p in mine)
    assert other.is_dir() and entry.is_dir()


def test_a_leftover_with_a_mount_inside_is_left_alone(tmp_path: Path):
    stale = _leftover(tmp_path, DIGEST, "a1")
    mounted = stale / "image" / "proc"
    cleared = clear_interrupted_builds(tmp_path, DIGEST, mounts=lambda: [Path("/"), mounted])
    assert cleared == []
    assert stale.is_dir()


def test_the_machine_s_mounts_are_read(tmp_path: Path):
    assert Path("/") in images._mount_points()


def test_a_tree_build_clears_a_killed_one_first_and_says_so(tmp_path: Path, monkeypatch):
    spec = RootfsSpec(name="container-base", packages=("ca-certificates",))
    folder = images.rootfs_layout(spec, tmp_path).folder.parent
    folder.mkdir(parents=True)
    stale = _leftover(folder, spec.digest(), "killed")

    def fake_mmdebstrap(argv, timeout):  # writes the tarball where it was asked to
        (tar,) = [arg for arg in argv if arg.endswith("rootfs.tar")]
        Path(tar).write_bytes(b"tar")
        return ""

    monkeypatch.setattr(images, "run", fake_mmdebstrap)
    said: list[str] = []
    built = images.build_rootfs(spec, tmp_path, say=said.append)
    assert not stale.exists()
    assert built.rootfs.read_bytes() == b"tar"
    assert any("interrupted build" in line and stale.name in line for line in said)
    assert [p.name for p in folder.iterdir()] == [built.folder.name]
