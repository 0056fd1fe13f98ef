import base64
import json
import stat
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from unkai.drivers.kubernetes import (
    COMPONENTS,
    Binaries,
    ControlPlane,
    Ports,
    plan_control_plane,
    render_kubeconfig,
)
from unkai.drivers.kubernetes._encryption import (
    encryption_key,
    ensure_encryption_config,
    render_encryption_config,
)
from unkai.drivers.kubernetes._metrics import metrics_objects
from unkai.errors import DriverError

BIN = Binaries(
    etcd=Path("/usr/bin/etcd"),
    kube_apiserver=Path("/k/kube-apiserver"),
    kube_controller_manager=Path("/k/kube-controller-manager"),
    kube_scheduler=Path("/k/kube-scheduler"),
    kwok=Path("/w/kwok"),
    kwok_stages=Path("/w/stages.yaml"),
    python=Path("/v/bin/python"),
)
PORTS = Ports(
    apiserver=6443,
    etcd_client=20001,
    etcd_peer=20002,
    controller_manager=20003,
    scheduler=20004,
    kwok=20005,
    operator=20006,
    metrics_server=20007,
)
STATE = Path("/p/.unkai/clusters/dev")


def plan(host: str = "127.0.0.1", binaries: Binaries = BIN):
    return plan_control_plane(
        cluster="dev", state_dir=STATE, host=host, ports=PORTS, binaries=binaries
    )


WITH_METRICS = replace(BIN, metrics_server=Path("/m/metrics-server"))


