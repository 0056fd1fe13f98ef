"""The program of a project's stacks: the environment named like the stack, deployed whole."""

from __future__ import annotations

from pathlib import Path

import pulumi

from unkai.components._cloud import Cloud, CloudArgs
from unkai.environments import load_environment
from unkai.errors import UnkaiError
from unkai.model import Environment
from unkai.toolchain import cached_probe, project_root


def deploy_environment(env: Environment | None = None, *, root: Path | None = None) -> Cloud:
    """Deploy one environment of the project as the stack's :class:`Cloud`, and export it.

    The environment is ``env``, or the one named like the stack, loaded from the
    project's ``environments/`` with the stack's ``unkai:overrides`` merged over it. The
    stack config ``unkai up`` sets is read here: ``unkai:accelerator`` (the KVM probe's
    verdict; without it, this machine's probe), ``unkai:sshKeys`` (operator keys added to
    every instance), ``unkai:placement`` (where each VM ran after the last ``up``:
    placement is sticky) and ``unkai:unavailable`` (hosts whose instances move). Each
    secret is read from the config key its ``SecretRef`` names.

    The outputs ``unkai up`` shows are exported: ``environment``, ``hosts``,
    ``instances``, ``instance_groups``, ``container_images``, ``clusters`` and
    ``workloads``.

    Args:
        env: An environment built in Python (default: the stack's, from YAML).
        root: The project (default: the one around the program's folder).

    Raises:
        pulumi.RunError: The environment is invalid or cannot be placed; the message is
            unkai's sentence, without a traceback.
    """
    config = pulumi.Config("unkai")
    try:
        root = root or project_root()
        if env is None:
            env = load_environment(
                pulumi.get_stack(), root=root, overrides=config.get_object("overrides")
            )
        cloud = Cloud(
            env.name,
            CloudArgs(
                env,
                # /dev/kvm can open and still fail a guest, which only the probe notices.
                config.get("accelerator") or cached_probe().accelerator,  # type: ignore[arg-type]
                tuple(config.get_object("sshKeys") or ()),
                placement=config.get_object("placement") or {},
                unavailable=tuple(config.get_object("unavailable") or ()),
                root=root,
            ),
        )
    except UnkaiError as err:
        raise pulumi.RunError(str(err)) from None
    pulumi.export("environment", env.name)
    pulumi.export("hosts", cloud.hosts_summary)
    pulumi.export("instances", cloud.summary)
    pulumi.export("instance_groups", cloud.groups_summary)
    pulumi.export("container_images", cloud.images_summary)
    pulumi.export("clusters", cloud.clusters_summary)
    pulumi.export("workloads", cloud.workloads_summary)
    return cloud
