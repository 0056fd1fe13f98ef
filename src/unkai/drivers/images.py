"""Bootable Debian images built from Debian packages, content-addressed and cached.

One rootfs, built by ``mmdebstrap`` from the Debian archive (no cloud image is
downloaded), becomes both a VM disk (an ext4 filesystem made with ``mkfs.ext4 -d``,
converted to a zstd-compressed qcow2, booted directly with the image's own kernel and
initrd) and the Docker base image (``docker import`` of the same tree without kernel and
modules).

A custom image bakes an Ansible playbook in (:attr:`ImageSpec.playbook`): a last
``--customize-hook`` of mmdebstrap (:func:`bake_hook`) runs unkai's own
``ansible-playbook`` on the build host against the finished tree through the
``unkai_chroot`` connection (``drivers/ansible_plugins/``), before the tarball, and so
the disk, are made. Modules run inside the tree with its own ``/usr/bin/python3``; while
hooks run, mmdebstrap has ``/proc``, ``/sys`` and ``/dev`` mounted and apt configured for
the mirror, so ``ansible.builtin.apt`` installs from Debian. Nothing of the host is
mounted into the image, and no collection or Galaxy content is needed. A baked image
gets :data:`BAKE_PACKAGES` (``python3-apt`` for the apt module) added to its packages.

The plan (:class:`ImageSpec`, :func:`mmdebstrap_argv`, :func:`bake_hook`,
:func:`disk_argvs`) is pure; the build (:func:`build_image`) runs it into
``<cache>/images/<digest>/``. An unchanged spec has the same digest and is never
rebuilt; a baked image's digest covers the playbook's content
(:func:`unkai.render.playbook_digest`), never its path.

A tree that only ever runs as a container (a simulated hypervisor host, the base of
unkai's container images) needs neither kernel nor disk: :class:`RootfsSpec` names its
packages, files and hooks, and :func:`build_rootfs` makes just the tarball, cached in
``<cache>/rootfs/<digest>/``, the same way (same mmdebstrap invocation, same atomic
rename). A slim tree (:attr:`RootfsSpec.slim`) leaves out what no container reads:
documentation, manuals, locales, apt's lists and the ``usrmerge`` package with the Perl
it pulls in (mmdebstrap's ``merged-usr`` hook merges ``/usr`` without it).

The cache does not grow without end: each use of an entry marks it used (its manifest's
modification time), and each build removes the entries of its kind that
:func:`stale_entries` names: those unused for :data:`CACHE_IDLE` seconds, except the
:data:`CACHE_KEEP` most recently used of each name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unkai._files import file_lock, try_lock
from unkai.drivers._run import run
from unkai.model import DEBIAN_MIRROR

# Bump when the way images are built changes, so that cached images are rebuilt.
BUILDER_VERSION = "1"

DISK_ENCODING = "qcow2-zstd"
"""How a VM image's disk is stored, part of its digest: qcow2 with zstd-compressed
clusters. The ``local`` Debian image's disk is 162 MiB instead of 467 (2.2 s more to
make; zlib takes 12 s for 166 MiB), which the cache, every host's storage pool and each
upload to a host save; a VM backed by it boots as fast under TCG (26.1 to 26.5 s against
26.4 to 27.5 s, raw QEMU). Its overlays are not compressed: only the image's own clusters
are read through zstd."""


# What every unkai VM image needs to boot, run cloud-init and accept SSH.
BASE_PACKAGES = (
    "systemd-sysv",
    "udev",
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "cloud-init",
    "openssh-server",
    "ifupdown",
    "isc-dhcp-client",
    "netbase",
    "sudo",
    "iproute2",
    "procps",
    "e2fsprogs",
    "util-linux",
    "python3",
)

# Files written into the rootfs before it is packed (path, content).
ROOTFS_FILES = (
    ("etc/fstab", "LABEL=rootfs / ext4 defaults,errors=remount-ro 0 1\n"),
    (
        "etc/cloud/cloud.cfg.d/90-unkai.cfg",
        "# unkai images read their cloud-init data from a NoCloud seed ISO only.\n"
        "datasource_list: [NoCloud, None]\n"
        "locale: C.UTF-8\n",
    ),
    ("etc/hostname", ""),
    ("etc/machine-id", ""),
)

# What a baked playbook's modules need inside the image: ansible.builtin.apt imports apt.
BAKE_PACKAGES = ("python3-apt",)

ANSIBLE_PLUGINS = Path(__file__).parent / "ansible_plugins"
"""Ansible plugins unkai ships (the ``unkai_chroot`` connection)."""

# Ansible's temporary files inside the tree during the bake; removed afterwards.
_BAKE_TMP = "/tmp/.unkai-ansible"

# --- the lean profile -----------------------------------------------------------------
# Measured under TCG with 1 vCPU (a raw QEMU boot of the same disk, side by side): the
# default image reaches "cloud-init finished" in about 53 s, of which four Python starts
# of cloud-init (one per stage) take over 25 s, RSA and ECDSA host keys several more, and
# units nothing needs (e2scrub, binfmt, timers) compete for the one CPU. The lean image
# runs cloud-init's modules unkai needs in one stage after the network (cloud-config is
# masked; cloud-final only records the end, after the "finished" line), makes an ed25519
# host key only, masks those units and boots a small initramfs of the virtio and ext4
# modules: about 29 s. Its initramfs is made once, small, at the end of the build: while
# the packages install, update-initramfs is diverted to /bin/true (the kernel's own
# MODULES=most initramfs took 11 s of a 55 s build, only to be made again).

LEAN_CLOUD_CFG = """\
# unkai lean profile: the modules unkai's instances need, in the init stage only
# (cloud-config.service is masked; cloud-final.service runs no module and only records
# that cloud-init is done, for `cloud-init status`).
datasource_list: [NoCloud]
ssh_genkeytypes: [ed25519]
cloud_init_modules:
  - bootcmd
  - write-files
  - growpart
  - resizefs
  - mounts
  - set_hostname
  - update_hostname
  - update_etc_hosts
  - users-groups
  - ssh
  - set-passwords
  - runcmd
  - write-files-deferred
  - scripts-per-once
  - scripts-per-boot
  - scripts-per-instance
  - scripts-user
  - keys-to-console
  - final-message
