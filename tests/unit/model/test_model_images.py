from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from unkai.model import DEBIAN_BASE_IMAGE, ContainerImage, VmImage


def test_vm_image_defaults_and_sorted_unique_packages() -> None:
    image = VmImage(name="debian-12-web", version="1.0", packages=("nginx", "curl", "nginx"))
    assert image.base_os == "debian-12"
    assert image.disk_gb == 10
    assert image.packages == ("curl", "nginx")
    assert image.playbook is None and image.kernel is None


def test_vm_image_with_playbook_and_direct_boot() -> None:
    image = VmImage(
        name="debian-12-db",
        version="2024.06.1",
        playbook="playbooks/db.yml",
        kernel="boot/vmlinuz",
        initrd="boot/initrd.img",
        kernel_cmdline="console=ttyS0 root=/dev/vda1",
    )
    assert VmImage.model_validate(image.model_dump(mode="json")) == image


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"version": "1 0"}, "is not a version"),
        ({"packages": ["Nginx"]}, "is not a Debian package name"),
        ({"playbook": "/etc/site.yml"}, "a normalised relative POSIX path"),
        ({"playbook": "../site.yml"}, "a normalised relative POSIX path"),
        ({"kernel": "boot//vmlinuz"}, "a normalised relative POSIX path"),
        ({"initrd": "boot/initrd.img"}, "initrd and kernel_cmdline need kernel"),
        ({"base_os": "ubuntu-24.04"}, "'debian-12'"),
        ({"disk_gb": 0}, "greater than or equal to 1"),
        ({"kubernetes": "v1.36.3"}, "is not a Kubernetes version"),
        ({"kubernetes": "1.36.3", "playbook": "site.yml"}, "bakes unkai's node playbook"),
    ],
)
def test_vm_image_rejects(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        VmImage.model_validate({"name": "img", "version": "1", **fields})
    assert fragment in str(info.value)


def test_container_image_defaults() -> None:
    image = ContainerImage(
        name="api", dockerfile_template="app.Dockerfile.j2", variables={"b": "2", "a": "1"}
    )
    assert image.base_image == DEBIAN_BASE_IMAGE == "unkai/debian:12"
    assert image.tag_policy == "content-hash"
    assert image.registry is None
    assert image.packages == ()
    assert list(image.variables) == ["a", "b"]
    with_packages = ContainerImage(
        name="api", dockerfile_template="a.j2", packages=["python3", "curl", "python3"]
    )
    assert with_packages.packages == ("curl", "python3")


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"dockerfile_template": "Dockerfile"}, "ending in '.j2'"),
        ({"dockerfile_template": "sub/app.Dockerfile.j2"}, "a bare file name"),
        ({"variables": {"1x": "y"}}, "is not a template variable name"),
        ({"base_image": "Not A Reference"}, "is not an image reference"),
        ({"registry": "https://registry.example"}, "is not a registry"),
        ({"tag_policy": "latest"}, "'content-hash'"),
        ({"packages": ["Python3"]}, "'Python3' is not a Debian package name"),
        (
            {"packages": ["python3"], "base_image": "debian:12"},
            "this image starts FROM 'debian:12'; allowed: packages with the default base_image",
        ),
    ],
)
def test_container_image_rejects(fields: dict[str, Any], fragment: str) -> None:
    data = {"name": "api", "dockerfile_template": "app.Dockerfile.j2", **fields}
    with pytest.raises(ValidationError) as info:
        ContainerImage.model_validate(data)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "ref", ["debian:12", "registry.example:5000/team/app:1.2", "unkai/debian:12@sha256:" + "a" * 64]
)
def test_container_base_image_accepts_references(ref: str) -> None:
    assert ContainerImage(name="a", dockerfile_template="a.j2", base_image=ref).base_image == ref
