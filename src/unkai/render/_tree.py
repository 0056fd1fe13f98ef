"""The whole rendered tree of an environment, and the one function that writes it."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile
import xml.parsers.expat
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from unkai.errors import ConfigError, RenderError
from unkai.model import Environment, Instance
from unkai.render._ansible import render_host_vars, render_inventory
from unkai.render._cloudinit import render_cloud_init
from unkai.render._docker import image_reference, render_dockerfile
from unkai.render._groups import instance_group_file, render_instance_group
from unkai.render._index import env_index
from unkai.render._jinja import Templates, default_templates
from unkai.render._kubernetes import node_pool_file, render_manifests, render_node_pool
from unkai.render._libvirt import (
    Accelerator,
    instance_mac,
    owner,
    render_domain_xml,
    render_network_xml,
)
from unkai.render.filters import content_hash

__all__ = ["INDEX_FILE", "render_index", "render_tree", "with_keys", "write_tree"]

INDEX_FILE = PurePosixPath("index.json")
"""The file of a rendered tree that maps every other file's path to its SHA-256."""


def render_index(tree: Mapping[PurePosixPath, str]) -> str:
    """Render ``index.json``: every path of ``tree`` (except the index) → its content hash.

    Args:
        tree: Rendered files by relative path.

    Returns:
        JSON text with sorted keys, two-space indentation and a final newline.
    """
    hashes = {str(path): content_hash(text) for path, text in tree.items() if path != INDEX_FILE}
    return json.dumps(dict(sorted(hashes.items())), indent=2) + "\n"


def _check_macs(env: Environment) -> None:
    seen: dict[tuple[str, str], str] = {}
    for instance in env_index(env).instances:
        for network in instance.networks:
            mac = instance_mac(owner(env), instance.name, network)
            other = seen.setdefault((network, mac), instance.name)
            if other != instance.name:
                raise RenderError(
                    f"instances {other!r} and {instance.name!r} would get the same MAC {mac}"
                    f" on network {network!r}; rename one of them"
                )


def _check_well_formed(tree: Mapping[PurePosixPath, str]) -> None:
    for path, text in tree.items():
        try:
            if path.suffix == ".xml":
                # expat alone: well-formedness without building a tree.
                xml.parsers.expat.ParserCreate().Parse(text, True)
            elif path.suffix == ".json":
                json.loads(text)
        except (xml.parsers.expat.ExpatError, ValueError) as err:
            raise RenderError(f"{path}: rendered text is not well-formed: {err}") from err


def with_keys(instance: Instance, ssh_keys: Sequence[str]) -> Instance:
    """``instance`` with ``ssh_keys`` authorised after its own (the operator's keys).

    What ``unkai render`` and deploy both do to every instance, so the rendered
    user-data is the applied one.

    Args:
        instance: An instance of the environment.
        ssh_keys: Public keys to add.

    Returns:
        The instance, or a copy with the keys added.
    """
    if not ssh_keys:
        return instance
    return instance.model_copy(update={"ssh_keys": (*instance.ssh_keys, *ssh_keys)})


def render_tree(
    env: Environment,
    *,
    accelerator: Accelerator,
    templates: Templates | None = None,
    ssh_keys: Sequence[str] = (),
) -> dict[PurePosixPath, str]:
    """Render every artifact of an environment, one folder per kind, plus ``index.json``.

    Paths::

        libvirt/domains/<instance>.xml
        libvirt/networks/<network>.xml          (nat, isolated and bridged networks)
        cloud-init/<instance>/{user-data,meta-data,network-config}
        docker/<image>/Dockerfile
        ansible/inventory.yml
        ansible/host_vars/<host>.yml
        kubernetes/<cluster>/<workload>/{deployment,service,hpa,pdb}.yaml
        kubernetes/<cluster>/nodepool-<pool>.yaml     (simulated pools)
        kubernetes/<management cluster>/instancegroup-<group>.yaml
        index.json

    Everything is rendered and checked in memory (XML and JSON well-formed, MAC
    addresses unique per network) before anything is returned, so a failure leaves no
    partial result. The same environment, accelerator and templates always give the
    same bytes. Secret values never appear, only references.

    Args:
        env: The environment.
        accelerator: ``kvm`` or ``tcg`` for the domain XML.
        templates: Where templates come from (default: the built-ins).
        ssh_keys: Public keys authorised on every instance besides its own (the
            project's operator key, as ``unkai up`` adds it).

    Returns:
        Text by relative path, in path order.

    Raises:
        RenderError: Any artifact failed to render or check.
    """
    templates = templates or default_templates()
    tree: dict[PurePosixPath, str] = {}
    for indexed in env_index(env).instances:
        instance = with_keys(indexed, ssh_keys)
        tree[PurePosixPath("libvirt/domains", f"{instance.name}.xml")] = render_domain_xml(
            instance, env=env, accelerator=accelerator, templates=templates
        )
        for name, text in render_cloud_init(instance, env, templates=templates).items():
            tree[PurePosixPath("cloud-init", instance.name, name)] = text
    for network in env.networks.values():
        if network.mode != "user":
            tree[PurePosixPath("libvirt/networks", f"{network.name}.xml")] = render_network_xml(
                network, environment=owner(env), templates=templates
            )
    for image in env.container_images.values():
        tree[PurePosixPath("docker", image.name, "Dockerfile")] = render_dockerfile(
            image, env, templates=templates
        )
    tree[PurePosixPath("ansible/inventory.yml")] = render_inventory(env, templates=templates)
    for host in env.hosts.values():
        tree[PurePosixPath("ansible/host_vars", f"{host.name}.yml")] = render_host_vars(
            host, env, accelerator=accelerator, templates=templates
        )
    references = {
        name: image_reference(image, env, templates=templates)
        for name, image in env.container_images.items()
    }
    for workload in env.workloads.values():
        manifests = render_manifests(
            workload, env, image_ref=references[workload.image], templates=templates
        )
        for file, text in manifests.items():
            tree[PurePosixPath("kubernetes", workload.cluster, workload.name, file)] = text
    for cluster in env.clusters.values():
        # A vm pool's nodes are instances: their domains and cloud-init above. The
        # operator keeps a vm pool (with a management cluster) from its object too.
        kept = env.management_cluster is not None
        for pool in (p for p in cluster.node_pools if p.kind == "simulated" or kept):
            tree[PurePosixPath(node_pool_file(cluster.name, pool.name))] = render_node_pool(
                cluster.name, pool, env, templates=templates
            )
    if env.management_cluster is not None:
        for group in env.instance_groups.values():
            path = PurePosixPath(instance_group_file(env.management_cluster, group.name))
            tree[path] = render_instance_group(env, group)
    _check_macs(env)
    _check_well_formed(tree)
    tree[INDEX_FILE] = render_index(tree)
    return dict(sorted(tree.items()))


