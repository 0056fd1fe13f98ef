"""The lightkube client unkai talks to a cluster with, and a session that closes it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
from lightkube import Client, KubeConfig
from lightkube.resources.core_v1 import Node

from unkai.errors import DriverError

FIELD_MANAGER = "unkai"
"""The field manager of every server-side apply and every write unkai makes."""

_WARM_LOCK = threading.Lock()
_warm = False


def _warm_decoders() -> None:
    """Build lightkube's msgspec decoders of every kind unkai uses, once, in one thread.

    msgspec builds a type's decoder on its first use and that step is not thread-safe:
    two provider handlers decoding a new kind at once (two Workloads created in
    parallel) crashed the provider process with a segfault in msgspec's ``_core``.
    """
    global _warm
    with _WARM_LOCK:
        if _warm:
            return
        from lightkube.core.decoders import decode_list, decode_object
        from lightkube.resources.apps_v1 import Deployment, ReplicaSet
        from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
        from lightkube.resources.core_v1 import Namespace, Pod, Secret, Service
        from lightkube.resources.policy_v1 import PodDisruptionBudget

        kinds = (
            Node, Pod, Namespace, Secret, Service, Deployment, ReplicaSet,
            HorizontalPodAutoscaler, PodDisruptionBudget,
        )  # fmt: skip
        for kind in kinds:
            for decode in (
                lambda k: decode_object(b'{"metadata": {}}', k),
                lambda k: decode_list(b'{"items": []}', k),
            ):
                # Only the decoder's construction matters, not whether this body fits.
                with contextlib.suppress(Exception):
                    decode(kind)
        _warm = True


def kube_client(kubeconfig: Path, *, timeout: float = 60.0) -> Client:
    """A lightkube client for the cluster of ``kubeconfig``; the caller closes it.

    The first call builds the decoders of every kind unkai uses (see ``_warm_decoders``).

    Raises:
        DriverError: the kubeconfig cannot be read.
    """
    _warm_decoders()
    try:
        # Parsing a kubeconfig converts it into lightkube's msgspec structs, whose first
        # use is not thread-safe either: four handlers reading at once (a refresh of a
        # cluster, its node pool and two workloads) crashed the provider with the same
        # segfault in msgspec's ``_core``. One parse at a time; it is a small file.
        with _WARM_LOCK:
            config = KubeConfig.from_file(kubeconfig)
    except Exception as err:  # lightkube raises its ConfigError or OSError
        raise DriverError(f"cannot read the kubeconfig {kubeconfig}: {err}") from err
    return Client(
        config=config, field_manager=FIELD_MANAGER, timeout=httpx2.Timeout(timeout), trust_env=False
    )


@contextmanager
def kube_session(kubeconfig: Path) -> Iterator[Client]:
    """A :func:`kube_client` for ``kubeconfig``, closed when the ``with`` block ends.

    Raises:
        DriverError: the kubeconfig cannot be read.
    """
    client = kube_client(kubeconfig)
    try:
        yield client
    finally:
        client.close()
