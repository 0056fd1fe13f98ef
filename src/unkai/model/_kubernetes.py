"""Kubernetes: clusters with node pools, and the workloads that run on them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from unkai.model._base import (
    LABEL_NAME,
    LABEL_PREFIX,
    MAX_MEMBERS,
    DnsLabel,
    EnvVarName,
    Labels,
    UnkaiModel,
    size_bound,
    sorted_mapping,
)
from unkai.model._machine_types import MachineTypeName
from unkai.model._secrets import SecretEnv

INT32_MAX = 2**31 - 1
"""The largest count or number of seconds a Kubernetes object holds (its fields are int32):
larger is refused when the environment loads, not by the API server half-way through an up."""

__all__ = [
    "Cluster",
    "ContainerPort",
    "ControlPlane",
    "HorizontalAutoscaling",
    "NodePool",
    "NodePoolKind",
    "Probe",
    "Quantity",
    "ResourceList",
    "Resources",
    "Service",
    "ServicePort",
    "Taint",
    "Workload",
    "parse_quantity",
]

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<decimal>[numkMGTPE])|[eE](?P<exponent>[+-]?[0-9]+))?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_PORT_NAME = re.compile(r"^(?=.{1,15}$)(?=.*[a-z])[a-z0-9](?:-?[a-z0-9])*$")
_TAINT_KEY = re.compile(rf"(?:{LABEL_PREFIX.pattern}/)?{LABEL_NAME.pattern}")  # a label key
_K8S_VERSION = re.compile(r"^1\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.:-]{0,252}[A-Za-z0-9])?$")

Protocol = Literal["TCP", "UDP", "SCTP"]


def parse_quantity(text: str) -> Decimal:
    """Parse a Kubernetes resource quantity (``500m``, ``2``, ``128Mi``, ``1e3``).

    Args:
        text: The quantity as written in a manifest.

    Returns:
        Its exact value: cores for CPU (``500m`` → ``0.5``), bytes for memory
        (``1Ki`` → ``1024``).

    Raises:
        ValueError: ``text`` is not a quantity.
    """
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a Kubernetes quantity; allowed: a number with an optional"
            " suffix m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or e<exponent>,"
            " such as '500m', '2', '128Mi'"
        )
    number = Decimal(match["number"])
    if match["binary"]:
        return number * Decimal(1024) ** _BINARY[match["binary"]]
    if match["decimal"]:
        return number.scaleb(_DECIMAL[match["decimal"]])
    if match["exponent"]:
        return number.scaleb(int(match["exponent"]))
    return number


def _non_negative_quantity(text: str) -> str:
    if parse_quantity(text) < 0:
        raise ValueError(f"{text!r} is negative; allowed: a quantity ≥ 0")
    return text


Quantity = Annotated[str, AfterValidator(_non_negative_quantity)]
"""A Kubernetes resource quantity string, checked by :func:`parse_quantity`, ≥ 0."""


class Taint(UnkaiModel):
    """A Kubernetes node taint: pods without a matching toleration stay off the node."""

    key: str = Field(description="Taint key in label-key syntax, such as ``dedicated``.")
    value: str = Field(default="", description="Taint value in label-value syntax.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        description="What happens to pods that do not tolerate the taint."
    )

    @field_validator("key")
    @classmethod
    def _check_key(cls, value: str) -> str:
        if not _TAINT_KEY.fullmatch(value):
            raise ValueError(f"{value!r} is not a taint key; allowed: [prefix/]name, label syntax")
        return value

    @field_validator("value")
    @classmethod
    def _check_value(cls, value: str) -> str:
        if value and not LABEL_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a taint value; allowed: label-value syntax")
        return value


NODE_POOL_SURGE = 1
"""Nodes beyond its target a pool's rollout adds before it drains an old one (the
NodePool object's ``maxSurge``): a ``vm`` pool the operator keeps has a slot for each."""

NodePoolKind = Literal["simulated", "vm"]
"""What a pool's nodes are: ``simulated`` (KWOK: no kubelet runs; for scale) or ``vm``
(VMs from an instance template whose image bakes a node, joined with kubeadm)."""


