"""The certificates of one local cluster: a CA, serving and client certificates, SA keys.

:func:`pki_plan` says which certificates a cluster needs (pure); :func:`issue` makes the
keys and signs them, in memory; :func:`write_pki` alone touches the disk. Keys are ECDSA
P-256: every component accepts them and they are made in microseconds, which keeps a
cold start of the control plane short.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from unkai._files import atomic_write
from unkai.errors import DriverError
from unkai.model import USER_NETWORK_HOST_IP

SERVICE_CIDR = "10.96.0.0/16"

"""The cluster's Service IP range; its first address is the ``kubernetes`` Service's."""

KUBERNETES_SERVICE_IP = "10.96.0.1"

FRONT_PROXY_CLIENT = "front-proxy-client"
"""The API server's client name to the APIs it aggregates."""

METRICS_SERVER_NAME = "metrics-server.kube-system.svc"
"""The name the API server expects on metrics-server's certificate: that of the Service
its APIService names (``<service>.<namespace>.svc``)."""

IN_CLUSTER_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class CertSpec:
    """One certificate signed by the cluster CA.

    Attributes:
        name: File stem in the ``pki`` folder (``apiserver`` → ``apiserver.crt``/``.key``).
        common_name: Subject CN (the user name, for a client certificate).
        organizations: Subject O entries (the groups, for a client certificate).
        dns_names: DNS subject alternative names (serving certificates).
        ip_addresses: IP subject alternative names (serving certificates).
        server: Usable as a TLS server certificate.
        client: Usable as a TLS client certificate.
    """

    name: str
    common_name: str
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    server: bool = False
    client: bool = False


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def pki_plan(*, cluster: str, endpoint_host: str) -> tuple[CertSpec, ...]:
    """The certificates a local cluster needs, besides its CA and service-account keys.

    Args:
        cluster: The cluster name (in the CA's and the admin's subject).
        endpoint_host: The API server host clients use (an IP or a DNS name); it is
            added to the serving certificate's SANs when it is not there already.

    Returns:
        The API server's serving certificate (``127.0.0.1``, ``localhost``, the
        ``kubernetes.default...`` names, the ``kubernetes`` Service IP and
        :data:`unkai.model.USER_NETWORK_HOST_IP`, where a node VM on QEMU user networking
        reaches this machine's loopback), serving
        certificates for the controller manager and the scheduler (loopback), and
        client certificates for the admin (``system:masters``), the controller manager,
        the scheduler, kwok, unkai's operator, the API server's own to the kubelets and to
        aggregated APIs, and metrics-server's client and serving certificates.
    """
    dns = ["localhost", *IN_CLUSTER_NAMES]
    ips = ["127.0.0.1", KUBERNETES_SERVICE_IP, USER_NETWORK_HOST_IP]
    if _is_ip(endpoint_host):
        if endpoint_host not in ips:
            ips.append(endpoint_host)
    elif endpoint_host not in dns:
        dns.append(endpoint_host)
    local = ("localhost",)
    loopback = ("127.0.0.1",)
    return (
        CertSpec("apiserver", "kube-apiserver", (), tuple(dns), tuple(ips), server=True),
        CertSpec(
            "controller-manager-serving", "kube-controller-manager", (), local, loopback, True
        ),
        CertSpec("scheduler-serving", "kube-scheduler", (), local, loopback, server=True),
        CertSpec("admin", f"unkai-admin@{cluster}", ("system:masters",), client=True),
        CertSpec("controller-manager", "system:kube-controller-manager", client=True),
        CertSpec("scheduler", "system:kube-scheduler", client=True),
        # kwok writes the status of every simulated node and pod, and their leases.
        CertSpec("kwok", "kwok-controller", ("system:masters",), client=True),
        # unkai's operator creates and deletes Nodes, evicts pods and posts Events.
        CertSpec("operator", "unkai-operator", ("system:masters",), client=True),
        # The API server to the kubelets (exec, logs, port-forward); a kubelet asks the
        # API server whether this user may, and system:masters may.
        CertSpec(
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            ("system:masters",),
            client=True,
        ),
        # The API server to the APIs it aggregates (metrics.k8s.io), telling them who asks;
        # only this name may (--requestheader-allowed-names).
        CertSpec(FRONT_PROXY_CLIENT, FRONT_PROXY_CLIENT, client=True),
        # metrics-server to the API server and to the kubelets (their resource metrics).
        CertSpec("metrics-server", "unkai-metrics-server", ("system:masters",), client=True),
        # metrics-server to the API server: it checks the name of the Service it is behind.
        CertSpec(
            "metrics-server-serving",
            "metrics-server",
            (),
            ("localhost", METRICS_SERVER_NAME),
            ("127.0.0.1",),
            server=True,
        ),
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """Digital signature for every certificate; certificate and CRL signing for the CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def issue(
    specs: Sequence[CertSpec], *, cluster: str, now: dt.datetime, days: int = 3650
) -> dict[str, bytes]:
    """Make the CA, every certificate of ``specs`` and the service-account key pair.

    Pure but for randomness: nothing is written.

    Args:
        specs: The certificates to sign (from :func:`pki_plan`).
        cluster: The cluster name, in the CA's subject.
        now: Start of validity (an hour is taken off for clock skew).
        days: Validity of every certificate.

    Returns:
        File name → PEM bytes: ``ca.crt``, ``ca.key``, ``<name>.crt``/``<name>.key`` per
        spec, ``sa.key`` and ``sa.pub``.
    """
    start = now - dt.timedelta(hours=1)
    end = now + dt.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"unkai-{cluster}-ca")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            _key_usage(ca=True),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "ca.key": _pem_key(ca_key),
    }
    for spec in specs:
        key = ec.generate_private_key(ec.SECP256R1())
        usages = []
        if spec.server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if spec.client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(spec.common_name, spec.organizations))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                _key_usage(ca=False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
        )
        sans: list[x509.GeneralName] = [x509.DNSName(name) for name in spec.dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in spec.ip_addresses]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        out[f"{spec.name}.crt"] = cert.public_bytes(serialization.Encoding.PEM)
        out[f"{spec.name}.key"] = _pem_key(key)
    sa_key = ec.generate_private_key(ec.SECP256R1())
    out["sa.key"] = _pem_key(sa_key)
    out["sa.pub"] = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return out


def sans_of(pem: bytes) -> tuple[frozenset[str], frozenset[str]]:
    """The DNS names and IP addresses (as text) a PEM certificate is valid for."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset(), frozenset()
    dns = frozenset(ext.get_values_for_type(x509.DNSName))
    ips = frozenset(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return dns, ips


def pki_current(folder: Path, specs: Sequence[CertSpec]) -> bool:
    """Whether ``folder`` holds every file of ``specs`` with the SANs they ask for.

    A cluster keeps its CA and certificates across restarts (kubeconfigs handed out stay
    valid); they are issued again only when one is missing or the endpoint changed.
    """
    names = ["ca.crt", "ca.key", "sa.key", "sa.pub"]
    names += [f"{spec.name}.{ext}" for spec in specs for ext in ("crt", "key")]
    if not all((folder / name).is_file() for name in names):
        return False
    for spec in specs:
        if spec.dns_names or spec.ip_addresses:
            dns, ips = sans_of((folder / f"{spec.name}.crt").read_bytes())
            if dns != frozenset(spec.dns_names) or ips != frozenset(spec.ip_addresses):
                return False
    return True


def write_pki(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` into ``folder`` (created ``0700``), each atomically and ``0600``.

    Raises:
        DriverError: a file could not be written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, data in files.items():
            atomic_write(folder / name, data, mode=0o600)
    except OSError as err:
        raise DriverError(f"cannot write the cluster certificates to {folder}: {err}") from err
