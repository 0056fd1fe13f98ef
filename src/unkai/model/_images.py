"""Images: VM disk images and container images, both built from Debian packages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Literal

from pydantic import Field, field_validator, model_validator

from unkai.model._base import DnsLabel, UnkaiModel, sorted_mapping

__all__ = [
    "DEBIAN_BASE_IMAGE",
    "DEBIAN_MIRROR",
    "KUBERNETES_NODE_PACKAGES",
    "LEAN_USER_DATA_KEYS",
    "ContainerImage",
    "ImageProfile",
    "VmImage",
]

ImageProfile = Literal["default", "lean"]
"""How an image boots: ``default`` runs cloud-init as Debian ships it; ``lean`` runs only
the cloud-init modules unkai's instances need, in one stage after the network, with
ed25519 host keys, no timers or scrubbing at boot and a small initramfs (about 30 s to
"cloud-init finished" under TCG instead of about 55)."""

LEAN_USER_DATA_KEYS = frozenset(
    {
        # bootcmd, write-files (and deferred), growpart, resizefs, mounts
        "bootcmd", "write_files", "growpart", "resize_rootfs", "mounts",
        "mount_default_fields", "swap",
        # set_hostname, update_hostname, update_etc_hosts
        "hostname", "fqdn", "prefer_fqdn_over_hostname", "preserve_hostname",
        "create_hostname_file", "manage_etc_hosts",
        # users-groups, ssh, set-passwords
        "users", "groups", "disable_root", "disable_root_opts", "ssh_deletekeys",
        "ssh_genkeytypes", "ssh_keys", "ssh_authorized_keys", "allow_public_ssh_keys",
        "ssh_quiet_keygen", "ssh_publish_hostkeys", "ssh_pwauth", "chpasswd", "password",
        # runcmd and the scripts, keys-to-console, final-message
        "runcmd", "ssh_fp_console_blacklist", "ssh_key_console_blacklist",
        "no_ssh_fingerprints", "final_message",
    }
)  # fmt: skip
"""The cloud-config keys a ``lean`` image acts on; an instance of a lean image may set no
other (``packages``, ``apt``, ``ntp``, ``locale`` … need the ``default`` profile, or a
playbook baked into the image)."""

KUBERNETES_NODE_PACKAGES = (
    "containernetworking-plugins",  # bridge, host-local, loopback, portmap: the pod network
    "iptables",  # kube-proxy's Services and the CNI plugins' masquerading
    "kmod",  # modprobe of overlay and br_netfilter
    "runc",  # the OCI runtime containerd's shim drives
)
"""The Debian packages a node image (``VmImage.kubernetes``) adds to its own (sorted);
containerd, kubelet, kubeadm and kube-proxy are unkai's builds of their Go modules."""

_K8S_VERSION = re.compile(r"^1\.[0-9]+\.[0-9]+$")

DEBIAN_BASE_IMAGE = "unkai/debian:12"
"""The container base image unkai builds from Debian packages (``docker import`` of the
same rootfs that becomes the VM base disk); no registry is involved."""

DEBIAN_MIRROR = "http://deb.debian.org/debian"
"""The Debian mirror images are built from unless one is given."""

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_DEB_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_TEMPLATE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.j2$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Docker reference: [registry[:port]/]path[:tag][@digest], lowercase path components.
_IMAGE_REF = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?$"
)
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")


