"""What a cluster holds so that a VM can ``kubeadm join`` it, and the token it joins with.

unkai's control plane is not made by ``kubeadm init``, so what ``init`` would have left
for joining nodes is put there by :func:`join_objects` (server-side apply, idempotent):

- ``kube-public/cluster-info``: the API endpoint the nodes use and the cluster's CA, which
  the controller manager's ``bootstrapsigner`` signs with every signing bootstrap token;
  ``kubeadm join`` trusts it when the signature and the CA's hash it was given match;
- ``kube-system/kubeadm-config`` (the ClusterConfiguration) and ``kube-system/kubelet-config``
  (the KubeletConfiguration every node runs with);
- the RBAC ``kubeadm init`` makes: what a bootstrap token may read and request, the
  automatic approval of a node's client certificates, and kube-proxy's rights for nodes
  (kube-proxy runs with its node's credentials, not as a DaemonSet);
- a bootstrap token (:func:`token_secret`): the only secret a joining node is given.

Everything here is pure but :func:`apply_join_objects`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from unkai.drivers.kubernetes._pki import SERVICE_CIDR
from unkai.drivers.kubernetes._workloads import apply_objects

BOOTSTRAP_GROUP = "system:bootstrappers:kubeadm:default-node-token"
"""The group a node's bootstrap token authenticates as (kubeadm's default)."""

NODE_POD_CIDR = "10.244.0.0/16"
"""Pod addresses of real nodes: a ``/24`` each (kwok's simulated pods use their own)."""

CLUSTER_DOMAIN = "cluster.local"

TOKEN_TTL = timedelta(hours=1)
"""How long a bootstrap token lets a node join; the token cleaner deletes it after."""

_TOKEN_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class BootstrapToken:
    """A kubeadm bootstrap token, ``<id>.<secret>`` (6 and 16 of ``[a-z0-9]``)."""

    id: str
    secret: str

    def __str__(self) -> str:
        return f"{self.id}.{self.secret}"

    @classmethod
    def generate(cls) -> BootstrapToken:
        """A new random token."""

        def pick(n: int) -> str:
            return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(n))

        return cls(pick(6), pick(16))


def ca_cert_hash(ca_pem: bytes) -> str:
    """``sha256:<hex>`` of the CA's public key, as ``kubeadm join`` pins it."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def token_secret(
    token: BootstrapToken, *, now: datetime, ttl: timedelta = TOKEN_TTL, node: str = ""
) -> dict[str, Any]:
    """The Secret that makes ``token`` a bootstrap token, expiring ``ttl`` after ``now``."""
    expiration = (now.astimezone(UTC) + ttl).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"bootstrap-token-{token.id}", "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "stringData": {
            "description": f"unkai: the join of {node}" if node else "unkai: a node's join",
            "token-id": token.id,
            "token-secret": token.secret,
            "expiration": expiration,
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "auth-extra-groups": BOOTSTRAP_GROUP,
        },
    }


def cluster_info_kubeconfig(*, endpoint: str, ca_pem: bytes) -> str:
    """The kubeconfig of ``cluster-info``: the endpoint and the CA, no user."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "",
                "cluster": {
                    "server": endpoint,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "contexts": [],
        "current-context": "",
        "preferences": {},
        "users": [],
    }
    return yaml.safe_dump(config, sort_keys=True)


def cluster_configuration(*, version: str, endpoint_host_port: str) -> str:
    """The ClusterConfiguration (kubeadm's) of a cluster unkai runs (what ``join`` reads)."""
    config = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "clusterName": "kubernetes",
        "kubernetesVersion": f"v{version}",
        "controlPlaneEndpoint": endpoint_host_port,
        "networking": {
            "dnsDomain": CLUSTER_DOMAIN,
            "podSubnet": NODE_POD_CIDR,
            "serviceSubnet": SERVICE_CIDR,
        },
        "certificatesDir": "/etc/kubernetes/pki",
    }
    return yaml.safe_dump(config, sort_keys=True)


def kubelet_configuration() -> str:
    """The KubeletConfiguration of every node (``kube-system/kubelet-config``)."""
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "systemd",
        "clusterDomain": CLUSTER_DOMAIN,
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "rotateCertificates": True,
        "staticPodPath": "/etc/kubernetes/manifests",
        # A small VM: keep what the kubelet reserves and how often it looks small too.
        "imageGCHighThresholdPercent": 90,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "5%"},
    }
    return yaml.safe_dump(config, sort_keys=True)


