"""unkai's built-in policy pack: CrossGuard policies an environment turns on by name.

An environment lists the policies it wants and their level (``policies:`` in its file,
:data:`unkai.model.PolicyName`); ``unkai preview`` and ``up`` then hand the engine this
pack beside any ``--policy-pack`` of the project's:

* ``secret-values``: a secret-looking value (by its name, or a random-looking token) in a
  plain field — a container's env or a ConfigMap, a Dockerfile's ``ENV``/``ARG``, an
  instance's cloud-init data — where ``secret_env``/``secrets`` belong;
* ``non-root-with-limits``: every container runs as a user other than root, with CPU
  and memory limits;
* ``pinned-images``: every container image is named by its digest;
* ``no-bridged-nic``: no VM has a NIC bridged onto a host's network;
* ``group-anti-affinity``: no two members of an instance group share a host;
* ``zone-headroom``: each zone keeps a share of its schedulable vCPUs and memory free
  (``settings.zone_headroom_percent``, :data:`DEFAULT_HEADROOM_PERCENT` when unset).

The rules are plain functions (``pack/rules.py``); the engine runs them in the policy
packs' own virtualenv (:func:`unkai.toolchain.ensure_policy_venv`). :func:`prepare_pack`
writes the pack for one run of one environment into the project's ``.unkai/policy/``,
with what a violation needs to name the environment file and key to change.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from unkai._files import atomic_write
from unkai.errors import ConfigError
from unkai.model import Environment

__all__ = [
    "DEFAULT_HEADROOM_PERCENT",
    "HEADROOM_SETTING",
    "PACK_SOURCE",
    "builtin_levels",
    "headroom",
    "mandatory",
    "prepare_pack",
    "project_levels",
    "resource_keys",
]

PACK_SOURCE = Path(__file__).resolve().parent / "pack"
"""The pack's code: ``__main__.py`` (CrossGuard) and ``rules.py`` (the rules)."""


INSTANCE, IMAGE, WORKLOAD = (
    "unkai:compute:Instance", "unkai:containers:ContainerImage", "unkai:kubernetes:Workload"
)  # fmt: skip


def resource_keys(env: Environment) -> dict[str, str]:
    """``<type>::<name>`` of each resource the pack looks at → its environment key.

    An image and a workload may share a name (``api``): the type tells them apart.
    """
    keys: dict[str, str] = {}
    for instance in env.all_instances():
        group = instance.group
        key = f"instance_groups.{group}" if group else f"instances.{instance.name}"
        keys[f"{INSTANCE}::{env.name}-{instance.name}"] = key
    for image in env.container_images:
        keys[f"{IMAGE}::{env.name}-{image}"] = f"container_images.{image}"
    for workload in env.workloads:
        keys[f"{WORKLOAD}::{env.name}-{workload}"] = f"workloads.{workload}"
    return keys


HEADROOM_SETTING = "zone_headroom_percent"
"""The setting (``settings:`` of an environment) that gives ``zone-headroom`` its share."""

DEFAULT_HEADROOM_PERCENT = 20
"""The share of each zone's vCPUs and memory that ``zone-headroom`` keeps free by default."""


def headroom(env: Environment, *, file: str | None = None) -> dict[str, object]:
    """What ``zone-headroom`` checks in ``env``: the share to keep, each host's capacity.

    ``file`` is the environment's file, named by the error.

    Raises:
        ConfigError: ``settings.zone_headroom_percent`` is not a number from 0 to 100.
    """
    percent = env.settings.get(HEADROOM_SETTING, DEFAULT_HEADROOM_PERCENT)
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 <= percent <= 100:
        raise ConfigError(
            "the share of each zone to keep free is a percentage",
            file=file,
            key_path=f"settings.{HEADROOM_SETTING}",
            value=percent,
            allowed="a number from 0 to 100",
        )
    hosts = {
        name: {
            "zone": host.zone,
            "cpus": env.host_pools[host.pool].schedulable_cpus(host),
            "memory_mb": env.host_pools[host.pool].schedulable_memory_mb(host),
        }
        for name, host in sorted(env.hosts.items())
    }
    return {"percent": percent, "hosts": hosts, "key": f"settings.{HEADROOM_SETTING}"}


def mandatory(env: Environment) -> list[str]:
    """The built-in policies whose violation stops ``preview`` and ``up`` in ``env``."""
    return [name for name, level in builtin_levels(env).items() if level == "mandatory"]


def builtin_levels(env: Environment) -> dict[str, str]:
    """The level ``env`` gives each built-in policy it names (project packs' left out)."""
    return {name: level for name, level in env.policies.items() if "/" not in name}


def project_levels(env: Environment, pack: str) -> dict[str, str]:
    """The level ``env`` gives each policy of the project's pack ``pack`` (``pack/<policy>``)."""
    prefix = f"{pack}/"
    return {
        name.removeprefix(prefix): level
        for name, level in env.policies.items()
        if name.startswith(prefix)
    }


def prepare_pack(
    env: Environment,
    *,
    root: Path,
    env_file: str,
    venv: Callable[[], Path],
) -> Path | None:
    """Write the built-in pack for ``env`` and return its folder; None when it has no policy.

    Args:
        env: The environment, its ``policies`` and what it declares.
        root: The project; the pack goes to ``.unkai/policy/<env>/``.
        env_file: The environment's file as the user names it (``environments/prod.yaml``).
        venv: Returns the policy venv (made when missing).
    """
    levels: Mapping[str, str] = {
        n: lvl for n, lvl in builtin_levels(env).items() if lvl != "disabled"
    }
    if not levels:
        return None
    folder = root / ".unkai" / "policy" / env.name
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("__main__.py", "rules.py"):
        shutil.copyfile(PACK_SOURCE / name, folder / name)
    context = {
        "environment": env.name,
        "file": env_file,
        "levels": dict(levels),
        "keys": resource_keys(env),
        "headroom": headroom(env, file=env_file),
    }
    atomic_write(folder / "context.json", json.dumps(context, indent=2, sort_keys=True) + "\n")
    atomic_write(
        folder / "PulumiPolicy.yaml",
        "description: unkai's built-in policies\n"
        f"runtime:\n  name: python\n  options:\n    virtualenv: {venv()}\n",
    )
    return folder
