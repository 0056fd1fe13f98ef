"""The kubeadm node playbook and the node image's: linted, syntax-checked, the join rendered.

The join itself runs for real against ``local``'s node VM in
``tests/e2e/test_local_cloud.py``; here: ansible-lint's production profile on both
playbooks, ``ansible-playbook --syntax-check``, and the JoinConfiguration the role
templates from its variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ROLE = ROOT / "src/unkai/playbooks" / "roles" / "k8s_node"
IMAGE_ROLE = ROOT / "src/unkai/playbooks" / "images" / "roles" / "k8s_node_image"
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}


def run(*argv: str, cwd: Path = ROOT) -> str:
    proc = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        cwd=cwd, capture_output=True, text=True, timeout=300, check=False, env=ENV,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("playbook", "role"),
    [
        ("src/unkai/playbooks/k8s-node.yml", ROLE),
        ("src/unkai/playbooks/images/k8s-node.yml", IMAGE_ROLE),
    ],
)
def test_lint_production_profile_and_syntax_check(playbook: str, role: Path):
    out = run("ansible-lint", "--profile", "production", playbook, str(role))
    assert "Profile 'production' was required, and it passed" in out
    run("ansible-playbook", "--syntax-check", "-i", "node-1,", playbook)


def test_join_configuration_is_templated_from_the_variables(tmp_path):
    variables = {
        "k8s_node_control_plane_endpoint": "10.0.0.10:6443",
        "k8s_node_token": "abcdef.0123456789abcdef",
        "k8s_node_ca_cert_hashes": ["sha256:" + "ab" * 32],
        "k8s_node_name": "apps-default-0",
        "k8s_node_pool": "default",
        "k8s_node_labels": {"tier": "web"},
        "k8s_node_taints": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}],
        "k8s_node_cri_socket": "unix:///run/containerd/containerd.sock",
        "k8s_node_join_config": "/etc/kubernetes/unkai-join.yaml",
        "ansible_python_interpreter": sys.executable,
    }
    dest = tmp_path / "join.yaml"
    run(
        "ansible", "localhost", "-c", "local", "-i", "localhost,",
        "-m", "ansible.builtin.template",
        "-a", f"src={ROLE / 'templates' / 'join-configuration.yaml.j2'} dest={dest}",
        "-e", json.dumps(variables),
    )  # fmt: skip
    config = yaml.safe_load(dest.read_text())
    assert config["kind"] == "JoinConfiguration"
    assert config["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": "10.0.0.10:6443",
        "token": "abcdef.0123456789abcdef",
        "caCertHashes": ["sha256:" + "ab" * 32],
    }
    registration = config["nodeRegistration"]
    assert registration["name"] == "apps-default-0"
    assert registration["taints"] == variables["k8s_node_taints"]
    assert registration["kubeletExtraArgs"] == [
        {"name": "node-labels", "value": "unkai.dev/node-pool=default,tier=web"}
    ]
