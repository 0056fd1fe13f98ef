"""unkai's management plane: custom resources reconciled by an operator (kopf).

What must act all the time, without anyone running ``unkai up`` — node pools that scale
with their pending pods, repair their broken nodes, and keep their size — is a custom
resource on a Kubernetes cluster (``NodePool``, :mod:`unkai.operator._crds`) and this
operator, which reconciles it. Pulumi owns each object's ``spec``, the operator its
``status``. The decisions are pure (:mod:`unkai.operator._pools`); one round reads the
cluster, decides, acts and records (:mod:`unkai.operator._reconcile`); the process holds
a Lease so two replicas never act at once (:mod:`unkai.operator._lease`,
:mod:`unkai.operator._main`).

Instance groups (``InstanceGroup``) are kept the same way: their decisions are pure
(:mod:`unkai.operator._groups`) and one round reads their members from their hosts
through libvirt, makes and removes them with :mod:`unkai.drivers.vms`, and records what it
did (:mod:`unkai.operator._members`).
"""

from __future__ import annotations

from unkai.operator._crds import (
    GROUP,
    INSTANCE_GROUPS,
    NODE_POOLS,
    VERSION,
    instance_group_crd,
    node_pool_crd,
)
from unkai.operator._lease import LEASE_NAME, LEASE_NAMESPACE, Holder, LeaderLease, may_take
from unkai.operator._pools import (
    Decision,
    Event,
    Memory,
    NodeView,
    PodView,
    PoolShape,
    PoolSpec,
    Resources,
    Taint,
    Toleration,
    decide,
)

__all__ = [
    "GROUP",
    "INSTANCE_GROUPS",
    "LEASE_NAME",
    "LEASE_NAMESPACE",
    "NODE_POOLS",
    "VERSION",
    "Decision",
    "Event",
    "Holder",
    "LeaderLease",
    "Memory",
    "NodeView",
    "PodView",
    "PoolShape",
    "PoolSpec",
    "Resources",
    "Taint",
    "Toleration",
    "decide",
    "instance_group_crd",
    "may_take",
    "node_pool_crd",
]
