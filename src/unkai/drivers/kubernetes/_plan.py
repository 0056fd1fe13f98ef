"""The plan of a local control plane: every process's argv, port, health URL and file.

Everything here is pure: given a cluster name, a state folder, the ports and the
binaries, :func:`plan_control_plane` returns what :mod:`._control_plane` will run and
write. Nothing listens beyond 127.0.0.1: every bind address, advertise address and URL
in the plan is loopback, which the unit tests assert.

The state folder of a cluster::

    <state_dir>/
      ports.json                    the ports chosen at the first start
      pki/                          CA, certificates, service-account keys (0600 keys)
      pki/encryption-config.yaml    the key Secrets are encrypted with in etcd (0600)
      kubeconfig/<user>.kubeconfig  admin, controller-manager, scheduler, kwok, operator,
                                    metrics-server
      config/                       kube-scheduler and kwok configuration
      etcd/                         etcd's data
      logs/<component>.log          each process's output
      run/<component>.pid           each running process's pid
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from unkai.drivers.kubernetes._pki import FRONT_PROXY_CLIENT, SERVICE_CIDR, CertSpec, pki_plan

LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "unkai-operator",
    "metrics-server",
)
"""The processes of a control plane, in start order (stopped in reverse). metrics-server
runs only for a cluster with VM nodes (kwok's simulated nodes have no kubelet to ask)."""

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_SELECTOR = f"{KWOK_NODE_ANNOTATION}=fake"
"""Nodes kwok simulates carry this annotation; it leaves every other node alone."""

POD_CIDR = "10.0.0.0/16"
"""Pod IPs kwok hands out: room for 65,534 pods (kwok's default /24 holds 254)."""

CLIENT_QPS = 200
CLIENT_BURST = 400
"""API rate of the controller manager and the scheduler: enough for 10,000 pods in
about a minute, where the defaults (20 and 50 per second) take several."""


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one control plane.

    Attributes:
        apiserver: The API server's secure port (from ``Cluster.control_plane``).
        etcd_client: etcd's client URL port.
        etcd_peer: etcd's peer URL port (single member, but etcd always listens).
        controller_manager: kube-controller-manager's secure (health) port.
        scheduler: kube-scheduler's secure (health) port.
        kwok: kwok's server (health) port.
        operator: unkai's operator's health port (:mod:`unkai.operator`).
        metrics_server: metrics-server's secure port (0 in a ``ports.json`` written
            before it was a component: chosen at the next start).
    """

    apiserver: int
    etcd_client: int
    etcd_peer: int
    controller_manager: int
    scheduler: int
    kwok: int
    operator: int
    metrics_server: int = 0

    def to_json(self) -> str:
        """The ports as the JSON of ``ports.json``."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Ports:
        """The ports of a ``ports.json``.

        Raises:
            ValueError: ``text`` is not the JSON :meth:`to_json` writes.
        """
        data = json.loads(text)
        optional = {"metrics_server"}
        try:
            return cls(
                **{
                    name: int(data[name])
                    for name in cls.__dataclass_fields__
                    if name in data or name not in optional
                }
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a ports.json: {err}") from err


@dataclass(frozen=True)
class Binaries:
    """Where the control plane's executables and kwok's stages are."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path
    kwok_stages: Path
    python: Path
    """The Python that runs unkai's operator (``python -m unkai.operator``)."""
    operator_code: str = ""
    """A digest of the operator's code: a new unkai restarts a running operator."""
    metrics_server: Path | None = None
    """metrics-server, for a cluster with VM nodes; ``None`` runs none."""


@dataclass(frozen=True)
class Component:
    """One process of the control plane.

    Attributes:
        name: One of :data:`COMPONENTS`.
        argv: The command, binary first.
        health_url: The URL that answers ``ok`` once the process serves.
        port: The port it serves on (on 127.0.0.1).
        log: Its output.
        pid_file: Where the pid of the running process is kept.
        env: Extra environment variables.
    """

    name: str
    argv: tuple[str, ...]
    health_url: str
    port: int
    log: Path
    pid_file: Path
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Kubeconfig:
    """A kubeconfig to write: ``user`` (certificate ``pki/<cert>.crt``) on ``server``."""

    path: Path
    user: str
    cert: str
    server: str


@dataclass(frozen=True)
class Plan:
    """Everything a control plane runs and writes.

    Attributes:
        cluster: The cluster name.
        state_dir: Its state folder.
        endpoint: The API server URL clients use.
        ports: Its ports.
        components: The processes, in start order.
        certs: The certificates signed by the cluster CA.
        kubeconfigs: The kubeconfigs, the admin's first.
        files: Configuration files: path → text.
        pki_dir: Where certificates and keys live.
        encryption_config: The API server's encryption configuration: the key Secrets
            are encrypted with in etcd, made once per cluster (not in ``files``: it is
            never rewritten).
        etcd_data: etcd's data folder.
    """

    cluster: str
    state_dir: Path
    endpoint: str
    ports: Ports
    components: tuple[Component, ...]
    certs: tuple[CertSpec, ...]
    kubeconfigs: tuple[Kubeconfig, ...]
    files: Mapping[Path, str]
    pki_dir: Path
    encryption_config: Path
    etcd_data: Path

    def component(self, name: str) -> Component:
        """The component called ``name``.

        Raises:
            KeyError: there is none.
        """
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)

    @property
    def admin_kubeconfig(self) -> Path:
        """The kubeconfig of the cluster's administrator (``system:masters``)."""
        return self.kubeconfigs[0].path