def _role(name: str, namespace: str | None, rules: list[dict[str, Any]]) -> dict[str, Any]:
    kind = "Role" if namespace else "ClusterRole"
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "rules": rules}  # fmt: skip


def _binding(
    name: str, namespace: str | None, role: str, subjects: list[tuple[str, str]]
) -> dict[str, Any]:
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role" if namespace else "ClusterRole",
            "name": role,
        },
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": subject_kind, "name": subject}
            for subject_kind, subject in subjects
        ],
    }


def _configmap(name: str, namespace: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": dict(data)}  # fmt: skip


def join_objects(
    *, version: str, endpoint_host_port: str, ca_pem: bytes
) -> tuple[dict[str, Any], ...]:
    """Everything besides a token that ``kubeadm join`` needs of a cluster unkai runs.

    Args:
        version: The cluster's Kubernetes version (``1.36.3``).
        endpoint_host_port: Where nodes reach the API server (``10.0.2.2:6443``).
        ca_pem: The cluster CA's certificate.
    """
    bootstrappers = ("Group", BOOTSTRAP_GROUP)
    nodes = ("Group", "system:nodes")
    get_configmap = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
    return (
        _configmap(
            "cluster-info",
            "kube-public",
            {
                "kubeconfig": cluster_info_kubeconfig(
                    endpoint=f"https://{endpoint_host_port}", ca_pem=ca_pem
                )
            },
        ),
        _role(
            "kubeadm:bootstrap-signer-clusterinfo",
            "kube-public",
            [{**get_configmap[0], "resourceNames": ["cluster-info"]}],
        ),
        _binding(
            "kubeadm:bootstrap-signer-clusterinfo",
            "kube-public",
            "kubeadm:bootstrap-signer-clusterinfo",
            [("User", "system:anonymous")],
        ),
        _configmap(
            "kubeadm-config",
            "kube-system",
            {
                "ClusterConfiguration": cluster_configuration(
                    version=version, endpoint_host_port=endpoint_host_port
                )
            },
        ),
        _configmap("kubelet-config", "kube-system", {"kubelet": kubelet_configuration()}),
        _role(
            "kubeadm:nodes-kubeadm-config",
            "kube-system",
            [{**get_configmap[0], "resourceNames": ["kubeadm-config"]}],
        ),
        _binding(
            "kubeadm:nodes-kubeadm-config",
            "kube-system",
            "kubeadm:nodes-kubeadm-config",
            [bootstrappers, nodes],
        ),
        _role(
            "kubeadm:kubelet-config",
            "kube-system",
            [{**get_configmap[0], "resourceNames": ["kubelet-config"]}],
        ),
        _binding(
            "kubeadm:kubelet-config",
            "kube-system",
            "kubeadm:kubelet-config",
            [bootstrappers, nodes],
        ),
        _role(
            "kubeadm:get-nodes",
            None,
            [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}],
        ),
        _binding("kubeadm:get-nodes", None, "kubeadm:get-nodes", [bootstrappers]),
        _binding("kubeadm:kubelet-bootstrap", None, "system:node-bootstrapper", [bootstrappers]),
        _binding(
            "kubeadm:node-autoapprove-bootstrap",
            None,
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            [bootstrappers],
        ),
        _binding(
            "kubeadm:node-autoapprove-certificate-rotation",
            None,
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            [nodes],
        ),
        # kube-proxy runs beside the kubelet with the node's credentials.
        _binding("unkai:node-proxier", None, "system:node-proxier", [nodes]),
    )


def apply_join_objects(
    *, kubeconfig: Path, version: str, endpoint_host_port: str, ca_pem: bytes
) -> tuple[str, ...]:
    """Put :func:`join_objects` on the cluster (server-side apply; unchanged ones stay).

    Raises:
        DriverError: the API server refused an object or did not answer.
    """
    objects = join_objects(version=version, endpoint_host_port=endpoint_host_port, ca_pem=ca_pem)
    return apply_objects(kubeconfig=kubeconfig, objects=objects)


def create_join_token(
    *, kubeconfig: Path, node: str, now: datetime | None = None
) -> BootstrapToken:
    """A new bootstrap token for ``node``'s join, valid for :data:`TOKEN_TTL`.

    Raises:
        DriverError: the API server refused the Secret or did not answer.
    """
    token = BootstrapToken.generate()
    manifest = token_secret(token, now=now or datetime.now(UTC), node=node)
    apply_objects(kubeconfig=kubeconfig, objects=(manifest,))
    return token
