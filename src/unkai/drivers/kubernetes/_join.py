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
- the endpoint of the ``kubernetes`` Service, where a pod reaches the API server: the
  API server runs with ``--endpoint-reconciler-type=none`` (its own address is loopback),
  so the EndpointSlice names where the nodes reach it;
- a bootstrap token (:func:`token_secret`): the only secret a joining node is given.

A VM joins with :func:`join_vm`: ``playbooks/k8s-node.yml`` run by Ansible over SSH,
trusting only the host keys the VM printed at first boot. The pod sandbox image (the
``pause`` program Kubernetes ships as C source, compiled by the toolchain) is pushed to
unkai's registry first (:func:`ensure_sandbox_image`).

The plans (:func:`join_objects`, :func:`join_plan`) are pure; the rest acts.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import string
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lightkube import ApiError
from lightkube.resources.core_v1 import Node
from lightkube.types import PatchType

from unkai.drivers import docker as docker_driver
from unkai.drivers.ansible import AnsibleHost, PlaybookPlan, playbook_plan, run_playbook
from unkai.drivers.kubernetes._client import kube_session
from unkai.drivers.kubernetes._nodes import _ready
from unkai.drivers.kubernetes._pki import SERVICE_CIDR
from unkai.drivers.kubernetes._workloads import apply_objects
from unkai.errors import DriverError
from unkai.render import CLUSTER_POD_CIDR, DEFAULT_USER

BOOTSTRAP_GROUP = "system:bootstrappers:kubeadm:default-node-token"
"""The group a node's bootstrap token authenticates as (kubeadm's default)."""

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


def cluster_ca(kubeconfig: Path) -> bytes:
    """The CA certificate an admin kubeconfig trusts (its first cluster's).

    Raises:
        DriverError: the kubeconfig cannot be read or holds no CA.
    """
    try:
        config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
        data = config["clusters"][0]["cluster"]["certificate-authority-data"]
        return base64.b64decode(data)
    except (OSError, KeyError, IndexError, TypeError, ValueError, yaml.YAMLError) as err:
        raise DriverError(f"the kubeconfig {kubeconfig} holds no cluster CA: {err}") from err


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
            "podSubnet": CLUSTER_POD_CIDR,
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
        _api_endpoint(endpoint_host_port),
    )


def _api_endpoint(endpoint_host_port: str) -> dict[str, Any]:
    """The EndpointSlice of the ``kubernetes`` Service, where its node reaches the API server.

    A pod's ``10.96.0.1:443`` goes there.
    """
    host, _, port = endpoint_host_port.rpartition(":")
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": "kubernetes",
                "endpointslice.kubernetes.io/managed-by": "unkai.dev",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": int(port), "protocol": "TCP"}],
    }


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


SANDBOX_DOCKERFILE = """\
# The pod sandbox: Kubernetes' pause.c, compiled static by unkai's toolchain.
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
"""


def ensure_sandbox_image(
    *, reference: str, binary: Path, say: Callable[[str], None] = lambda _: None
) -> str:
    """Push the sandbox image of ``binary`` as ``reference`` unless it is there already.

    Returns:
        ``reference``, as node configurations name it.

    Raises:
        DriverError: the Docker engine or the registry refused.
    """
    tag = reference.rpartition(":")[2]
    with docker_driver.session() as client:
        if docker_driver.in_registry(client, reference):
            return reference
        say(f"pushing the pod sandbox image {reference}")
        local = f"unkai-pause:{tag}"
        docker_driver.build_image(
            client,
            dockerfile=SANDBOX_DOCKERFILE,
            tag=local,
            context_files={"pause": binary.read_bytes()},
            say=say,
        )
        repository = reference.rpartition(":")[0]
        docker_driver.push_image(
            client, docker_driver.PushPlan(source=local, repository=repository, tag=tag), say=say
        )
    return reference


@dataclass(frozen=True)
class JoinedNode:
    """A node as the cluster reports it."""

    name: str
    ready: bool
    kubelet_version: str
    container_runtime: str


