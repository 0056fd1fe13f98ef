"""``unkai:compute:InstanceGroupManager``: a managed instance group's object, kept by the operator.

Create and update apply the group's ``InstanceGroup`` object (its rendered manifest, with
each host's image volume) to the management cluster and wait until the operator reports
every member healthy and made from the current template, saying the rollout's progress.
A template with secrets has its values (Pulumi secrets) kept first as the Secret
``unkai-system/<name>``, which the object's ``secretName`` names, and the object carries
that Secret's ``resourceVersion`` (``secretVersion``): a new value is a new version, which
rolls the members as a template change does, and no plaintext or digest of a value is
ever in the object. ``read`` reports the
object's spec (what ``up`` owns) and its status (what the operator did), so members the
operator made again, rolled or scaled between the bounds are never a diff. Delete
removes the object (the operator removes the members first), then its Secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from unkai.drivers.kubernetes import (
    GroupStatus,
    apply_group_secret,
    apply_instance_group,
    delete_group_secret,
    delete_instance_group,
    read_instance_group,
    wait_instance_group,
)
from unkai.errors import ConfigError, DriverError
from unkai.kinds import InstanceGroupManagerInputs, InstanceGroupManagerState, input_values
from unkai.provider._log import say
from unkai.provider._resource import Resource

NO_WAIT = "UNKAI_NO_WAIT"
"""Set to ``1`` by ``unkai up --no-wait``: groups are applied, their members not waited for.
An environment variable, not an input: whether one ``up`` waits is no change to the group."""


def group_object(inputs: InstanceGroupManagerInputs) -> dict[str, Any]:
    """The object ``up`` applies: the rendered manifest and the hosts' image volumes."""
    obj: dict[str, Any] = yaml.safe_load(inputs.manifest)
    obj["spec"]["imageVolumes"] = dict(sorted(inputs.image_volumes.items()))
    return obj


class InstanceGroupManager(Resource[InstanceGroupManagerInputs, InstanceGroupManagerState]):
    """One managed instance group: its InstanceGroup object, whose members the operator keeps."""

    inputs_model = InstanceGroupManagerInputs
    state_model = InstanceGroupManagerState

    def validate(self, inputs: InstanceGroupManagerInputs, *, secrets: frozenset[str]) -> None:
        """The bounds hold the size, and every host of a slot has its image."""
        if not inputs.min_size <= inputs.size <= inputs.max_size:
            raise ConfigError(
                f"instance group {inputs.name}: need min_size ≤ size ≤ max_size, got"
                f" {inputs.min_size} ≤ {inputs.size} ≤ {inputs.max_size}",
                key_path="size",
                value=inputs.size,
                allowed=f"{inputs.min_size} to {inputs.max_size}",
            )
        hosts = {slot["host"] for slot in yaml.safe_load(inputs.manifest)["spec"]["slots"]}
        missing = sorted(hosts - set(inputs.image_volumes))
        if missing:
            raise ConfigError(
                f"instance group {inputs.name}: no image volume for host(s) {', '.join(missing)}",
                key_path="image_volumes",
            )

    @staticmethod
    def _state(inputs: InstanceGroupManagerInputs, found: GroupStatus) -> InstanceGroupManagerState:
        return InstanceGroupManagerState(
            **input_values(inputs),
            target=found.target,
            healthy=found.healthy,
            updated=found.updated,
            members=tuple(m.name for m in found.members),
        )

    def _apply(self, inputs: InstanceGroupManagerInputs) -> InstanceGroupManagerState:
        kubeconfig = Path(inputs.kubeconfig)
        obj = group_object(inputs)
        secret_name = obj["spec"].get("secretName")
        if secret_name:
            # First: a member made as soon as the object is there finds its secret env.
            obj["spec"]["secretVersion"] = apply_group_secret(
                kubeconfig=kubeconfig,
                name=secret_name,
                values=inputs.secret_env or {},
                labels=obj["metadata"].get("labels") or {},
            )
        found = apply_instance_group(kubeconfig=kubeconfig, obj=obj)
        if not secret_name:
            delete_group_secret(kubeconfig=kubeconfig, name=inputs.name)  # no secrets any more
        if os.environ.get(NO_WAIT) == "1":
            say(f"instance group {inputs.name}: applied; not waiting for its members (--no-wait)")
            return self._state(inputs, found)
        found = wait_instance_group(
            kubeconfig=kubeconfig, name=inputs.name, timeout=inputs.timeout, say=say
        )
        return self._state(inputs, found)

    def create(self, inputs: InstanceGroupManagerInputs) -> tuple[str, InstanceGroupManagerState]:
        """Apply the group's object and wait until its members are up."""
        return f"{inputs.cluster}/{inputs.name}", self._apply(inputs)

    def read(
        self, resource_id: str, state: InstanceGroupManagerState
    ) -> InstanceGroupManagerState | None:
        """The group as the management cluster has it; None when its object is gone.

        ``size`` and the bounds are the object's spec (an edit by hand shows as drift);
        ``target``, ``healthy``, ``updated`` and ``members`` its status. A cluster whose
        API server does not answer reports the recorded state.
        """
        kubeconfig = Path(state.kubeconfig)
        if not kubeconfig.is_file():
            return None
        try:
            found = read_instance_group(kubeconfig=kubeconfig, name=state.name)
        except DriverError:
            return state
        if found is None or found.deleting:
            return None
        spec = found.spec
        live = state.model_copy(
            update={
                "size": int(spec.get("size", state.size)),
                "min_size": int(spec.get("minSize", state.min_size)),
                "max_size": int(spec.get("maxSize", state.max_size)),
            }
        )
        return self._state(live, found)

    def update(
        self,
        resource_id: str,
        olds: InstanceGroupManagerState,
        news: InstanceGroupManagerInputs,
    ) -> InstanceGroupManagerState:
        """Apply the new object: a new template rolls the members, a new size scales them."""
        return self._apply(news)

    def delete(self, resource_id: str, state: InstanceGroupManagerState) -> None:
        """Delete the group's object; the operator removes its members first.

        A management cluster already gone (its kubeconfig deleted) leaves the members to
        ``destroy``'s sweep of the hosts.
        """
        kubeconfig = Path(state.kubeconfig)
        if not kubeconfig.is_file():
            return
        delete_instance_group(kubeconfig=kubeconfig, name=state.name, timeout=state.timeout)
        delete_group_secret(kubeconfig=kubeconfig, name=state.name)