def _check_paths(tree: Mapping[PurePosixPath, str]) -> None:
    files = set()
    for path in tree:
        if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts):
            raise RenderError(f"{str(path)!r} is not a relative path inside the output tree")
        files.add(path)
    for path in files:
        for parent in path.parents:
            if parent in files:
                raise RenderError(f"{parent} is both a file and the folder of {path}")


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
    """Atomically swap two paths with Linux renameat2(RENAME_EXCHANGE); False if unsupported."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    return bool(result == 0)


def _write_file(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as stream:
        stream.write(text)


def _sync_filesystem(folder: Path) -> None:
    """Flush everything written under ``folder`` to disk before it is swapped in.

    One ``syncfs(2)`` of the folder's filesystem instead of an fsync per file: a tree of
    a thousand instances has thousands of files, and per-file fsyncs took seconds.
    """
    name = ctypes.util.find_library("c")
    syncfs = getattr(ctypes.CDLL(name, use_errno=True), "syncfs", None) if name else None
    if syncfs is None:
        os.sync()
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _check_out_dir(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ConfigError(
            "output path exists and is not a folder",
            value=str(out_dir),
            allowed="a missing or empty folder, or the output of an earlier `unkai render`",
        )
    if any(out_dir.iterdir()) and not (out_dir / INDEX_FILE).is_file():
        raise ConfigError(
            f"output folder is not empty and has no {INDEX_FILE}: refusing to replace it",
            value=str(out_dir),
            allowed="a missing or empty folder, or the output of an earlier `unkai render`",
        )


def write_tree(tree: Mapping[PurePosixPath, str], out_dir: Path) -> None:
    """Write a rendered tree to ``out_dir``, replacing what was there, atomically.

    The files are written (UTF-8, bytes exactly as rendered) into a new folder beside
    ``out_dir`` and flushed to disk (one ``syncfs``); then that folder takes the place
    of ``out_dir`` (with ``renameat2(RENAME_EXCHANGE)`` where available, else two
    renames), and the old content is removed. Readers see the old tree or the new one,
    never a mix and never a half-written file. This is the only function of
    :mod:`unkai.render` that writes.

    Args:
        tree: Text by relative path, as returned by :func:`render_tree`.
        out_dir: The output folder. It may be missing, empty, or an earlier output
            (it has ``index.json``); anything else is refused.

    Raises:
        RenderError: A path is absolute, escapes the tree or clashes with a folder, or
            writing failed (the new folder is removed; ``out_dir`` is untouched).
        ConfigError: ``out_dir`` exists and is neither empty nor an earlier output.
    """
    _check_paths(tree)
    out_dir = Path(os.path.abspath(out_dir))
    _check_out_dir(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".new", dir=out_dir.parent)
        )
    except OSError as err:
        raise RenderError(f"cannot create the output folder beside {out_dir}: {err}") from err
    try:
        staging.chmod(0o755)
        for path, text in sorted(tree.items()):
            _write_file(staging.joinpath(*path.parts), text)
        _sync_filesystem(staging)
        if not out_dir.exists():
            os.rename(staging, out_dir)
            return
        if not _exchange(staging, out_dir):
            retired = Path(
                tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent)
            )
            os.rename(out_dir, retired / "tree")
            try:
                os.rename(staging, out_dir)
            except OSError:
                os.rename(retired / "tree", out_dir)  # put the old tree back
                shutil.rmtree(retired, ignore_errors=True)
                raise
            staging = retired
        shutil.rmtree(staging, ignore_errors=True)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise RenderError(f"cannot write the rendered tree to {out_dir}: {err}") from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