cloud_config_modules: []
cloud_final_modules: []
"""

LEAN_MASKED_UNITS = (
    "apt-daily-upgrade.timer",
    "apt-daily.timer",
    "cloud-config.service",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-binfmt.service",
)

# What the initramfs of a lean image loads: the root disk's bus drivers and ext4.
LEAN_INITRAMFS_MODULES = ("ahci", "ext4", "sd_mod", "virtio_blk", "virtio_pci", "virtio_scsi")


_UPDATE_INITRAMFS = "/usr/sbin/update-initramfs"

LEAN_ESSENTIAL_HOOKS = (
    # Before the kernel and initramfs-tools are installed: no initramfs while packages
    # install (the lean one is made once, by the last of lean_hooks()).
    f'chroot "$1" dpkg-divert --quiet --local --rename --add {_UPDATE_INITRAMFS}'
    f' && ln -s /bin/true "$1{_UPDATE_INITRAMFS}"',
)
"""The mmdebstrap ``--essential-hook`` commands of a lean image (``$1`` is the tree)."""


def lean_hooks() -> list[str]:
    """The mmdebstrap customize hooks (``$1`` is the tree) that make an image lean; pure.

    They follow :data:`LEAN_ESSENTIAL_HOOKS`: the first puts update-initramfs back.
    """
    cfg = "etc/cloud/cloud.cfg.d/91-unkai-lean.cfg"
    masks = " ".join(LEAN_MASKED_UNITS)
    modules = "\\n".join(LEAN_INITRAMFS_MODULES)
    conf = '"$1/etc/initramfs-tools/initramfs.conf"'
    return [
        f'rm "$1{_UPDATE_INITRAMFS}"'
        f' && chroot "$1" dpkg-divert --quiet --local --rename --remove {_UPDATE_INITRAMFS}',
        f'printf %s {_sh_quote(LEAN_CLOUD_CFG)} > "$1/{cfg}"',
        f'for unit in {masks}; do ln -sf /dev/null "$1/etc/systemd/system/$unit"; done',
        f"sed -i -e 's/^MODULES=.*/MODULES=list/' -e 's/^COMPRESS=.*/COMPRESS=gzip/' {conf}",
        f'printf "{modules}\\n" >> "$1/etc/initramfs-tools/modules"',
        'chroot "$1" update-initramfs -c -k all',
    ]


@dataclass(frozen=True)
class ImageSpec:
    """What an image is built from; its digest names it in the cache and the pool.

    Attributes:
        name: Image family (``debian-12``).
        version: The family's version label.
        suite: Debian suite (``bookworm`` for Debian 12).
        packages: Packages beyond :data:`BASE_PACKAGES`.
        disk_gb: Size of the root filesystem.
        mirror: The Debian archive.
        playbook_digest: sha256 of a playbook baked in, if any (its content, not its path;
            :func:`unkai.render.playbook_digest`). Part of the digest.
        playbook: Absolute path of that playbook on the build host. Not part of the
            digest: moving a checkout does not rebuild, editing the playbook does.
        profile: ``default`` or ``lean`` (:func:`lean_hooks`). Part of the digest when
            lean; a default image's digest has no profile in it.
        node: The versions a node image bakes (``kubernetes=1.36.3 containerd=2.4.2``).
            Part of the digest when set, beside the node playbook's own digest.
        bake_vars: Further variables for the playbook, ``(name, value)`` pairs: where
            this machine keeps what it copies in (the node's binaries). Not part of the
            digest: the same versions built elsewhere are the same image.
    """

    name: str
    version: str
    suite: str = "bookworm"
    packages: tuple[str, ...] = ()
    disk_gb: int = 4
    mirror: str = DEBIAN_MIRROR
    playbook_digest: str | None = None
    builder: str = field(default=BUILDER_VERSION)
    playbook: str | None = None
    profile: str = "default"
    node: str | None = None
    bake_vars: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if (self.playbook is None) != (self.playbook_digest is None):
            from unkai.errors import ConfigError

            raise ConfigError(
                "a baked image needs both the playbook's path and its content digest",
                key_path="playbook",
                value=self.playbook,
            )

    def all_packages(self) -> tuple[str, ...]:
        """Base and extra packages (and :data:`BAKE_PACKAGES` when baked), sorted, unique."""
        bake = BAKE_PACKAGES if self.playbook_digest is not None else ()
        return tuple(sorted({*BASE_PACKAGES, *bake, *self.packages}))

    def unbaked(self) -> ImageSpec:
        """The same image without the playbook: the plain rootfs (the container base)."""
        return dataclasses.replace(self, playbook=None, playbook_digest=None)

    def digest(self) -> str:
        """sha256 of the canonical JSON of the spec: the image's identity."""
        data = {**asdict(self), "packages": list(self.all_packages()), "disk": DISK_ENCODING}
        # Where the playbook lies is no part of what the image is; its content is.
        del data["playbook"]
        del data["bake_vars"]
        if self.node is None:
            del data["node"]  # other images keep the digests (and caches) they have
        if self.profile == "default":
            del data["profile"]  # default images keep the digests (and caches) they have
        else:
            # What makes an image lean is part of it: a changed hook builds it anew.
            lean = [*LEAN_ESSENTIAL_HOOKS, *lean_hooks()]
            hooks = hashlib.sha256(json.dumps(lean).encode()).hexdigest()[:16]
            data["profile"] = f"{self.profile}:{hooks}"
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class BuiltImage:
    """An image in the cache.

    Attributes:
        digest: The spec's digest.
        folder: Where its files are.
        disk: The qcow2 root disk.
        kernel: The kernel to boot directly.
        initrd: Its initramfs.
        rootfs: The rootfs tarball (for ``docker import``).
        build_seconds: How long the build took (0 when it came from the cache).
    """

    digest: str
    folder: Path
    disk: Path
    kernel: Path
    initrd: Path
    rootfs: Path
    build_seconds: float = 0.0


def mmdebstrap_argv(spec: ImageSpec, out_tar: Path) -> list[str]:
    """The ``mmdebstrap`` command that builds the rootfs tarball of ``spec``."""
    hooks = [f'printf %s {_sh_quote(content)} > "$1/{rel}"' for rel, content in ROOTFS_FILES]
    if spec.playbook is not None:
        hooks.append(bake_hook(spec))
    if spec.profile == "lean":
        hooks.extend(lean_hooks())
    # Host keys made at build time would be shared by every VM: cloud-init makes new ones.
    hooks.append(_REMOVE_HOST_KEYS)
    lean = spec.profile == "lean"
    return _mmdebstrap(
        packages=spec.all_packages(),
        hooks=hooks,
        suite=spec.suite,
        out_tar=out_tar,
        mirror=spec.mirror,
        options=[f"--essential-hook={hook}" for hook in LEAN_ESSENTIAL_HOOKS] if lean else (),
    )


_REMOVE_HOST_KEYS = 'rm -f "$1"/etc/ssh/ssh_host_*'


def _mmdebstrap(
    *,
    packages: Sequence[str],
    hooks: Sequence[str],
    suite: str,
    out_tar: Path,
    mirror: str,
    options: Sequence[str] = (),
) -> list[str]:
    """The one mmdebstrap invocation: minbase, root mode, a tarball, customize hooks.

    ``options`` go before the hooks (:data:`SLIM_OPTIONS` for a slim tree).
    """
    return [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--format=tar",
        *([f"--include={','.join(packages)}"] if packages else []),
        *options,
        *(arg for hook in hooks for arg in ("--customize-hook", hook)),
        suite,
        str(out_tar),
        mirror,
    ]


def bake_hook(spec: ImageSpec, *, ansible_playbook: Path | None = None) -> str:
    """The mmdebstrap hook (a shell command; ``$1`` is the tree) that bakes the playbook in.

    ``ansible-playbook`` (default: the one beside the running interpreter, unkai's venv)
    runs on the build host against the one host ``unkai-image`` whose connection is
    ``unkai_chroot`` at ``$1``; the playbook gets ``unkai_image_name``,
    ``unkai_image_version`` and the spec's ``bake_vars``. Ansible's configuration is
    pinned by environment variables so that no ``ansible.cfg`` of the working directory
    changes the bake. The hook fails
    (and with it the build) when the playbook fails; Ansible's temporary files are
    removed from the tree either way.

    Raises:
        ConfigError: ``spec`` has no playbook.
    """
    if spec.playbook is None:
        from unkai.errors import ConfigError

        raise ConfigError("the image bakes no playbook", key_path="playbook", value=None)
    playbook = Path(spec.playbook)
    binary = ansible_playbook or Path(sys.executable).parent / "ansible-playbook"
    env = {
        "ANSIBLE_CONFIG": str(ANSIBLE_PLUGINS / "bake.cfg"),
        "ANSIBLE_CONNECTION_PLUGINS": str(ANSIBLE_PLUGINS / "connection"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_REMOTE_TMP": _BAKE_TMP,
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_ROLES_PATH": str(playbook.parent / "roles"),
        "ANSIBLE_HOST_KEY_CHECKING": "0",
    }
    argv = [
        str(binary),
        "--connection=unkai_chroot",
        "--inventory=unkai-image,",
        "--extra-vars=ansible_python_interpreter=/usr/bin/python3",
        f"--extra-vars=unkai_image_name={spec.name}",
        f"--extra-vars=unkai_image_version={spec.version}",
        *(f"--extra-vars={name}={value}" for name, value in spec.bake_vars),
        str(playbook),
    ]
    assignments = " ".join(f"{k}={_sh_quote(v)}" for k, v in sorted(env.items()))
    command = " ".join(_sh_quote(a) for a in argv)
    cleanup = f'rm -rf "$1{_BAKE_TMP}" "$1/root/.ansible"'
    # ansible_host comes last and unquoted in the word "$1": only the shell knows it.
    return (
        f'rc=0; env {assignments} {command} --extra-vars=ansible_host="$1" || rc=$?; '
        f"{cleanup}; exit $rc"
    )


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def disk_argvs(root_dir: Path, raw: Path, qcow2: Path, size_gb: int) -> list[list[str]]:
    """Commands that turn an unpacked rootfs into a qcow2 disk (ext4 labelled ``rootfs``).

    The qcow2's clusters are zstd-compressed (:data:`DISK_ENCODING`).
    """
    return [
        ["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", str(root_dir), str(raw), f"{size_gb}G"],
        ["qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd",
         str(raw), str(qcow2)],
    ]  # fmt: skip


CACHE_KEEP = 2
"""Entries of one name a build never removes: the most recently used (the image in use
and the one before it, which a rollback boots again)."""

CACHE_IDLE = 24 * 3600.0
"""Seconds an entry beyond those may go unused before a build removes it. Each edit of an
image's packages or playbook makes a new entry of a gigabyte or so (disk and tarball);
without this a working cache passes 10 GB in a week."""


@dataclass(frozen=True)
class CacheEntry:
    """A whole entry of the cache.

    Attributes:
        kind: ``images`` or ``rootfs``.
        digest: Its spec's digest (its folder's name).
        name: Its spec's name.
        folder: Where its files are.
        used: When it was last built or used (its manifest's modification time).
        size: Its files' bytes.
    """

    kind: str
    digest: str
    name: str
    folder: Path
    used: float
    size: int


def cache_entries(cache_root: Path, kind: str) -> list[CacheEntry]:
    """The whole entries of ``kind`` (``images`` or ``rootfs``) in the cache."""
    found = []
    folder = cache_root / kind
    for entry in sorted(folder.iterdir()) if folder.is_dir() else ():
        manifest = entry / "manifest.json"
        if entry.name.startswith(".") or not manifest.is_file():
            continue  # a build under way (or a dead one's): clear_interrupted_builds' concern
        try:
            name = str(json.loads(manifest.read_text())["spec"]["name"])
            used = manifest.stat().st_mtime
            size = sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append(CacheEntry(kind, entry.name, name, entry, used, size))
    return found


def stale_entries(
    entries: Sequence[CacheEntry],
    *,
    now: float,
    keep: int = CACHE_KEEP,
    idle: float = CACHE_IDLE,
) -> list[CacheEntry]:
    """The entries to remove.

    Those unused for ``idle`` seconds that are not among the ``keep`` most recently used
    of their name.
    """
    by_name: dict[str, list[CacheEntry]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
    stale = []
    for group in by_name.values():
        group.sort(key=lambda e: e.used, reverse=True)
        stale.extend(e for e in group[keep:] if now - e.used >= idle)
    return sorted(stale, key=lambda e: (e.name, e.used))


def prune_cache(
    cache_root: Path,
    kind: str,
    *,
    now: float | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> list[CacheEntry]:
    """Remove the stale entries of ``kind`` (:func:`stale_entries`); return them.

    Each goes under its build lock, taken without waiting: an entry being built or
    pruned by another process stays. It is renamed out of place first, so a reader never
    finds it half removed (it finds it gone, and builds it again).
    """
    removed = []
    for entry in stale_entries(cache_entries(cache_root, kind), now=now or time.time()):
        with try_lock(_build_lock(cache_root, kind, entry.digest)) as taken:
            if not taken:
                continue
            doomed = entry.folder.with_name(f"{_work_prefix(entry.digest)}pruned")
            try:
                os.replace(entry.folder, doomed)
            except OSError:
                continue
            shutil.rmtree(doomed, ignore_errors=True)
            removed.append(entry)
    if removed:
        names = ", ".join(sorted({e.name for e in removed}))
        mib = sum(e.size for e in removed) / 2**20
        say(
            f"removed {len(removed)} {kind} entr{'y' if len(removed) == 1 else 'ies'} unused"
            f" for {CACHE_IDLE / 3600:.0f} h from the cache ({mib:.0f} MiB): {names}"
        )
    return removed


def _mark_used(folder: Path) -> None:
    """Record a use of a cache entry (its manifest's modification time)."""
    with contextlib.suppress(OSError):  # a read-only cache is still a cache
        os.utime(folder / "manifest.json")


def image_cache(digest: str, cache_root: Path) -> Path:
    """The cache folder of an image."""
    return cache_root / "images" / digest


def cached_image(spec: ImageSpec, cache_root: Path) -> BuiltImage | None:
    """The built image of ``spec`` if the cache has it whole."""
    folder = image_cache(spec.digest(), cache_root)
    image = _layout(spec.digest(), folder)
    files = (image.disk, image.kernel, image.initrd, image.rootfs, folder / "manifest.json")
    if not all(f.is_file() for f in files):
        return None
    _mark_used(folder)
    return image


def _layout(digest: str, folder: Path, seconds: float = 0.0) -> BuiltImage:
    return BuiltImage(
        digest,
        folder,
        folder / "disk.qcow2",
        folder / "vmlinuz",
        folder / "initrd.img",
        folder / "rootfs.tar",
        seconds,
    )


def _extract(tar_path: Path, dest: Path) -> None:
    # tar keeps owners, modes and device nodes exactly; Python's tarfile would need care.
    run(["tar", "--numeric-owner", "-xpf", str(tar_path), "-C", str(dest)])


def _boot_files(root: Path) -> tuple[Path, Path]:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        from unkai.errors import DriverError

        found = sorted(os.listdir(root / "boot"))
        raise DriverError(f"the rootfs has no kernel or initrd in /boot: {found}")
    return kernels[-1], initrds[-1]


def build_image(
    spec: ImageSpec,
    cache_root: Path,
    *,
    say: Callable[[str], None] = lambda _: None,
) -> BuiltImage:
    """Build ``spec`` into the cache unless it is there; return the image.

    The build happens in a temporary folder beside the cache entry and is renamed into
    place whole, so an interrupted build leaves no half image behind. It holds the
    entry's lock: the images of several hosts (or two commands) that need one digest
    at once make it once, and the others find it built.

    Raises:
        CommandFailed: mmdebstrap, mkfs.ext4 or qemu-img failed (output in the error).
    """
    found = cached_image(spec, cache_root)
    if found is not None:
        return found
    with file_lock(_build_lock(cache_root, "images", spec.digest())):
        found = cached_image(spec, cache_root)
        if found is not None:
            return found
        built = _build_image(spec, cache_root, say)
    prune_cache(cache_root, "images", say=say)
    return built


def _build_lock(cache_root: Path, kind: str, digest: str) -> Path:
    """The lock file of one cache entry's build."""
    return cache_root / "locks" / f"{kind}-{digest[:16]}.lock"


def _work_prefix(digest: str) -> str:
    """How the temporary folders of one entry's builds begin (beside the entry)."""
    return f".{digest[:12]}-"


def clear_interrupted_builds(
    folder: Path, digest: str, *, mounts: Callable[[], list[Path]] | None = None
) -> list[Path]:
    """Remove what builds of ``digest`` that were killed left in ``folder``; return it.

    A build works in a temporary folder beside its cache entry and renames it into
    place when done; a build killed before that (SIGKILL, a power cut) leaves the
    folder, up to a gigabyte. Call this holding the entry's build lock: then no build
    of ``digest`` is running, so every such folder is a dead one's. A folder with
    something mounted inside it is left alone (never delete through a mount).
    """
    mounted = (mounts or _mount_points)()
    cleared = []
    for stale in sorted(folder.glob(f"{_work_prefix(digest)}*")):
        if not stale.is_dir() or any(m == stale or stale in m.parents for m in mounted):
            continue
        shutil.rmtree(stale, ignore_errors=True)
        cleared.append(stale)
    return cleared


def _mount_points() -> list[Path]:
    """Every mount point of this machine (``/proc/self/mounts``)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    # Fields are space-separated; a space inside a path is written as \040.
    return [Path(line.split()[1].replace("\\040", " ")) for line in lines if line.strip()]


def _say_cleared(cleared: list[Path], say: Callable[[str], None]) -> None:
    if cleared:
        names = ", ".join(p.name for p in cleared)
        say(f"removed what an interrupted build left in the cache: {names}")


def _build_image(spec: ImageSpec, cache_root: Path, say: Callable[[str], None]) -> BuiltImage:
    start = time.monotonic()
    digest = spec.digest()
    final = image_cache(digest, cache_root)
    final.parent.mkdir(parents=True, exist_ok=True)
    _say_cleared(clear_interrupted_builds(final.parent, digest), say)
    with tempfile.TemporaryDirectory(prefix=_work_prefix(digest), dir=final.parent) as tmp:
        work = Path(tmp)
        out = work / "image"
        out.mkdir()
        layout = _layout(digest, out)
        baked = f", baking {spec.playbook}" if spec.playbook else ""
        say(f"building rootfs of {spec.name} from Debian packages (mmdebstrap{baked})")
        run(mmdebstrap_argv(spec, layout.rootfs), timeout=1800)
        root = work / "root"
        root.mkdir()
        _extract(layout.rootfs, root)
        kernel, initrd = _boot_files(root)
        shutil.copy2(kernel, layout.kernel)
        shutil.copy2(initrd, layout.initrd)
        say(f"making the {spec.disk_gb} GiB root disk (mkfs.ext4 -d, qemu-img)")
        raw = work / "disk.raw"
        for argv in disk_argvs(root, raw, layout.disk, spec.disk_gb):
            run(argv, timeout=900)
        seconds = round(time.monotonic() - start, 1)
        manifest = {"spec": asdict(spec), "digest": digest, "build_seconds": seconds}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(out, final)
    return _layout(digest, final, seconds)


def docker_rootfs_members(members: Sequence[tarfile.TarInfo]) -> list[tarfile.TarInfo]:
    """The members of the rootfs tarball that go into the Docker base image.

    Kernel, initramfs and modules only serve VMs; leaving them out makes the base image
    smaller without changing what a container runs.
    """
    skip = ("./boot/", "./usr/lib/modules/", "./lib/modules/")
    return [m for m in members if not m.name.startswith(skip)]


# --- container-only trees ----------------------------------------------------------


@dataclass(frozen=True)
class RootfsFile:
    """A file written into a tree after its packages are installed.

    Attributes:
        path: Its path inside the tree, relative (``usr/local/sbin/entrypoint``).
        content: Its text.
        mode: Its permission bits.
    """

    path: str
    content: str
    mode: int = 0o644

    def __post_init__(self) -> None:
        parts = Path(self.path).parts
        if not parts or self.path.startswith("/") or ".." in parts:
            from unkai.errors import ConfigError

            raise ConfigError(
                "a rootfs file needs a relative path inside the tree",
                key_path="path",
                value=self.path,
            )

    def hook(self) -> str:
        """The customize hook (``$1`` is the tree) that writes the file with its mode."""
        target = f'"$1"/{_sh_quote(self.path)}'
        folder = f'"$1"/{_sh_quote(str(Path(self.path).parent))}'
        return (
            f"mkdir -p {folder} && printf %s {_sh_quote(self.content)} > {target}"
            f" && chmod {self.mode:04o} {target}"
        )


SLIM_OPTIONS = (
    # /usr merged by mmdebstrap itself: the usrmerge package would pull in Perl (45 MB).
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    *(
        f"--dpkgopt=path-exclude=/usr/share/{folder}/*"
        for folder in ("doc", "man", "info", "locale", "lintian", "linda")
    ),
    # The licences stay with the packages they cover.
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
)
"""mmdebstrap options of a slim tree: what dpkg never unpacks, and merged /usr."""

SLIM_HOOK = (
    'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old'
    ' "$1"/var/lib/dpkg/*-old "$1"/var/log/*'
)
"""The last customize hook of a slim tree: apt's lists and caches, old databases, logs."""


@dataclass(frozen=True)
class RootfsSpec:
    """A Debian tree that only runs as a container: packages, files, hooks; no kernel, no disk.

    Attributes:
        name: What the tree is (``kvm-host``); part of the digest.
        packages: Every package installed (nothing is added to them).
        files: Files written after the packages are installed, in order.
        hooks: Shell commands (mmdebstrap customize hooks, ``$1`` is the tree) run after
            the files are written, in order.
        suite: Debian suite (``bookworm`` for Debian 12).
        mirror: The Debian archive.
        slim: Leave out documentation, manuals, locales, apt's lists and ``usrmerge``
            (:data:`SLIM_OPTIONS`, :data:`SLIM_HOOK`). Part of the digest when set.

    SSH host keys that packages make at install time are always removed last, so no two
    containers of one tree share a host key.
    """

    name: str
    packages: tuple[str, ...]
    files: tuple[RootfsFile, ...] = ()
    hooks: tuple[str, ...] = ()
    suite: str = "bookworm"
    mirror: str = DEBIAN_MIRROR
    builder: str = field(default=BUILDER_VERSION)
    slim: bool = False

    def digest(self) -> str:
        """sha256 of the canonical JSON of the spec (packages sorted): the tree's identity."""
        data = {**asdict(self), "packages": sorted(set(self.packages))}
        if self.slim:
            # What makes a tree slim is part of it: changed options build it anew.
            data["slim"] = [*SLIM_OPTIONS, SLIM_HOOK]
        else:
            del data["slim"]  # trees that are not slim keep the digests they had
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class BuiltRootfs:
    """A container-only tree in the cache.

    Attributes:
        digest: The spec's digest.
        folder: Where its files are.
        rootfs: The rootfs tarball (for ``docker import``).
        build_seconds: How long the build took (0 when it came from the cache).
    """

    digest: str
    folder: Path
    rootfs: Path
    build_seconds: float = 0.0


def rootfs_argv(spec: RootfsSpec, out_tar: Path) -> list[str]:
    """The ``mmdebstrap`` command that builds the tarball of ``spec``."""
    hooks = [*(f.hook() for f in spec.files), *spec.hooks, _REMOVE_HOST_KEYS]
    if spec.slim:
        hooks.append(SLIM_HOOK)
    return _mmdebstrap(
        packages=sorted(set(spec.packages)),
        hooks=hooks,
        suite=spec.suite,
        out_tar=out_tar,
        mirror=spec.mirror,
        options=SLIM_OPTIONS if spec.slim else (),
    )


def rootfs_layout(spec: RootfsSpec, cache_root: Path) -> BuiltRootfs:
    """Where the tree of ``spec`` is (or will be) in the cache; nothing is read."""
    folder = cache_root / "rootfs" / spec.digest()
    return BuiltRootfs(spec.digest(), folder, folder / "rootfs.tar")


def cached_rootfs(spec: RootfsSpec, cache_root: Path) -> BuiltRootfs | None:
    """The built tree of ``spec`` if the cache has it whole."""
    layout = rootfs_layout(spec, cache_root)
    complete = layout.rootfs.is_file() and (layout.folder / "manifest.json").is_file()
    if not complete:
        return None
    _mark_used(layout.folder)
    return layout


def build_rootfs(
    spec: RootfsSpec,
    cache_root: Path,
    *,
    say: Callable[[str], None] = lambda _: None,
) -> BuiltRootfs:
    """Build the tree of ``spec`` into the cache unless it is there; return it.

    Side effects: runs mmdebstrap (about a minute, as root) in a temporary folder beside
    the cache entry, which is renamed into place whole, so an interrupted build leaves
    no half tree behind; under the entry's lock, so a tree is built once at a time.

    Raises:
        CommandFailed: mmdebstrap failed (its output in the error).
    """
    found = cached_rootfs(spec, cache_root)
    if found is not None:
        return found
    with file_lock(_build_lock(cache_root, "rootfs", spec.digest())):
        found = cached_rootfs(spec, cache_root)
        if found is not None:
            return found
        built = _build_rootfs(spec, cache_root, say)
    prune_cache(cache_root, "rootfs", say=say)
    return built


def _build_rootfs(spec: RootfsSpec, cache_root: Path, say: Callable[[str], None]) -> BuiltRootfs:
    start = time.monotonic()
    final = rootfs_layout(spec, cache_root).folder
    final.parent.mkdir(parents=True, exist_ok=True)
    _say_cleared(clear_interrupted_builds(final.parent, spec.digest()), say)
    with tempfile.TemporaryDirectory(prefix=_work_prefix(spec.digest()), dir=final.parent) as tmp:
        out = Path(tmp) / "rootfs"
        out.mkdir()
        say(f"building the {spec.name} tree from Debian packages (mmdebstrap, about a minute)")
        run(rootfs_argv(spec, out / "rootfs.tar"), timeout=1800)
        seconds = round(time.monotonic() - start, 1)
        manifest = {"spec": asdict(spec), "digest": spec.digest(), "build_seconds": seconds}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(out, final)
    return dataclasses.replace(rootfs_layout(spec, cache_root), build_seconds=seconds)
