"""``unkai:compute:VmImage``: a bootable Debian image in a host's storage pool.

The image is built from Debian packages into the content-addressed cache by its
``unkai:compute:ImageBuild`` (never rebuilt for an unchanged definition), then its
qcow2 disk is uploaded into the
``unkai`` pool as ``<environment>-<name>-<digest12>.qcow2`` and its kernel and initrd
into a small pool of their own at the folder the rendered domain XML boots from. Both
carry the environment: two environments on one host never share an image, so destroying
one never takes the other's backing files.
"""

from __future__ import annotations

from unkai.drivers import libvirt
from unkai.kinds import VmImageInputs, VmImageState
from unkai.provider._log import say, warn
from unkai.provider._resource import Resource
from unkai.provider.resources.image_build import build, image_spec
from unkai.render import boot_pool_name

_BOOT_FILES = ("vmlinuz", "initrd.img")


class VmImage(Resource[VmImageInputs, VmImageState]):
    """A Debian image built from packages and uploaded into a host's pool."""

    inputs_model = VmImageInputs
    state_model = VmImageState

    def create(self, inputs: VmImageInputs) -> tuple[str, VmImageState]:
        """Upload the image its ImageBuild made (built here if the cache lost it meanwhile)."""
        spec = image_spec(inputs)
        built = build(inputs)
        boot_pool = boot_pool_name(inputs.environment, spec.name, spec.version)
        volume = f"{inputs.environment}-{spec.name}-{built.digest[:12]}.qcow2"
        with libvirt.session(inputs.libvirt_uri) as conn:
            say(f"uploading {volume} to {inputs.libvirt_uri}")
            disk = conn.upload_volume(inputs.pool, volume, built.disk, fmt="qcow2")
            conn.ensure_pool(boot_pool, inputs.boot_dir)
            # The version's boot files are replaced whole: they must match the disk just made.
            for volume_name, source in zip(_BOOT_FILES, (built.kernel, built.initrd), strict=True):
                conn.delete_volume(boot_pool, volume_name)
                conn.upload_volume(boot_pool, volume_name, source, fmt="raw")
        state = VmImageState(
            **dict(inputs),
            digest=built.digest,
            volume=disk.name,
            volume_path=disk.path,
            size_bytes=disk.capacity,
            build_seconds=built.build_seconds,
        )
        return disk.path, state

    def update(self, resource_id: str, olds: VmImageState, news: VmImageInputs) -> VmImageState:
        """Only the playbook's path changed (every other input replaces): record it.

        The content is the same (its digest did not change), so the image is too.
        """
        return olds.model_copy(update={"playbook": news.playbook})

    def read(self, resource_id: str, state: VmImageState) -> VmImageState | None:
        """The image as the host has it: None when its disk or boot files are gone.

        The disk volume's name holds the image's content digest, so a volume of that name
        is this image; one deleted by hand (or its kernel or initrd) reads as gone, and
        the next ``up`` uploads it again. (Its size is not compared: libvirt reports a
        qcow2 volume's virtual size once the pool is refreshed, not the bytes uploaded.)
        """
        boot_pool = boot_pool_name(state.environment, state.name, state.version)
        if libvirt.unreachable(state.libvirt_uri):
            warn(f"{state.libvirt_uri} is unreachable; image {state.volume} is not checked")
            return state
        with libvirt.session(state.libvirt_uri) as conn:
            found = conn.volume(state.pool, state.volume or "")
            boot = [conn.volume(boot_pool, name) for name in _BOOT_FILES]
        if found is None or None in boot:
            return None
        return state.model_copy(update={"volume_path": found.path})

    def delete(self, resource_id: str, state: VmImageState) -> None:
        """Delete the disk volume and the boot files (the build cache is kept)."""
        boot_pool = boot_pool_name(state.environment, state.name, state.version)
        if libvirt.unreachable(state.libvirt_uri):
            warn(f"{state.libvirt_uri} is unreachable; image {state.volume} stays there")
            return
        with libvirt.session(state.libvirt_uri) as conn:
            if state.volume:
                conn.delete_volume(state.pool, state.volume)
            for name in _BOOT_FILES:
                conn.delete_volume(boot_pool, name)
            conn.remove_pool(boot_pool)
