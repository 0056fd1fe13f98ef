"""What a cluster holds for ``kubeadm join``: the pure objects, the token, the CA hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from unkai.drivers.kubernetes._join import (
    BOOTSTRAP_GROUP,
    BootstrapToken,
    ca_cert_hash,
    join_objects,
    token_secret,
)
from unkai.drivers.kubernetes._pki import CertSpec, issue

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def _ca_pem() -> bytes:
    files = issue([CertSpec("admin", "admin", ("system:masters",), client=True)], now=NOW,
                  cluster="dev")  # fmt: skip
    return files["ca.crt"]


def test_a_token_is_what_kubeadm_accepts_and_never_the_same():
    tokens = {str(BootstrapToken.generate()) for _ in range(50)}
    assert len(tokens) == 50
    assert all(re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", t) for t in tokens)


def test_the_token_secret_authenticates_signs_and_expires():
    token = BootstrapToken("abcdef", "0123456789abcdef")
    secret = token_secret(token, now=NOW, node="apps-vm-0")
    assert secret["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    data = secret["stringData"]
    assert data["token-secret"] == "0123456789abcdef"
    assert data["usage-bootstrap-authentication"] == data["usage-bootstrap-signing"] == "true"
    assert data["auth-extra-groups"] == BOOTSTRAP_GROUP
    assert data["expiration"] == "2026-01-01T13:00:00Z"
    assert "apps-vm-0" in data["description"]


def test_the_ca_hash_is_sha256_of_the_public_key_info():
    pem = _ca_pem()
    der = (
        x509.load_pem_x509_certificate(pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert ca_cert_hash(pem) == "sha256:" + hashlib.sha256(der).hexdigest()


def test_join_objects_hold_the_endpoint_the_ca_and_the_versions():
    pem = _ca_pem()
    objects = join_objects(version="1.36.3", endpoint_host_port="10.0.2.2:6443", ca_pem=pem)
    by_name = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
               for o in objects}  # fmt: skip
    assert len(by_name) == len(objects)
    info = yaml.safe_load(by_name["ConfigMap", "kube-public", "cluster-info"]["data"]["kubeconfig"])
    cluster = info["clusters"][0]["cluster"]
    assert cluster["server"] == "https://10.0.2.2:6443"
    assert info["users"] == []  # nothing secret in a ConfigMap anyone may read
    config = yaml.safe_load(
        by_name["ConfigMap", "kube-system", "kubeadm-config"]["data"]["ClusterConfiguration"]
    )
    assert config["kubernetesVersion"] == "v1.36.3"
    assert config["controlPlaneEndpoint"] == "10.0.2.2:6443"
    kubelet = yaml.safe_load(
        by_name["ConfigMap", "kube-system", "kubelet-config"]["data"]["kubelet"]
    )
    assert kubelet["cgroupDriver"] == "systemd"
    assert kubelet["authentication"]["anonymous"]["enabled"] is False
    # A pod's 10.96.0.1:443 goes where its node reaches the API server.
    api = by_name["EndpointSlice", "default", "kubernetes"]
    assert api["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
    assert api["endpoints"] == [{"addresses": ["10.0.2.2"], "conditions": {"ready": True}}]
    assert api["ports"] == [{"name": "https", "port": 6443, "protocol": "TCP"}]


def test_anonymous_may_read_cluster_info_only_and_tokens_only_what_a_join_needs():
    objects = join_objects(version="1.36.3", endpoint_host_port="h:6443", ca_pem=_ca_pem())
    bindings = [o for o in objects if o["kind"].endswith("Binding")]
    anonymous = [b for b in bindings
                 if any(s["name"] == "system:anonymous" for s in b["subjects"])]  # fmt: skip
    assert [b["roleRef"]["name"] for b in anonymous] == ["kubeadm:bootstrap-signer-clusterinfo"]
    role = next(o for o in objects if o["kind"] == "Role"
                and o["metadata"]["name"] == "kubeadm:bootstrap-signer-clusterinfo")  # fmt: skip
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                              "resourceNames": ["cluster-info"]}]  # fmt: skip
    granted = {b["roleRef"]["name"] for b in bindings
               if any(s["name"] == BOOTSTRAP_GROUP for s in b["subjects"])}  # fmt: skip
    assert granted == {
        "kubeadm:nodes-kubeadm-config",
        "kubeadm:kubelet-config",
        "kubeadm:get-nodes",
        "system:node-bootstrapper",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
    }


def test_the_join_plan_reaches_the_vm_as_unkai_trusting_only_its_printed_keys(tmp_path):
    from pathlib import Path

    from unkai.drivers.kubernetes._join import JoinRequest, join_plan, known_hosts_lines

    request = JoinRequest(
        name="apps-vms-0", pool="vms", ssh_host="127.0.0.1", ssh_port=2299,
        endpoint="10.0.2.2:6443", ca_hash="sha256:" + "ab" * 32, labels={"tier": "web"},
        taints=[{"key": "gpu", "effect": "NoSchedule"}],
    )  # fmt: skip
    known = Path(tmp_path) / "known_hosts"
    plan = join_plan(request, token="abcdef.0123456789abcdef", known_hosts=known)
    assert plan.playbook.name == "k8s-node.yml" and plan.hosts == ("apps-vms-0",)
    inventory = yaml.safe_load(plan.inventory)
    host = inventory["all"]["children"]["k8s_nodes"]["hosts"]["apps-vms-0"]
    assert host["ansible_host"] == "127.0.0.1" and host["ansible_user"] == "unkai"
    assert host["ansible_become"] is True
    extra = plan.extravars
    assert extra["ansible_port"] == 2299
    assert f"UserKnownHostsFile={known}" in extra["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in extra["ansible_ssh_common_args"]
    assert extra["k8s_node_token"] == "abcdef.0123456789abcdef"
    assert extra["k8s_node_control_plane_endpoint"] == "10.0.2.2:6443"
    assert "abcdef.0123456789abcdef" not in plan.inventory  # the token only as a variable
    lines = known_hosts_lines(host="127.0.0.1", port=2299, keys=["ssh-ed25519 AAAA"])
    assert lines == "[127.0.0.1]:2299 ssh-ed25519 AAAA\n"