@dataclass(frozen=True)
class JoinRequest:
    """What one VM's join needs; :func:`join_plan` turns it into a playbook run.

    The rest of the node's configuration (sandbox image, registry, pod network,
    kube-proxy) its cloud-init wrote at first boot (``unkai.render.node_files``).

    Attributes:
        name: The node's name (its VM's).
        pool: Its node pool.
        ssh_host: Where this machine reaches the VM's SSH server.
        ssh_port: Its port.
        endpoint: Where the node reaches the API server, ``host:port``.
        ca_hash: The CA's public key hash (:func:`ca_cert_hash`).
        labels: Node labels besides the pool's.
        taints: Node taints, ``{key, value, effect}`` each.
        ssh_client: The SSH client to run (default: this run's, ``$UNKAI_SSH``): the
            operator, which outlives runs, is told the environment's.
    """

    name: str
    pool: str
    ssh_host: str
    ssh_port: int
    endpoint: str
    ca_hash: str
    labels: Mapping[str, str]
    taints: Sequence[Mapping[str, str]]
    ssh_client: str | None = None


def join_plan(request: JoinRequest, *, token: str, known_hosts: Path) -> PlaybookPlan:
    """The run of ``k8s-node.yml`` that joins ``request``'s VM; pure.

    The VM is reached as cloud-init's ``DEFAULT_USER`` (root by sudo) on its SSH port, through the
    environment's SSH client (its key), trusting only ``known_hosts``.
    """
    plan = playbook_plan(
        AnsibleHost(
            name=request.name, connection="ssh", address=request.ssh_host, ssh_user=DEFAULT_USER
        ),
        playbook="k8s-node.yml",
        extravars={
            "ansible_port": request.ssh_port,
            "ansible_python_interpreter": "/usr/bin/python3",
            # One SSH round trip per task instead of several: each costs seconds to a
            # VM under TCG.
            "ansible_pipelining": True,
            "ansible_ssh_common_args": (
                f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
            ),
            "k8s_node_control_plane_endpoint": request.endpoint,
            "k8s_node_token": token,
            "k8s_node_ca_cert_hashes": [request.ca_hash],
            "k8s_node_name": request.name,
            "k8s_node_pool": request.pool,
            "k8s_node_labels": dict(request.labels),
            "k8s_node_taints": [dict(t) for t in request.taints],
            **({"ansible_ssh_executable": request.ssh_client} if request.ssh_client else {}),
        },
    )
    # The playbook's plays target k8s_nodes, not the KVM hosts' group.
    inventory = plan.inventory.replace("kvm_hosts:", "k8s_nodes:", 1)
    return PlaybookPlan(
        playbook=plan.playbook, inventory=inventory, extravars=plan.extravars, hosts=plan.hosts
    )


SSH_WAIT = 120.0
"""Seconds a VM's SSH server gets to greet after cloud-init finished."""


def wait_ssh(host: str, port: int, *, timeout: float) -> None:
    """Wait until an SSH server greets on ``host:port`` (its ``SSH-`` banner).

    A forwarded port accepts connections before the guest's sshd listens: QEMU resets
    them, so a connection alone proves nothing.

    Raises:
        DriverError: no banner within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.settimeout(5)
                if sock.recv(4).startswith(b"SSH-"):
                    return
                last = "no SSH banner"
        except OSError as err:
            last = str(err) or type(err).__name__
        time.sleep(1)
    raise DriverError(f"no SSH server answered on {host}:{port} within {timeout:.0f} s ({last})")


def known_hosts_lines(*, host: str, port: int, keys: Sequence[str]) -> str:
    """The ``known_hosts`` lines of a VM's printed host keys (``[host]:port key``)."""
    where = f"[{host}]:{port}" if port != 22 else host
    return "".join(f"{where} {key}\n" for key in keys)


