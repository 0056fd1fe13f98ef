"""``unkai:compute:VmImage``: a bootable Debian image in a host's storage pool.

The image is built from Debian packages into the content-addressed cache (never
rebuilt for an unchanged definition), then its qcow2 disk is uploaded into the
``unkai`` pool as ``<name>-<digest12>.qcow2`` and its kernel and initrd into a small
pool of their own at the folder the rendered domain XML boots from.

A custom image bakes a playbook in: ``playbook`` is its absolute path on the machine
running the engine, ``playbook_digest`` the digest of its content
(:func:`unkai.render.playbook_digest`, computed by the component). The digest, not the
path, is what the image is: editing the playbook (or a file of its roles, files or
templates) replaces the image; moving the checkout changes nothing.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from unkai.drivers import images, libvirt
from unkai.errors import ConfigError
from unkai.provider._resource import Resource
from unkai.provider._values import UNKNOWN, Props
from unkai.toolchain import cache_root

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT = "the image's content changes: a new image is built and uploaded beside the old one"


def _spec(props: Props) -> images.ImageSpec:
    return images.ImageSpec(
        name=props.get("name"),
        version=props.get("version"),
        suite=props.get("suite") or "bookworm",
        packages=tuple(props.get("packages") or ()),
        disk_gb=int(props.get("disk_gb") or 4),
        mirror=props.get("mirror") or images.DEBIAN_MIRROR,
        playbook=props.get("playbook") or None,
        playbook_digest=props.get("playbook_digest") or None,
    )


def boot_pool_name(name: str, version: str) -> str:
    """The storage pool that holds the kernel and initrd of one image version."""
    return f"unkai-boot-{name}-{version}"


class VmImage(Resource):
    """A Debian image built from packages and uploaded into a host's pool."""

    token = "unkai:compute:VmImage"
    inputs = (
        "name",
        "version",
        "suite",
        "packages",
        "disk_gb",
        "mirror",
        "libvirt_uri",
        "pool",
        "boot_dir",
        "playbook",
        "playbook_digest",
    )
    replace_on: ClassVar = {
        "name": _CONTENT,
        "version": _CONTENT,
        "suite": _CONTENT,
        "packages": _CONTENT,
        "disk_gb": _CONTENT,
        "mirror": _CONTENT,
        "libvirt_uri": "the image moves to another host",
        "pool": "the image moves to another storage pool",
        "boot_dir": "the kernel and initrd move to another folder",
        "playbook_digest": "the playbook baked in changed: " + _CONTENT,
    }

    def check(self, news: Props) -> dict[str, Any]:
        """Name and version present, disk size sane, packages a list of names."""
        values = dict(news.values)
        for key in ("name", "version", "libvirt_uri", "pool", "boot_dir"):
            if values.get(key) in (None, ""):
                raise ConfigError("is required", key_path=key)
        disk = values.get("disk_gb", 4)
        if disk is not UNKNOWN and not (isinstance(disk, int | float) and 2 <= disk <= 2048):
            raise ConfigError("must be a size in GiB", key_path="disk_gb", value=disk,
                              allowed="2 .. 2048")  # fmt: skip
        packages = values.get("packages") or []
        if packages is not UNKNOWN and not all(isinstance(p, str) and p for p in packages):
            raise ConfigError("must be Debian package names", key_path="packages")
        playbook, digest = values.get("playbook"), values.get("playbook_digest")
        if UNKNOWN not in (playbook, digest):
            if bool(playbook) != bool(digest):
                raise ConfigError("a baked image needs both the playbook and its digest",
                                  key_path="playbook_digest" if playbook else "playbook",
                                  value=playbook or digest)  # fmt: skip
            if playbook and not str(playbook).startswith("/"):
                raise ConfigError("must be an absolute path on the machine running the engine",
                                  key_path="playbook", value=playbook)  # fmt: skip
            if digest and not _SHA256.fullmatch(str(digest)):
                raise ConfigError("must be a sha256 in hex", key_path="playbook_digest",
                                  value=digest, allowed="64 hex digits")  # fmt: skip
        values.setdefault("suite", "bookworm")
        values.setdefault("mirror", images.DEBIAN_MIRROR)
        values["packages"] = sorted(set(packages)) if packages is not UNKNOWN else packages
        return values

    def create(self, inputs: Props) -> tuple[str, dict[str, Any]]:
        """Build (or take from the cache) and upload the image."""
        spec = _spec(inputs)
        built = images.build_image(spec, cache_root())
        uri, pool = inputs.get("libvirt_uri"), inputs.get("pool")
        disk = libvirt.upload_volume(
            uri, pool, f"{spec.name}-{built.digest[:12]}.qcow2", built.disk, fmt="qcow2"
        )
        boot_pool = boot_pool_name(spec.name, spec.version)
        libvirt.ensure_pool(uri, boot_pool, inputs.get("boot_dir"))
        # The version's boot files are replaced whole: they must match the disk just made.
        for volume_name, source in (("vmlinuz", built.kernel), ("initrd.img", built.initrd)):
            libvirt.delete_volume(uri, boot_pool, volume_name)
            libvirt.upload_volume(uri, boot_pool, volume_name, source, fmt="raw")
        outputs = {
            **inputs.values,
            "digest": built.digest,
            "volume": disk.name,
            "volume_path": disk.path,
            "size_bytes": disk.capacity,
            "build_seconds": built.build_seconds,
        }
        return disk.path, outputs

    def update(self, resource_id: str, olds: Props, news: Props) -> dict[str, Any]:
        """Only the playbook's path changed (every other input replaces): record it.

        The content is the same (its digest did not change), so the image is too.
        """
        return {**olds.values, "playbook": news.get("playbook")}

    def read(self, resource_id: str, state: Props) -> dict[str, Any] | None:
        """The disk volume as the pool has it; None when it was deleted."""
        found = libvirt.volume(state.get("libvirt_uri"), state.get("pool"), state.get("volume"))
        if found is None:
            return None
        return {**state.values, "volume_path": found.path, "size_bytes": found.capacity}

    def delete(self, resource_id: str, state: Props) -> None:
        """Delete the disk volume and the boot files (the build cache is kept)."""
        uri = state.get("libvirt_uri")
        libvirt.delete_volume(uri, state.get("pool"), state.get("volume"))
        boot_pool = boot_pool_name(state.get("name"), state.get("version"))
        for name in ("vmlinuz", "initrd.img"):
            libvirt.delete_volume(uri, boot_pool, name)
        libvirt.delete_pool(uri, boot_pool)
