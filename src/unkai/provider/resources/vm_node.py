"""``unkai:kubernetes:VmNode``: a VM of a ``vm`` node pool, joined to its cluster.

The VM is an ``unkai:compute:Instance`` of its own (booted from a node image); this
resource is its membership of the cluster: ``create`` joins it with kubeadm through
``playbooks/k8s-node.yml`` over SSH and waits until the node is Ready, ``read`` reports
the node as the cluster has it (a node gone, or a VM made anew, joins again), ``update``
patches labels and taints, and ``delete`` removes the Node object before its VM goes.
"""

from __future__ import annotations

import time
from pathlib import Path

from unkai.drivers.kubernetes import node_metadata_patch
from unkai.drivers.kubernetes._join import (
    JoinedNode,
    JoinRequest,
    ca_cert_hash,
    cluster_ca,
    delete_node,
    ensure_sandbox_image,
    join_vm,
    patch_node,
    read_node,
)
from unkai.drivers.kubernetes._nodes import POOL_LABEL
from unkai.errors import DriverError
from unkai.kinds import VmNodeInputs, VmNodeState, input_values
from unkai.provider._log import say
from unkai.provider._resource import Resource
from unkai.render import sandbox_image
from unkai.toolchain import ensure_pause


def _taints(inputs: VmNodeInputs) -> list[dict[str, str]]:
    return [
        {"key": t.key, "effect": t.effect, **({"value": t.value} if t.value else {})}
        for t in inputs.taints
    ]


class VmNode(Resource[VmNodeInputs, VmNodeState]):
    """A VM joined to its cluster as a node (see :class:`unkai.kinds.VmNodeInputs`)."""

    inputs_model = VmNodeInputs
    state_model = VmNodeState

    @staticmethod
    def _state(inputs: VmNodeInputs, node: JoinedNode, seconds: float | None) -> VmNodeState:
        return VmNodeState(
            **input_values(inputs),
            ready=node.ready,
            kubelet_version=node.kubelet_version,
            container_runtime=node.container_runtime,
            join_seconds=seconds,
        )

    def create(self, inputs: VmNodeInputs) -> tuple[str, VmNodeState]:
        """Join the VM (the sandbox image pushed first) and wait until its node is Ready."""
        start = time.monotonic()
        kubeconfig = Path(inputs.kubeconfig)
        pause = ensure_pause(say=say)
        ensure_sandbox_image(reference=sandbox_image(), binary=pause.binary, say=say)
        ca = cluster_ca(kubeconfig)
        request = JoinRequest(
            name=inputs.name,
            pool=inputs.pool,
            ssh_host=inputs.ssh_host,
            ssh_port=inputs.ssh_port,
            endpoint=inputs.endpoint,
            ca_hash=ca_cert_hash(ca),
            labels=dict(inputs.labels),
            taints=_taints(inputs),
        )
        say(f"{inputs.name}: joining {inputs.cluster} through {inputs.endpoint}")
        node = join_vm(
            request,
            kubeconfig=kubeconfig,
            version=inputs.version,
            ca_pem=ca,
            host_keys=inputs.ssh_host_keys,
            timeout=inputs.timeout,
            say=say,
        )
        seconds = round(time.monotonic() - start, 1)
        say(f"{inputs.name}: Ready in {seconds} s ({node.container_runtime})")
        return f"{inputs.cluster}/{inputs.name}", self._state(inputs, node, seconds)

    def read(self, resource_id: str, state: VmNodeState) -> VmNodeState | None:
        """The node as the cluster has it; None when it is gone (it joins again).

        A cluster whose API server does not answer reports the recorded state.
        """
        kubeconfig = Path(state.kubeconfig)
        if not kubeconfig.is_file():
            return None
        try:
            node = read_node(kubeconfig=kubeconfig, name=state.name)
        except DriverError:
            return state
        if node is None:
            return None
        return self._state(state, node, state.join_seconds)

    def update(self, resource_id: str, olds: VmNodeState, news: VmNodeInputs) -> VmNodeState:
        """Patch the node's labels and taints; anything else needs no action here.

        What replaces the node (another VM, pool or cluster) never reaches an update.
        """
        kubeconfig = Path(news.kubeconfig)
        patch = node_metadata_patch(
            labels={**news.labels, POOL_LABEL: news.pool},
            taints=_taints(news),
            dropped_labels=sorted(set(olds.labels) - set(news.labels) - {POOL_LABEL}),
        )
        patch_node(kubeconfig=kubeconfig, name=news.name, patch=patch)
        node = read_node(kubeconfig=kubeconfig, name=news.name)
        if node is None:
            raise DriverError(f"node {news.name} is gone from {news.cluster}")
        return self._state(news, node, olds.join_seconds)

    def delete(self, resource_id: str, state: VmNodeState) -> None:
        """Delete the Node object; its VM is deleted by its Instance, after this."""
        kubeconfig = Path(state.kubeconfig)
        if kubeconfig.is_file() and delete_node(
            kubeconfig=kubeconfig, name=state.name, vm_uuid=state.vm_uuid
        ):
            say(f"{state.name}: removed from {state.cluster}")