def _relative_path(value: str, what: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or str(path) != value:
        raise ValueError(
            f"{what} {value!r} is invalid; allowed: a normalised relative POSIX path"
            " inside the project, without '..'"
        )
    return value


def _debian_packages(value: tuple[str, ...]) -> tuple[str, ...]:
    for package in value:
        if not _DEB_PACKAGE.fullmatch(package):
            raise ValueError(
                f"{package!r} is not a Debian package name; allowed: lowercase letters,"
                " digits, '+', '-' and '.', at least 2 characters"
            )
    return tuple(sorted(set(value)))


class VmImage(UnkaiModel):
    """A VM disk image, built from Debian packages and optionally an Ansible playbook.

    ``name`` is the image family (instances refer to it); ``version`` tells builds of a
    family apart. ``kernel``/``initrd`` select direct kernel boot instead of a bootloader.
    """

    name: DnsLabel = Field(description="Image family, such as ``debian-12-web``.")
    version: str = Field(description="Version of the family, such as ``2024.06.1``.")
    base_os: Literal["debian-12"] = Field(default="debian-12", description="Base OS.")
    packages: tuple[str, ...] = Field(
        default=(), description="Extra Debian packages installed (sorted, unique)."
    )
    playbook: str | None = Field(
        default=None, description="Project-relative path of an Ansible playbook baked in."
    )
    kernel: str | None = Field(
        default=None, description="Project-relative path of a kernel for direct boot."
    )
    initrd: str | None = Field(
        default=None, description="Project-relative path of an initrd; needs ``kernel``."
    )
    kernel_cmdline: str | None = Field(
        default=None, description="Kernel command line for direct boot; needs ``kernel``."
    )
    disk_gb: int = Field(default=10, ge=1, description="Size of the image's disk in GiB.")
    profile: ImageProfile = Field(
        default="default",
        description=(
            "How it boots: ``default`` (cloud-init as Debian ships it) or ``lean`` (only the"
            " modules unkai needs, one stage; see :data:`LEAN_USER_DATA_KEYS`)."
        ),
    )

    kubernetes: str | None = Field(
        default=None,
        description=(
            "Bake a Kubernetes node of this version (``1.<minor>.<patch>``): containerd 2,"
            " kubelet, kubeadm and kube-proxy built by unkai, runc and the CNI plugins from"
            " Debian. The toolchain's version only; a node pool's VMs boot such an image."
        ),
    )

    @field_validator("kubernetes")
    @classmethod
    def _check_kubernetes(cls, value: str | None) -> str | None:
        if value is not None and not _K8S_VERSION.fullmatch(value):
            raise ValueError(f"{value!r} is not a Kubernetes version; allowed: 1.<minor>.<patch>")
        return value

    @field_validator("version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a version; allowed: 1-63 letters, digits, '.', '_' and"
                " '-', starting with a letter or digit"
            )
        return value

    @field_validator("packages")
    @classmethod
    def _check_packages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _debian_packages(value)

    @field_validator("playbook", "kernel", "initrd")
    @classmethod
    def _check_path(cls, value: str | None) -> str | None:
        return None if value is None else _relative_path(value, "path")

    @model_validator(mode="after")
    def _check_direct_boot(self) -> VmImage:
        if self.kernel is None and (self.initrd is not None or self.kernel_cmdline is not None):
            raise ValueError("initrd and kernel_cmdline need kernel (direct kernel boot)")
        if self.kubernetes is not None and self.playbook is not None:
            raise ValueError(
                "a node image (kubernetes) bakes unkai's node playbook; it cannot bake"
                f" {self.playbook!r} too"
            )
        return self


class ContainerImage(UnkaiModel):
    """A container image built from a Jinja-rendered Dockerfile.

    Its tag is the hash of the rendered build context (``tag_policy: content-hash``), so
    the same inputs always give the same tag and a change always gives a new one.
    """

    name: DnsLabel = Field(description="Image name (the repository part of the reference).")
    dockerfile_template: str = Field(
        description="File name of the Dockerfile template, such as ``app.Dockerfile.j2``."
    )
    variables: Mapping[str, str] = Field(
        default_factory=dict, description="Template variables, sorted by name."
    )
    base_image: str = Field(
        default=DEBIAN_BASE_IMAGE, description="The ``FROM`` image (default: unkai's Debian)."
    )
    packages: tuple[str, ...] = Field(
        default=(),
        description=(
            "Debian packages the image needs beyond Debian's minbase set (sorted, unique):"
            " installed into its base, as the build has no network. Only with unkai's"
            " Debian base."
        ),
    )
    tag_policy: Literal["content-hash"] = Field(
        default="content-hash", description="How the tag is chosen; only content hashes."
    )
    registry: str | None = Field(
        default=None, description="Registry to push to (``host[:port][/path]``); none: local."
    )

    @field_validator("dockerfile_template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        if not _TEMPLATE_FILE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a template file name; allowed: a bare file name ending"
                " in '.j2', such as 'app.Dockerfile.j2'"
            )
        return value

    @field_validator("variables")
    @classmethod
    def _check_variables(cls, value: Mapping[str, str]) -> dict[str, str]:
        for key in value:
            if not _IDENTIFIER.fullmatch(key):
                raise ValueError(
                    f"{key!r} is not a template variable name; allowed: letters, digits and"
                    " '_', not starting with a digit"
                )
        return sorted_mapping(value)

    @field_validator("base_image")
    @classmethod
    def _check_base_image(cls, value: str) -> str:
        if not _IMAGE_REF.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an image reference; allowed: [registry/]name[:tag][@digest]"
            )
        return value

    @field_validator("registry")
    @classmethod
    def _check_registry(cls, value: str | None) -> str | None:
        if value is not None and not _REGISTRY.fullmatch(value):
            raise ValueError(f"{value!r} is not a registry; allowed: host[:port][/path]")
        return value

    @field_validator("packages")
    @classmethod
    def _check_packages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _debian_packages(value)

    @model_validator(mode="after")
    def _check_packages_need_debian_base(self) -> ContainerImage:
        if self.packages and self.base_image != DEBIAN_BASE_IMAGE:
            raise ValueError(
                f"packages are installed into unkai's Debian base, and this image starts"
                f" FROM {self.base_image!r}; allowed: packages with the default base_image"
                f" ({DEBIAN_BASE_IMAGE!r}), or none"
            )
        return self