def endpoint_url(host: str, port: int) -> str:
    """The API server URL for ``host`` and ``port`` (IPv6 in brackets)."""
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def render_kubeconfig(
    *, cluster: str, server: str, user: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes
) -> str:
    """A self-contained kubeconfig (certificates embedded) for ``user`` on ``cluster``.

    Returns:
        YAML text; it holds a private key, so it is written ``0600``.
    """

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    context = f"{user}@{cluster}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(cert_pem),
                    "client-key-data": b64(key_pem),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def scheduler_config(*, kubeconfig: Path) -> str:
    """The KubeSchedulerConfiguration: no leader election, the client rate for big pools."""
    doc = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {
            "kubeconfig": str(kubeconfig),
            "qps": CLIENT_QPS,
            "burst": CLIENT_BURST,
        },
        "leaderElection": {"leaderElect": False},
    }
    return yaml.safe_dump(doc, sort_keys=False)


NODE_MONITOR_GRACE = "2m"
"""How long a simulated node may miss its lease before it is NotReady (default 50s)."""

KWOK_PARALLELISM = 16
"""Pods and nodes kwok moves through their stages at once (its default, 4, made pods
of a 10,000-replica Deployment turn Running at about 11 per second)."""


def kwok_config() -> str:
    """The KwokConfiguration of kwok itself: its parallelism (stages come separately)."""
    doc = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        "options": {
            "podPlayStageParallelism": KWOK_PARALLELISM,
            "nodePlayStageParallelism": KWOK_PARALLELISM,
            "nodeLeaseParallelism": KWOK_PARALLELISM,
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def plan_control_plane(
    *, cluster: str, state_dir: Path, host: str, ports: Ports, binaries: Binaries
) -> Plan:
    """Plan the control plane of ``cluster``.

    Args:
        cluster: The cluster name.
        state_dir: The cluster's state folder (absolute).
        host: The API server host from ``Cluster.control_plane``; it must be loopback
            (``127.0.0.1``, ``localhost`` or ``::1``): the server binds ``127.0.0.1``.
        ports: The ports (the API server's from ``Cluster.control_plane``).
        binaries: The executables to run.

    Returns:
        The plan; nothing is run or written.

    Raises:
        ValueError: ``host`` is not a loopback name.
    """
    if host not in LOOPBACK_NAMES:
        raise ValueError(
            f"the local control plane listens on 127.0.0.1 only; its endpoint host {host!r}"
            f" must be one of {sorted(LOOPBACK_NAMES)}"
        )
    state_dir = state_dir.absolute()
    pki = state_dir / "pki"
    kube = state_dir / "kubeconfig"
    conf = state_dir / "config"
    logs = state_dir / "logs"
    run = state_dir / "run"
    endpoint = endpoint_url(host, ports.apiserver)
    # Components reach the API server on the address it binds, whatever name users use.
    internal = endpoint_url(LOOPBACK, ports.apiserver)
    kubeconfigs = (
        Kubeconfig(kube / "admin.kubeconfig", f"unkai-admin@{cluster}", "admin", endpoint),
        Kubeconfig(
            kube / "controller-manager.kubeconfig",
            "system:kube-controller-manager",
            "controller-manager",
            internal,
        ),
        Kubeconfig(kube / "scheduler.kubeconfig", "system:kube-scheduler", "scheduler", internal),
        Kubeconfig(kube / "kwok.kubeconfig", "kwok-controller", "kwok", internal),
        Kubeconfig(kube / "operator.kubeconfig", "unkai-operator", "operator", internal),
        Kubeconfig(
            kube / "metrics-server.kubeconfig", "unkai-metrics-server", "metrics-server", internal
        ),
    )
    kcm_kubeconfig = kubeconfigs[1].path
    scheduler_kubeconfig = kubeconfigs[2].path
    etcd_url = f"http://{LOOPBACK}:{ports.etcd_client}"
    encryption_config = pki / "encryption-config.yaml"
    etcd_data = state_dir / "etcd"

    def component(
        name: str, argv: list[str], health: str, port: int, env: Mapping[str, str] | None = None
    ) -> Component:
        return Component(
            name=name,
            argv=tuple(argv),
            health_url=health,
            port=port,
            log=logs / f"{name}.log",
            pid_file=run / f"{name}.pid",
            env=dict(env or {}),
        )

    etcd = component(
        "etcd",
        [
            str(binaries.etcd),
            f"--name={cluster}",
            f"--data-dir={etcd_data}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://{LOOPBACK}:{ports.etcd_peer}",
            f"--initial-advertise-peer-urls=http://{LOOPBACK}:{ports.etcd_peer}",
            f"--initial-cluster={cluster}=http://{LOOPBACK}:{ports.etcd_peer}",
            "--initial-cluster-state=new",
            # Keep the data folder bounded on long-lived local clusters.
            "--auto-compaction-retention=1",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ],
        f"{etcd_url}/health",
        ports.etcd_client,
    )
    apiserver = component(
        "kube-apiserver",
        [
            str(binaries.kube_apiserver),
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={ports.apiserver}",
            f"--etcd-servers={etcd_url}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            # VM nodes join with kubeadm bootstrap tokens (drivers.kubernetes._join).
            "--enable-bootstrap-token-auth=true",
            # A VM node's kubelet serves on its node network's address (its InternalIP);
            # its serving certificate is its own, self-signed, so it is not verified.
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            # Aggregated APIs (metrics-server's metrics.k8s.io) learn who asks from the
            # headers of this client, and trust no other.
            f"--proxy-client-cert-file={pki / (FRONT_PROXY_CLIENT + '.crt')}",
            f"--proxy-client-key-file={pki / (FRONT_PROXY_CLIENT + '.key')}",
            f"--requestheader-client-ca-file={pki / 'ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            # The API server's own Endpoints would hold 127.0.0.1, which validation
            # refuses for Endpoints; no pod needs to reach it on a simulated cluster.
            "--endpoint-reconciler-type=none",
            f"--encryption-provider-config={encryption_config}",
            "--profiling=false",
        ],
        f"{internal}/readyz",
        ports.apiserver,
    )
    controller_manager = component(
        "kube-controller-manager",
        [
            str(binaries.kube_controller_manager),
            f"--bind-address={LOOPBACK}",
            f"--secure-port={ports.controller_manager}",
            f"--kubeconfig={kcm_kubeconfig}",
            f"--authentication-kubeconfig={kcm_kubeconfig}",
            f"--authorization-kubeconfig={kcm_kubeconfig}",
            f"--tls-cert-file={pki / 'controller-manager-serving.crt'}",
            f"--tls-private-key-file={pki / 'controller-manager-serving.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--use-service-account-credentials=true",
            # The signer signs cluster-info for kubeadm join; the cleaner deletes
            # bootstrap tokens when they expire.
            "--controllers=*,bootstrapsigner,tokencleaner",
            "--leader-elect=false",
            # A simulated node has no kubelet to fail: it only misses its lease when
            # kwok is starved of CPU on a busy machine, and a NotReady node marks its
            # pods NotReady for good (kwok does not play them Ready again).
            f"--node-monitor-grace-period={NODE_MONITOR_GRACE}",
            f"--kube-api-qps={CLIENT_QPS}",
            f"--kube-api-burst={CLIENT_BURST}",
            "--profiling=false",
        ],
        f"https://{LOOPBACK}:{ports.controller_manager}/healthz",
        ports.controller_manager,
    )
    scheduler_conf = conf / "kube-scheduler.yaml"
    kwok_conf = conf / "kwok.yaml"
    scheduler = component(
        "kube-scheduler",
        [
            str(binaries.kube_scheduler),
            f"--config={scheduler_conf}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={ports.scheduler}",
            f"--authentication-kubeconfig={scheduler_kubeconfig}",
            f"--authorization-kubeconfig={scheduler_kubeconfig}",
            f"--tls-cert-file={pki / 'scheduler-serving.crt'}",
            f"--tls-private-key-file={pki / 'scheduler-serving.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--profiling=false",
        ],
        f"https://{LOOPBACK}:{ports.scheduler}/healthz",
        ports.scheduler,
    )
    kwok = component(
        "kwok",
        [
            str(binaries.kwok),
            f"--kubeconfig={kubeconfigs[3].path}",
            f"--config={binaries.kwok_stages}",
            f"--config={kwok_conf}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_SELECTOR}",
            f"--server-address={LOOPBACK}:{ports.kwok}",
            f"--cidr={POD_CIDR}",
            "--node-lease-duration-seconds=40",
            # At INFO kwok logs every pod and lease it touches: megabytes a minute.
            "--v=WARN",
        ],
        f"http://{LOOPBACK}:{ports.kwok}/healthz",
        ports.kwok,
        # kwok also reads ~/.kwok/kwok.yaml when it exists: give it a home of its own.
        {"HOME": str(state_dir / "kwok-home")},
    )
    operator = component(
        "unkai-operator",
        [
            str(binaries.python),
            "-m",
            "unkai.operator",
            f"--kubeconfig={kubeconfigs[4].path}",
            # One replica per cluster on this machine: a restarted one is the same holder
            # and takes its Lease back at once.
            f"--identity=unkai-operator@{cluster}",
            f"--health-port={ports.operator}",
            *([f"--code={binaries.operator_code}"] if binaries.operator_code else []),
        ],
        f"http://{LOOPBACK}:{ports.operator}/healthz",
        ports.operator,
    )
    components = (etcd, apiserver, controller_manager, scheduler, kwok, operator)
    if binaries.metrics_server is not None:
        metrics_kubeconfig = kubeconfigs[5].path
        metrics_server = component(
            "metrics-server",
            [
                str(binaries.metrics_server),
                f"--kubeconfig={metrics_kubeconfig}",
                f"--authentication-kubeconfig={metrics_kubeconfig}",
                f"--authorization-kubeconfig={metrics_kubeconfig}",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={ports.metrics_server}",
                f"--tls-cert-file={pki / 'metrics-server-serving.crt'}",
                f"--tls-private-key-file={pki / 'metrics-server-serving.key'}",
                # A node's kubelet serves on its node network's address with a
                # certificate of its own (self-signed), which is not verified.
                "--kubelet-preferred-address-types=InternalIP",
                "--kubelet-insecure-tls",
                "--kubelet-use-node-status-port",
                # The HPA's controller asks every 15 s: fresh samples as often.
                "--metric-resolution=15s",
                "--profiling=false",
            ],
            f"https://{LOOPBACK}:{ports.metrics_server}/livez",
            ports.metrics_server,
        )
        components = (*components, metrics_server)
    return Plan(
        cluster=cluster,
        state_dir=state_dir,
        endpoint=endpoint,
        ports=ports,
        components=components,
        certs=pki_plan(cluster=cluster, endpoint_host=host),
        kubeconfigs=kubeconfigs,
        files={
            scheduler_conf: scheduler_config(kubeconfig=scheduler_kubeconfig),
            kwok_conf: kwok_config(),
            state_dir / "ports.json": ports.to_json(),
        },
        pki_dir=pki,
        encryption_config=encryption_config,
        etcd_data=etcd_data,
    )
