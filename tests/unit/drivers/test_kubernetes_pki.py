import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from unkai.drivers.kubernetes import issue, pki_plan, sans_of
from unkai.drivers.kubernetes._pki import pki_current, write_pki

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def specs(host="127.0.0.1"):
    return {s.name: s for s in pki_plan(cluster="dev", endpoint_host=host)}


def test_apiserver_serving_cert_sans():
    api = specs()["apiserver"]
    assert set(api.ip_addresses) == {"127.0.0.1", "10.96.0.1", "10.0.2.2"}
    assert set(api.dns_names) == {
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    }
    assert api.server and not api.client
    assert "my-host.example" in specs("my-host.example")["apiserver"].dns_names
    assert "::1" in specs("::1")["apiserver"].ip_addresses


def test_client_identities():
    s = specs()
    assert s["admin"].organizations == ("system:masters",)
    assert s["controller-manager"].common_name == "system:kube-controller-manager"
    assert s["scheduler"].common_name == "system:kube-scheduler"
    assert all(s[n].client and not s[n].server for n in ("admin", "controller-manager", "kwok"))


def test_issued_certificates_chain_to_the_ca_and_carry_the_sans(tmp_path):
    plan = pki_plan(cluster="dev", endpoint_host="127.0.0.1")
    files = issue(plan, cluster="dev", now=NOW)
    ca = x509.load_pem_x509_certificate(files["ca.crt"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for spec in plan:
        cert = x509.load_pem_x509_certificate(files[f"{spec.name}.crt"])
        cert.verify_directly_issued_by(ca)
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn == spec.common_name
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert (ExtendedKeyUsageOID.SERVER_AUTH in eku) == spec.server
        assert (ExtendedKeyUsageOID.CLIENT_AUTH in eku) == spec.client
        assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc
    dns, ips = sans_of(files["apiserver.crt"])
    assert "kubernetes.default.svc" in dns and "127.0.0.1" in ips
    assert "BEGIN PUBLIC KEY" in files["sa.pub"].decode()
    assert "BEGIN PRIVATE KEY" in files["sa.key"].decode()

    write_pki(tmp_path / "pki", files)
    assert (tmp_path / "pki" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert pki_current(tmp_path / "pki", plan)
    # Another endpoint host needs another serving certificate.
    assert not pki_current(tmp_path / "pki", pki_plan(cluster="dev", endpoint_host="localhost.x"))


def test_keys_are_ecdsa_p256():
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    files = issue(pki_plan(cluster="dev", endpoint_host="127.0.0.1"), cluster="dev", now=NOW)
    key = load_pem_private_key(files["admin.key"], password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
