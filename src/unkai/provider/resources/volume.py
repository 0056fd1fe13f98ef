"""``unkai:compute:Volume``: a data volume that outlives the instances it is attached to.

Instances attach volumes (their domain XML names the volume's path) but never create or
delete them, so replacing a VM keeps its data. A volume follows its instance: when the
instance moves to another host, the volume's ``host`` changes in the same ``up``; this
resource makes sure the volume is there (empty until the instance's live migration copies
its blocks into it) and leaves the source's copy to the migration, which removes it once
the guest runs on the destination.
"""

from __future__ import annotations

from unkai.drivers import libvirt
from unkai.kinds import VolumeInputs, VolumeState, input_values
from unkai.provider._log import say, warn
from unkai.provider._resource import Resource

_GIB = 1024**3


class Volume(Resource[VolumeInputs, VolumeState]):
    """A data volume (see :class:`unkai.kinds.VolumeInputs`)."""

    inputs_model = VolumeInputs
    state_model = VolumeState

    def create(self, inputs: VolumeInputs) -> tuple[str, VolumeState]:
        """Create the empty qcow2 volume (one already there, of that name, is kept)."""
        with libvirt.session(inputs.libvirt_uri) as conn:
            made = conn.create_overlay(
                inputs.pool, inputs.name, backing=None, size_gb=inputs.size_gb
            )
        state = VolumeState(**input_values(inputs), path=made.path, capacity_bytes=made.capacity)
        return f"{inputs.host}/{inputs.pool}/{inputs.name}", state

    def read(self, resource_id: str, state: VolumeState) -> VolumeState | None:
        """The volume as the pool has it; None when it is gone.

        A volume smaller than wanted reads as its real size, so ``up`` grows it again.
        """
        if libvirt.unreachable(state.libvirt_uri):
            warn(f"{state.host} is unreachable; volume {state.name} is not checked")
            return state
        with libvirt.session(state.libvirt_uri) as conn:
            found = conn.volume(state.pool, state.name)
        if found is None:
            return None
        return state.model_copy(
            update={
                "path": found.path,
                "capacity_bytes": found.capacity,
                "size_gb": min(state.size_gb, max(1, found.capacity // _GIB)),
            }
        )

    def update(self, resource_id: str, olds: VolumeState, news: VolumeInputs) -> VolumeState:
        """Grow it, or (its instance moving) make sure it is on the new host."""
        with libvirt.session(news.libvirt_uri) as conn:
            if olds.libvirt_uri != news.libvirt_uri:
                say(f"{news.name} follows its instance to {news.host}")
                made = conn.create_overlay(news.pool, news.name, backing=None, size_gb=news.size_gb)
            else:
                made = conn.grow_volume(news.pool, news.name, size_gb=news.size_gb)
        return VolumeState(**input_values(news), path=made.path, capacity_bytes=made.capacity)

    def delete(self, resource_id: str, state: VolumeState) -> None:
        """Delete the volume (only when it leaves the program or the stack is destroyed)."""
        if libvirt.unreachable(state.libvirt_uri):
            warn(f"{state.host} is unreachable; volume {state.name} stays there")
            return
        with libvirt.session(state.libvirt_uri) as conn:
            conn.delete_volume(state.pool, state.name)
