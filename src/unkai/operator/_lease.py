"""One operator acts at a time: a ``coordination.k8s.io`` Lease, held and renewed.

The operator acts only while it holds the Lease ``unkai-operator`` in ``kube-system``.
A holder renews it every few seconds; a Lease not renewed for its duration has expired
and any replica may take it. Every write carries the ``resourceVersion`` it read, so of
two replicas racing for an expired Lease the API server lets exactly one win (the other
gets 409 Conflict and stays on standby). :func:`may_take` is the pure rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import httpx2
from lightkube import ApiError, Client
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

LEASE_NAME = "unkai-operator"
LEASE_NAMESPACE = "kube-system"


@dataclass(frozen=True)
class Holder:
    """Who holds a Lease, and until when it is theirs without a renewal."""

    identity: str | None
    renewed: dt.datetime | None
    duration: int

    def expired(self, now: dt.datetime) -> bool:
        """Whether the holder has let the Lease lapse (or there is none)."""
        if not self.identity or self.renewed is None:
            return True
        return now >= self.renewed + dt.timedelta(seconds=self.duration)


def may_take(holder: Holder, identity: str, now: dt.datetime) -> bool:
    """Whether ``identity`` may hold the Lease now: it holds it already, or it expired."""
    return holder.identity == identity or holder.expired(now)


def _holder(lease: Lease) -> Holder:
    spec = lease.spec or LeaseSpec()
    return Holder(
        identity=spec.holderIdentity,
        renewed=spec.renewTime or spec.acquireTime,
        duration=spec.leaseDurationSeconds or 0,
    )


class LeaderLease:
    """The operator's Lease, seen from one replica (``identity``).

    Args:
        client: A client of the cluster.
        identity: This replica's name (host and pid).
        duration: Seconds the Lease stays this replica's without a renewal.
    """

    def __init__(self, client: Client, *, identity: str, duration: int = 15) -> None:
        self.client = client
        self.identity = identity
        self.duration = duration

    def holder(self) -> Holder | None:
        """Who holds the Lease now (``None``: there is no Lease yet)."""
        try:
            return _holder(self.client.get(Lease, LEASE_NAME, namespace=LEASE_NAMESPACE))
        except ApiError as err:
            if err.status.code == 404:
                return None
            raise

    def acquire(self) -> bool:
        """Take or renew the Lease. ``False``: another replica holds it (or won the race).

        Raises:
            ApiError, httpx2.HTTPError: the API server failed otherwise.
        """
        now = dt.datetime.now(dt.UTC)
        try:
            lease = self.client.get(Lease, LEASE_NAME, namespace=LEASE_NAMESPACE)
        except ApiError as err:
            if err.status.code != 404:
                raise
            lease = None
        if lease is None:
            fresh = Lease(
                metadata=ObjectMeta(name=LEASE_NAME, namespace=LEASE_NAMESPACE),
                spec=LeaseSpec(
                    holderIdentity=self.identity,
                    leaseDurationSeconds=self.duration,
                    acquireTime=now,
                    renewTime=now,
                    leaseTransitions=0,
                ),
            )
            return self._write(lambda: self.client.create(fresh))
        holder = _holder(lease)
        if not may_take(holder, self.identity, now):
            return False
        spec = lease.spec or LeaseSpec()
        if holder.identity != self.identity:
            spec.acquireTime = now
            spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
        spec.holderIdentity = self.identity
        spec.leaseDurationSeconds = self.duration
        spec.renewTime = now
        lease.spec = spec
        # The read resourceVersion rides along: a concurrent writer makes this a 409.
        return self._write(lambda: self.client.replace(lease))

    def release(self) -> None:
        """Give the Lease up if this replica holds it, so a standby need not wait."""
        try:
            lease = self.client.get(Lease, LEASE_NAME, namespace=LEASE_NAMESPACE)
            if lease.spec is None or lease.spec.holderIdentity != self.identity:
                return
            lease.spec.holderIdentity = None
            lease.spec.renewTime = None
            self.client.replace(lease)
        except (ApiError, httpx2.HTTPError):
            pass  # it expires by itself within its duration

    @staticmethod
    def _write(write: Callable[[], object]) -> bool:
        try:
            write()
        except ApiError as err:
            if err.status.code == 409:
                return False
            raise
        return True