class NodePool(UnkaiModel):
    """A set of identical Kubernetes nodes of one machine type.

    ``min_size``/``max_size`` default to ``size`` (no autoscaling);
    ``min_size ≤ size ≤ max_size`` always holds. A ``vm`` pool's nodes are VMs of its
    ``template`` (whose image has ``kubernetes`` set), named ``<cluster>-<pool>-<index>``.
    """

    name: DnsLabel = Field(description="Pool name, unique within the cluster.")
    kind: NodePoolKind = Field(
        default="simulated",
        description="``simulated`` (KWOK, no kubelet) or ``vm`` (VMs joined with kubeadm).",
    )
    template: DnsLabel | None = Field(
        default=None,
        description="The instance template of a ``vm`` pool's nodes (its image bakes a node).",
    )
    machine_type: MachineTypeName = Field(description="Machine type of every node.")
    size: int = Field(ge=0, le=MAX_MEMBERS, description="Current number of nodes.")
    min_size: int = Field(
        default=-1, validate_default=True, description="Autoscaling lower bound (default: size)."
    )
    max_size: int = Field(
        default=-1, validate_default=True, description="Autoscaling upper bound (default: size)."
    )
    auto_upgrade: bool = Field(default=True, description="Upgrade nodes with the control plane.")
    auto_repair: bool = Field(default=True, description="Recreate nodes that turn unhealthy.")
    labels: Labels = Field(default_factory=dict, description="Kubernetes labels of the nodes.")
    taints: tuple[Taint, ...] = Field(default=(), description="Taints of the nodes.")

    @field_validator("min_size", "max_size")
    @classmethod
    def _default_bound(cls, value: int, info: ValidationInfo) -> int:
        return size_bound(value, info)

    @model_validator(mode="after")
    def _check_bounds(self) -> NodePool:
        if not self.min_size <= self.size <= self.max_size:
            raise ValueError(
                f"need min_size ≤ size ≤ max_size, got {self.min_size} ≤ {self.size}"
                f" ≤ {self.max_size}"
            )
        if self.kind == "vm" and self.template is None:
            raise ValueError("a vm node pool needs a template (the instance template of its VMs)")
        if self.kind == "simulated" and self.template is not None:
            raise ValueError("a simulated node pool has no template; set kind: vm for VM nodes")
        return self

    def node_names(self, cluster: str, *, slots: bool = False) -> tuple[str, ...]:
        """The names of a ``vm`` pool's nodes (and VMs): ``<cluster>-<pool>-<index>``.

        With ``slots``, every name the operator may give a node (a pool it keeps): up to
        ``max_size`` and the one more a rollout adds first (:data:`NODE_POOL_SURGE`).
        """
        count = self.max_size + NODE_POOL_SURGE if slots else self.size
        return tuple(f"{cluster}-{self.name}-{index}" for index in range(count))


class ControlPlane(UnkaiModel):
    """Where the Kubernetes API server listens (default: loopback, for ``local``)."""

    host: str = Field(default="127.0.0.1", description="API server address or DNS name.")
    port: int = Field(default=6443, ge=1, le=65535, description="API server port.")

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if not _HOSTNAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a host; allowed: an IP address or DNS name")
        return value

    @property
    def endpoint(self) -> str:
        """The API server URL, ``https://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


class Cluster(UnkaiModel):
    """A Kubernetes cluster: a control plane and node pools (sorted by name)."""

    name: DnsLabel = Field(description="Cluster name.")
    kubernetes_version: str = Field(description="Kubernetes version ``1.<minor>.<patch>``.")
    control_plane: ControlPlane = Field(
        default_factory=ControlPlane, description="API server endpoint."
    )
    node_pools: tuple[NodePool, ...] = Field(
        default=(), description="Node pools, unique names, sorted by name."
    )

    @field_validator("kubernetes_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not _K8S_VERSION.fullmatch(value):
            raise ValueError(f"{value!r} is not a Kubernetes version; allowed: 1.<minor>.<patch>")
        return value

    @field_validator("node_pools")
    @classmethod
    def _sort_pools(cls, pools: tuple[NodePool, ...]) -> tuple[NodePool, ...]:
        names = [pool.name for pool in pools]
        if len(set(names)) != len(names):
            raise ValueError(f"node pool names must be unique, got {names}")
        return tuple(sorted(pools, key=lambda pool: pool.name))


class ResourceList(UnkaiModel):
    """CPU and memory amounts as Kubernetes quantities; unset means not specified."""

    cpu: Quantity | None = Field(default=None, description="CPU, such as ``250m`` or ``2``.")
    memory: Quantity | None = Field(default=None, description="Memory, such as ``256Mi``.")


class Resources(UnkaiModel):
    """A container's resource requests and limits; each request ≤ its limit."""

    requests: ResourceList = Field(default_factory=ResourceList, description="Requests.")
    limits: ResourceList = Field(default_factory=ResourceList, description="Limits.")

    @model_validator(mode="after")
    def _check_requests_within_limits(self) -> Resources:
        for resource in ("cpu", "memory"):
            request = getattr(self.requests, resource)
            limit = getattr(self.limits, resource)
            if (
                request is not None
                and limit is not None
                and parse_quantity(request) > parse_quantity(limit)
            ):
                raise ValueError(
                    f"requests.{resource} {request} is more than limits.{resource} {limit}"
                )
        return self