def join_vm(
    request: JoinRequest,
    *,
    kubeconfig: Path,
    version: str,
    ca_pem: bytes,
    host_keys: Sequence[str],
    timeout: float,
    say: Callable[[str], None] = lambda _: None,
) -> JoinedNode:
    """Join ``request``'s VM to the cluster and wait until its node is Ready.

    Puts :func:`join_objects` on the cluster, issues a bootstrap token, runs the join
    playbook over SSH (a node joined before is left as it is) and waits for Ready.

    Raises:
        DriverError: the API server refused, the VM's host keys are unknown, or the
            node was not Ready in time.
        PlaybookFailed: the playbook failed (its failed tasks named).
    """
    if not host_keys:
        raise DriverError(f"{request.name} printed no SSH host keys: it cannot be trusted")
    apply_join_objects(
        kubeconfig=kubeconfig, version=version, endpoint_host_port=request.endpoint, ca_pem=ca_pem
    )
    token = create_join_token(kubeconfig=kubeconfig, node=request.name)
    deadline = time.monotonic() + timeout
    wait_ssh(request.ssh_host, request.ssh_port, timeout=min(timeout, SSH_WAIT))
    with tempfile.TemporaryDirectory(prefix="unkai-join-") as tmp:
        known = Path(tmp) / "known_hosts"
        known.write_text(
            known_hosts_lines(host=request.ssh_host, port=request.ssh_port, keys=host_keys)
        )
        plan = join_plan(request, token=str(token), known_hosts=known)
        run_playbook(
            plan,
            facts_var="k8s_node_facts",
            on_task=lambda task: say(f"{request.name}: {task}"),
            timeout=int(timeout),
        )
    say(f"{request.name}: joined; waiting until it is Ready")
    return wait_node_ready(
        kubeconfig=kubeconfig, name=request.name, timeout=max(deadline - time.monotonic(), 30)
    )


def _joined(node: Node) -> JoinedNode:
    info = node.status.nodeInfo if node.status else None
    return JoinedNode(
        name=str(node.metadata.name if node.metadata else ""),
        ready=_ready(node),
        kubelet_version=info.kubeletVersion if info else "",
        container_runtime=info.containerRuntimeVersion if info else "",
    )


def read_node(*, kubeconfig: Path, name: str) -> JoinedNode | None:
    """The node ``name`` as the cluster has it; None when there is none.

    Raises:
        DriverError: the API server refused or did not answer.
    """
    with kube_session(kubeconfig) as client:
        try:
            return _joined(client.get(Node, name))
        except ApiError as err:
            if err.status.code == 404:
                return None
            raise DriverError(f"cannot read node {name}: {err}") from err
        except httpx2.HTTPError as err:
            raise DriverError(f"cannot read node {name}: the API server did not answer") from err


def wait_node_ready(*, kubeconfig: Path, name: str, timeout: float) -> JoinedNode:
    """Wait until node ``name`` is Ready.

    Raises:
        DriverError: it was not Ready within ``timeout`` seconds (says whether it exists).
    """
    deadline = time.monotonic() + timeout
    node = None
    while time.monotonic() < deadline:
        node = read_node(kubeconfig=kubeconfig, name=name)
        if node is not None and node.ready:
            return node
        time.sleep(2)
    state = "registered but not Ready" if node else "not registered"
    raise DriverError(f"node {name} is {state} {timeout:.0f} s after its join")


def delete_node(*, kubeconfig: Path, name: str, vm_uuid: str | None = None) -> bool:
    """Delete node ``name`` from the cluster (its VM goes with its Instance).

    With ``vm_uuid``, only the node of that VM (its ``systemUUID``): a node of the same
    name on another VM (one the operator made in its place) stays.

    Returns:
        Whether one was deleted.

    Raises:
        DriverError: the API server refused or did not answer.
    """
    with kube_session(kubeconfig) as client:
        try:
            if vm_uuid:
                node = client.get(Node, name)
                info = node.status.nodeInfo if node.status else None
                if info is not None and info.systemUUID.lower() != vm_uuid.lower():
                    return False
            client.delete(Node, name)
        except ApiError as err:
            if err.status.code == 404:
                return False
            raise DriverError(f"cannot delete node {name}: {err}") from err
        except httpx2.HTTPError as err:
            raise DriverError(f"cannot delete node {name}: the API server did not answer") from err
    return True


def patch_node(*, kubeconfig: Path, name: str, patch: Mapping[str, Any]) -> None:
    """Merge-patch node ``name`` (its labels and taints).

    Raises:
        DriverError: the API server refused or did not answer.
    """
    with kube_session(kubeconfig) as client:
        try:
            client.patch(Node, name, dict(patch), patch_type=PatchType.MERGE)
        except (ApiError, httpx2.HTTPError) as err:
            raise DriverError(f"cannot patch node {name}: {err}") from err