def flags(argv: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for arg in argv[1:]:
        key, _, value = arg.partition("=")
        out[key] = value
    return out


def test_components_run_in_order_with_their_binaries():
    p = plan(binaries=WITH_METRICS)
    assert tuple(c.name for c in p.components) == COMPONENTS
    assert [c.argv[0] for c in p.components] == [
        "/usr/bin/etcd",
        "/k/kube-apiserver",
        "/k/kube-controller-manager",
        "/k/kube-scheduler",
        "/w/kwok",
        "/v/bin/python",
        "/m/metrics-server",
    ]
    # Without VM nodes, nothing to scrape: no metrics-server.
    assert tuple(c.name for c in plan().components) == COMPONENTS[:-1]
    assert p.component("unkai-operator").argv[1:3] == ("-m", "unkai.operator")
    for c in p.components:
        assert c.log == STATE / "logs" / f"{c.name}.log"
        assert c.pid_file == STATE / "run" / f"{c.name}.pid"


def test_every_bind_address_and_url_is_loopback():
    p = plan(binaries=WITH_METRICS)
    for component in p.components:
        f = flags(component.argv)
        for key in ("--bind-address", "--advertise-address"):
            if key in f:
                assert f[key] == "127.0.0.1", (component.name, key)
        for key, value in f.items():
            if "urls" in key or key in ("--etcd-servers", "--initial-cluster"):
                for url in value.split(","):
                    url = url.split("=", 1)[-1] if key == "--initial-cluster" else url
                    assert urlparse(url).hostname == "127.0.0.1", (component.name, key, url)
        assert urlparse(component.health_url).hostname == "127.0.0.1"
    assert flags(p.component("kwok").argv)["--server-address"] == "127.0.0.1:20005"


def test_secure_ports_are_the_planned_ones():
    p = plan()
    assert flags(p.component("kube-apiserver").argv)["--secure-port"] == "6443"
    assert flags(p.component("kube-controller-manager").argv)["--secure-port"] == "20003"
    assert flags(p.component("kube-scheduler").argv)["--secure-port"] == "20004"
    etcd = flags(p.component("etcd").argv)
    assert etcd["--listen-client-urls"] == "http://127.0.0.1:20001"
    assert etcd["--listen-peer-urls"] == "http://127.0.0.1:20002"
    assert flags(p.component("kube-apiserver").argv)["--etcd-servers"] == "http://127.0.0.1:20001"
    assert [c.port for c in p.components] == [20001, 6443, 20003, 20004, 20005, 20006]
    operator = flags(p.component("unkai-operator").argv)
    assert operator["--health-port"] == "20006"
    assert operator["--kubeconfig"] == str(STATE / "kubeconfig/operator.kubeconfig")


def test_apiserver_has_service_accounts_rbac_and_waits_on_readyz():
    api = plan().component("kube-apiserver")
    f = flags(api.argv)
    assert f["--service-account-issuer"] == "https://kubernetes.default.svc.cluster.local"
    assert f["--service-account-signing-key-file"] == str(STATE / "pki/sa.key")
    assert f["--service-account-key-file"] == str(STATE / "pki/sa.pub")
    assert f["--client-ca-file"] == str(STATE / "pki/ca.crt")
    assert "RBAC" in f["--authorization-mode"].split(",")
    assert "--enable-admission-plugins" not in f  # the default admission chain
    assert api.health_url == "https://127.0.0.1:6443/readyz"


def test_kwok_manages_only_annotated_nodes_with_its_stages():
    argv = plan().component("kwok").argv
    f = flags(argv)
    assert f["--manage-all-nodes"] == "false"
    assert f["--manage-nodes-with-annotation-selector"] == "kwok.x-k8s.io/node=fake"
    configs = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    assert configs == ["/w/stages.yaml", str(STATE / "config/kwok.yaml")]
    conf = yaml.safe_load(plan().files[STATE / "config/kwok.yaml"])
    assert conf["kind"] == "KwokConfiguration"
    assert conf["options"]["podPlayStageParallelism"] == 16
    assert f["--kubeconfig"] == str(STATE / "kubeconfig/kwok.kubeconfig")


def test_files_and_kubeconfigs():
    p = plan(host="localhost")
    assert p.endpoint == "https://localhost:6443"
    assert p.admin_kubeconfig == STATE / "kubeconfig/admin.kubeconfig"
    servers = {k.cert: k.server for k in p.kubeconfigs}
    assert servers == {
        "admin": "https://localhost:6443",
        "controller-manager": "https://127.0.0.1:6443",
        "scheduler": "https://127.0.0.1:6443",
        "kwok": "https://127.0.0.1:6443",
        "operator": "https://127.0.0.1:6443",
        "metrics-server": "https://127.0.0.1:6443",
    }
    sched = yaml.safe_load(p.files[STATE / "config/kube-scheduler.yaml"])
    assert sched["kind"] == "KubeSchedulerConfiguration"
    assert sched["leaderElection"] == {"leaderElect": False}
    assert Ports.from_json(p.files[STATE / "ports.json"]) == PORTS


def test_a_non_loopback_endpoint_is_refused():
    with pytest.raises(ValueError, match=r"127\.0\.0\.1 only"):
        plan(host="10.0.0.5")
    cp = ControlPlane(name="dev", state_dir=STATE, host="10.0.0.5", binaries=BIN)
    with pytest.raises(DriverError, match="cluster dev"):
        cp.plan(PORTS)


def test_plan_is_pure_and_deterministic():
    assert plan() == plan()


def test_kubeconfig_embeds_credentials():
    text = render_kubeconfig(
        cluster="dev",
        server="https://127.0.0.1:6443",
        user="admin",
        ca_pem=b"CA",
        cert_pem=b"CERT",
        key_pem=b"KEY",
    )
    doc = yaml.safe_load(text)
    assert doc["current-context"] == "admin@dev"
    assert doc["clusters"][0]["cluster"] == {
        "server": "https://127.0.0.1:6443",
        "certificate-authority-data": "Q0E=",
    }
    assert doc["users"][0]["user"]["client-key-data"] == "S0VZ"


def test_ports_json_round_trip_and_errors():
    assert Ports.from_json(PORTS.to_json()) == PORTS
    with pytest.raises(ValueError):
        Ports.from_json('{"apiserver": 1}')


def test_apiserver_encrypts_secrets_with_the_clusters_key_file():
    p = plan()
    f = flags(p.component("kube-apiserver").argv)
    assert f["--encryption-provider-config"] == str(STATE / "pki/encryption-config.yaml")
    assert p.encryption_config == STATE / "pki/encryption-config.yaml"
    assert p.encryption_config not in p.files  # made once, never rewritten by a start


def test_encryption_config_is_secretbox_for_secrets_with_identity_to_read_old_ones():
    key = bytes(range(32))
    doc = yaml.safe_load(render_encryption_config(key))
    assert doc["apiVersion"] == "apiserver.config.k8s.io/v1"
    assert doc["kind"] == "EncryptionConfiguration"
    [entry] = doc["resources"]
    assert entry["resources"] == ["secrets"]
    first, last = entry["providers"]
    assert base64.b64decode(first["secretbox"]["keys"][0]["secret"]) == key
    assert last == {"identity": {}}
    assert encryption_key(render_encryption_config(key)) == key
    with pytest.raises(ValueError, match="32 bytes, not 16"):
        render_encryption_config(bytes(16))


def test_the_key_is_made_once_private_and_kept(tmp_path):
    path = tmp_path / "pki" / "encryption-config.yaml"
    assert ensure_encryption_config(path) is True
    first = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(encryption_key(first)) == 32
    assert ensure_encryption_config(path) is False
    assert path.read_text() == first
    path.chmod(0o644)
    assert ensure_encryption_config(path) is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == first
    other = tmp_path / "other.yaml"
    ensure_encryption_config(other)
    assert encryption_key(other.read_text()) != encryption_key(first)  # a key per cluster


def test_a_damaged_key_file_is_refused_not_replaced(tmp_path):
    path = tmp_path / "encryption-config.yaml"
    path.write_text("kind: EncryptionConfiguration\nresources: []\n")
    with pytest.raises(DriverError) as err:
        ensure_encryption_config(path)
    assert str(err.value) == (
        f"{path} is not the encryption configuration of this cluster's Secrets: it does not"
        " encrypt secrets. The Secrets in etcd can only be read with the key it held:"
        " restore it, or remove the cluster to start afresh"
    )
    assert path.read_text() == "kind: EncryptionConfiguration\nresources: []\n"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "not YAML"),
        ("kind: Config\n", "not an EncryptionConfiguration"),
        ("kind: EncryptionConfiguration\nresources: [x]\n", "does not encrypt secrets"),
        (
            "kind: EncryptionConfiguration\n"
            "resources: [{resources: [secrets], providers: [{identity: {}}]}]\n",
            "not written with a secretbox key",
        ),
        (
            "kind: EncryptionConfiguration\nresources: [{resources: [secrets],"
            " providers: [{secretbox: {keys: [{name: k, secret: c2hvcnQ=}]}}]}]\n",
            "the key is 5 bytes, not 32",
        ),
    ],
)
def test_what_is_not_a_usable_key_file_is_named(text, why):
    with pytest.raises(ValueError, match=why):
        encryption_key(text)