def _check_port_name(value: str) -> str:
    if not _PORT_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a port name; allowed: 1-15 lowercase letters, digits and"
            " single '-', with at least one letter"
        )
    return value


PortName = Annotated[str, AfterValidator(_check_port_name)]


class ContainerPort(UnkaiModel):
    """A port the container listens on."""

    name: PortName = Field(description="Port name (IANA service name syntax), e.g. ``http``.")
    port: int = Field(ge=1, le=65535, description="Container port number.")
    protocol: Protocol = Field(default="TCP", description="Transport protocol.")


class Probe(UnkaiModel):
    """A readiness or liveness probe: an HTTP GET or a TCP connect."""

    type: Literal["http", "tcp"] = Field(description="``http`` GET of ``path`` or ``tcp`` connect.")
    port: int | PortName = Field(description="Port number, or the name of a container port.")
    path: str | None = Field(
        default=None, validate_default=True, description="HTTP path (default ``/``); http only."
    )
    period_seconds: int = Field(
        default=10, ge=1, le=INT32_MAX, description="Seconds between probes."
    )
    initial_delay_seconds: int = Field(
        default=0, ge=0, le=INT32_MAX, description="Seconds before the first."
    )
    timeout_seconds: int = Field(
        default=1, ge=1, le=INT32_MAX, description="Seconds before a probe fails."
    )
    failure_threshold: int = Field(
        default=3, ge=1, le=INT32_MAX, description="Failures before acting."
    )

    @field_validator("port")
    @classmethod
    def _check_port(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 65535:
            raise ValueError(f"port {value} is out of range; allowed: 1..65535")
        return value

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        is_http = info.data.get("type") == "http"
        if value is None:
            return "/" if is_http else None
        if not is_http:
            raise ValueError("path is only allowed for http probes")
        if not value.startswith("/"):
            raise ValueError(f"{value!r} is not an HTTP path; allowed: a path starting with '/'")
        return value


class HorizontalAutoscaling(UnkaiModel):
    """A HorizontalPodAutoscaler on CPU utilisation (needs a CPU request)."""

    min_replicas: int = Field(ge=1, le=INT32_MAX, description="Fewest replicas.")
    max_replicas: int = Field(ge=1, le=INT32_MAX, description="Most replicas.")
    target_cpu_utilization: int = Field(
        default=80, ge=1, le=100, description="Target CPU use in % of the CPU request."
    )
    scale_down_stabilization_s: int | None = Field(
        default=None,
        ge=0,
        le=3600,
        description=(
            "Seconds the load must have allowed fewer replicas before they are removed"
            " (default: Kubernetes' 300)."
        ),
    )

    @model_validator(mode="after")
    def _check_range(self) -> HorizontalAutoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas {self.min_replicas} is more than max_replicas {self.max_replicas}"
            )
        return self


