"""Versions an environment asks for that unkai's toolchain cannot build, found at load time.

A cluster runs the Kubernetes binaries unkai builds from the version ``toolchain.toml``
pins, and a node image bakes them; any other version would fail only when ``up`` starts
the control plane or builds the image. The loader
refuses it first, with the versions there are.
"""

from __future__ import annotations

from dataclasses import dataclass

from unkai._pins import pinned_version
from unkai.environments._errors import KeyPath
from unkai.model import Environment

__all__ = ["Unbuildable", "kubernetes_versions", "unbuildable_versions"]


@dataclass(frozen=True)
class Unbuildable:
    """A version the toolchain cannot build, where the environment asks for it."""

    path: KeyPath
    message: str
    value: str
    allowed: str


def kubernetes_versions() -> tuple[str, ...]:
    """The Kubernetes versions unkai's toolchain builds: the one its ``toolchain.toml`` pins."""
    return (pinned_version("kubernetes"),)


def unbuildable_versions(env: Environment) -> list[Unbuildable]:
    """Each cluster and node image of ``env`` asking for a Kubernetes version not built."""
    available = kubernetes_versions()
    asked: list[tuple[KeyPath, str]] = [
        (("clusters", name, "kubernetes_version"), cluster.kubernetes_version)
        for name, cluster in sorted(env.clusters.items())
    ]
    asked += [
        (("vm_images", name, "kubernetes"), image.kubernetes)
        for name, image in sorted(env.vm_images.items())
        if image.kubernetes is not None
    ]
    return [
        Unbuildable(
            path=path,
            message=f"unkai's toolchain does not build Kubernetes {version}",
            value=version,
            allowed=", ".join(available) + " (the versions unkai's toolchain.toml pins)",
        )
        for path, version in asked
        if version not in available
    ]
