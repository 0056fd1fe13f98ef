"""Files an environment names, checked when it is loaded: before anything renders or runs."""

from __future__ import annotations

import difflib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from unkai.model import Environment

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class MissingFile:
    """A file the environment refers to that is not there.

    Attributes:
        path: Key path of the reference (``container_images.web.dockerfile_template``).
        message: What is missing, and where unkai looked.
        value: The reference as written.
        allowed: The files that are there (the closest first), or how to make one.
    """

    path: KeyPath
    message: str
    value: str
    allowed: str


def _choices(value: str, names: list[str]) -> str:
    close = difflib.get_close_matches(value, names, n=3, cutoff=0.6)
    rest = [n for n in names if n not in close]
    shown = [*(f"{n} (did you mean it?)" for n in close), *rest][:8]
    return "one of " + ", ".join(shown) if shown else "none exists yet"


def missing_files(env: Environment, root: Path) -> list[MissingFile]:
    """The Dockerfile templates and image playbooks ``env`` names that do not exist.

    A ``dockerfile_template`` is looked up as ``docker/<name>`` in the project's
    ``templates/`` and then unkai's built-ins (what render and deploy use); a VM image's
    ``playbook`` under the project root.

    Args:
        env: The validated environment.
        root: The project root.
    """
    found: list[MissingFile] = []
    # The search path of unkai.render.Templates: the project's folder, then the built-ins
    # (this layer sits below render, so it names the two folders itself).
    search_path = (root / "templates", Path(str(importlib.resources.files("unkai"))) / "templates")
    available = sorted({p.name for folder in search_path for p in (folder / "docker").glob("*.j2")})
    for name, image in sorted(env.container_images.items()):
        relative = f"docker/{image.dockerfile_template}"
        if not any((folder / relative).is_file() for folder in search_path):
            looked = ", ".join(str(folder / "docker") for folder in search_path)
            found.append(
                MissingFile(
                    ("container_images", name, "dockerfile_template"),
                    f"no such Dockerfile template; looked in {looked}",
                    image.dockerfile_template,
                    _choices(image.dockerfile_template, available),
                )
            )
    playbooks = sorted(
        str(p.relative_to(root)) for p in (root / "playbooks").rglob("*.yml") if p.is_file()
    ) if (root / "playbooks").is_dir() else []  # fmt: skip
    for name, vm_image in sorted(env.vm_images.items()):
        if vm_image.playbook is not None and not (root / vm_image.playbook).is_file():
            found.append(
                MissingFile(
                    ("vm_images", name, "playbook"),
                    f"no such playbook under the project {root}",
                    vm_image.playbook,
                    _choices(vm_image.playbook, playbooks),
                )
            )
    return found