class ServicePort(UnkaiModel):
    """A port a Service exposes and where it forwards to."""

    name: PortName = Field(description="Port name.")
    port: int = Field(ge=1, le=65535, description="Port the Service listens on.")
    target_port: int | PortName | None = Field(
        default=None, description="Container port number or name (default: ``port``)."
    )
    node_port: int | None = Field(
        default=None, ge=30000, le=32767, description="Fixed node port (NodePort/LoadBalancer)."
    )
    protocol: Protocol = Field(default="TCP", description="Transport protocol.")

    @field_validator("target_port")
    @classmethod
    def _check_target(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not 1 <= value <= 65535:
            raise ValueError(f"target_port {value} is out of range; allowed: 1..65535")
        return value


class Service(UnkaiModel):
    """How a workload is exposed: a Kubernetes Service of one type."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="Service type."
    )
    ports: tuple[ServicePort, ...] = Field(min_length=1, description="Exposed ports.")

    @model_validator(mode="after")
    def _check_ports(self) -> Service:
        names = [port.name for port in self.ports]
        if len(set(names)) != len(names):
            raise ValueError(f"service port names must be unique, got {names}")
        if self.type == "ClusterIP" and any(p.node_port is not None for p in self.ports):
            raise ValueError("node_port is only allowed for NodePort and LoadBalancer services")
        return self


class Workload(UnkaiModel):
    """A containerised application on a cluster: a Deployment with its Service, HPA, PDB.

    Secret environment variables are references only (:class:`SecretRef`).
    """

    name: DnsLabel = Field(description="Workload name (the Deployment's).")
    cluster: DnsLabel = Field(description="Name of the Cluster it runs on.")
    image: DnsLabel = Field(description="Name of the ContainerImage it runs.")
    replicas: int = Field(
        default=1, ge=0, le=INT32_MAX, description="Replicas (initial, with autoscaling)."
    )
    resources: Resources = Field(default_factory=Resources, description="Requests and limits.")
    ports: tuple[ContainerPort, ...] = Field(default=(), description="Container ports.")
    env: Mapping[EnvVarName, str] = Field(
        default_factory=dict, description="Plain environment variables, sorted by name."
    )
    secret_env: SecretEnv = Field(
        default_factory=dict, description="Environment variable → secret reference."
    )
    readiness_probe: Probe | None = Field(default=None, description="Readiness probe.")
    liveness_probe: Probe | None = Field(default=None, description="Liveness probe.")
    autoscaling: HorizontalAutoscaling | None = Field(
        default=None, description="Horizontal autoscaling on CPU."
    )
    service: Service | None = Field(default=None, description="Service exposure, if any.")
    pdb_min_available: int | None = Field(
        default=None, ge=1, description="PodDisruptionBudget minAvailable, if any."
    )

    @field_validator("env")
    @classmethod
    def _sort_env(cls, value: Mapping[str, str]) -> dict[str, str]:
        return sorted_mapping(value)

    @model_validator(mode="after")
    def _check_consistency(self) -> Workload:
        names = [port.name for port in self.ports]
        if len(set(names)) != len(names):
            raise ValueError(f"container port names must be unique, got {names}")
        numbers = [(port.port, port.protocol) for port in self.ports]
        if len(set(numbers)) != len(numbers):
            raise ValueError("a container port number is declared twice for one protocol")
        clash = sorted(set(self.env) & set(self.secret_env))
        if clash:
            raise ValueError(f"{clash} are in both env and secret_env")
        self._check_named_ports(set(names))
        fewest = self.replicas
        if self.autoscaling is not None:
            hpa = self.autoscaling
            if not hpa.min_replicas <= self.replicas <= hpa.max_replicas:
                raise ValueError(
                    f"replicas {self.replicas} is outside autoscaling"
                    f" {hpa.min_replicas}..{hpa.max_replicas}"
                )
            if self.resources.requests.cpu is None:
                raise ValueError("autoscaling on CPU needs resources.requests.cpu")
            fewest = hpa.min_replicas
        if self.pdb_min_available is not None and self.pdb_min_available > fewest:
            raise ValueError(
                f"pdb_min_available {self.pdb_min_available} is more than the {fewest}"
                " replicas there may be"
            )
        return self

    def _check_named_ports(self, names: set[str]) -> None:
        refs: list[tuple[str, int | str | None]] = [
            (f"{field}.port", probe.port)
            for field, probe in (
                ("readiness_probe", self.readiness_probe),
                ("liveness_probe", self.liveness_probe),
            )
            if probe is not None
        ]
        if self.service is not None:
            refs += [
                (f"service.ports.{i}.target_port", port.target_port)
                for i, port in enumerate(self.service.ports)
            ]
        for where, ref in refs:
            if isinstance(ref, str) and ref not in names:
                raise ValueError(
                    f"{where}: unknown container port {ref!r}; defined: {sorted(names) or 'none'}"
                )