def test_metrics_server_scrapes_kubelets_on_their_internal_ip_behind_the_api_server():
    p = plan(binaries=WITH_METRICS)
    metrics = p.component("metrics-server")
    f = flags(metrics.argv)
    assert f["--secure-port"] == "20007" and metrics.port == 20007
    assert metrics.health_url == "https://127.0.0.1:20007/livez"
    assert f["--kubeconfig"] == str(STATE / "kubeconfig/metrics-server.kubeconfig")
    assert f["--tls-cert-file"] == str(STATE / "pki/metrics-server-serving.crt")
    assert f["--kubelet-preferred-address-types"] == "InternalIP"
    api = flags(p.component("kube-apiserver").argv)
    assert api["--proxy-client-cert-file"] == str(STATE / "pki/front-proxy-client.crt")
    assert api["--requestheader-allowed-names"] == "front-proxy-client"
    assert api["--kubelet-client-certificate"] == str(STATE / "pki/apiserver-kubelet-client.crt")
    serving = {c.name: c for c in p.certs}["metrics-server-serving"]
    assert "metrics-server.kube-system.svc" in serving.dns_names  # what the API server checks


def test_a_ports_json_from_before_metrics_server_still_reads():
    old = json.loads(PORTS.to_json())
    del old["metrics_server"]
    assert Ports.from_json(json.dumps(old)) == replace(PORTS, metrics_server=0)
    with pytest.raises(ValueError, match=r"not a ports\.json"):
        Ports.from_json(json.dumps({k: v for k, v in old.items() if k != "kwok"}))


def test_the_metrics_api_is_an_external_name_service_on_loopback():
    service, api = metrics_objects(port=20007, ca_pem=b"CA")
    assert service["spec"] == {
        "type": "ExternalName",
        "externalName": "localhost",
        "ports": [{"name": "https", "port": 20007, "protocol": "TCP"}],
    }
    assert api["metadata"]["name"] == "v1beta1.metrics.k8s.io"
    assert api["spec"]["service"] == {
        "name": "metrics-server", "namespace": "kube-system", "port": 20007,
    }  # fmt: skip
    assert base64.b64decode(api["spec"]["caBundle"]) == b"CA"
