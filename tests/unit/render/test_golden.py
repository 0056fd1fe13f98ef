"""Golden files of representative artifacts (pytest-regressions).

Regenerate on purpose only, with ``pytest tests/unit/render/test_golden.py --force-regen``,
and review the diff like code.
"""

from __future__ import annotations

from typing import Any

import pytest

from unkai.model import Environment
from unkai.render import (
    render_dockerfile,
    render_domain_xml,
    render_host_vars,
    render_inventory,
    render_manifests,
    render_meta_data,
    render_network_config,
    render_network_xml,
    render_user_data,
)


def _instance(env: Environment, name: str) -> Any:
    return next(i for i in env.all_instances() if i.name == name)


@pytest.mark.parametrize(
    ("vm", "accelerator"),
    [
        ("db", "kvm"),  # user network (qemu:commandline) + nat network, data disk, secret ref
        ("db", "tcg"),
        ("web-0", "kvm"),  # group member on a user network only
        ("gw", "kvm"),  # bridged + isolated networks, scsi disk
    ],
)
def test_domain_xml(file_regression: Any, env: Environment, vm: str, accelerator: str) -> None:
    text = render_domain_xml(_instance(env, vm), env=env, accelerator=accelerator)  # type: ignore[arg-type]
    file_regression.check(text, extension=".xml", basename=f"domain-{vm}-{accelerator}")


@pytest.mark.parametrize("network", ["backend", "storage", "uplink"])
def test_network_xml(file_regression: Any, env: Environment, network: str) -> None:
    text = render_network_xml(env.networks[network], environment=env.name)
    file_regression.check(text, extension=".xml", basename=f"network-{network}")


def test_cloud_init(file_regression: Any, env: Environment) -> None:
    db = _instance(env, "db")
    file_regression.check(render_user_data(db, env), extension=".yaml", basename="user-data-db")
    file_regression.check(render_meta_data(db, env), extension=".yaml", basename="meta-data-db")
    file_regression.check(
        render_network_config(db, env), extension=".yaml", basename="network-config-db"
    )


@pytest.mark.parametrize("image", ["api", "worker"])
def test_dockerfile(file_regression: Any, env: Environment, image: str) -> None:
    text = render_dockerfile(env.container_images[image], env)
    file_regression.check(text, extension=".Dockerfile", basename=f"dockerfile-{image}")


def test_ansible(file_regression: Any, env: Environment) -> None:
    file_regression.check(render_inventory(env), extension=".yml", basename="inventory")
    file_regression.check(
        render_host_vars(env.hosts["kvm-2"], env, accelerator="kvm"),
        extension=".yml",
        basename="host-vars-kvm-2",
    )


@pytest.mark.parametrize("workload", ["api", "worker"])
def test_manifests(file_regression: Any, env: Environment, workload: str) -> None:
    for name, text in render_manifests(env.workloads[workload], env).items():
        stem = name.removesuffix(".yaml")
        file_regression.check(text, extension=".yaml", basename=f"k8s-{workload}-{stem}")
