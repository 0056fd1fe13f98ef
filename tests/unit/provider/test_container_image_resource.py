"""ContainerImage: its checks, its diff, and the inputs its component renders."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from unkai.components import container_image_inputs, vm_image_inputs
from unkai.drivers.images import SLIM_HOOK, rootfs_argv
from unkai.environments import load_environment
from unkai.errors import ConfigError
from unkai.kinds import ContainerImageInputs
from unkai.provider import Props
from unkai.provider.resources import ContainerImage
from unkai.provider.resources.container_image import base_spec
from unkai.provider.resources.image_build import image_spec as vm_image_spec
from unkai.render import image_reference, image_tag, render_dockerfile

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def local():
    return load_environment("local", root=ROOT)


@pytest.fixture
def inputs(local) -> dict[str, object]:
    """The props the component registers for ``api``, as plain values."""
    return container_image_inputs(local.container_images["api"], local).model_dump(mode="json")


def test_component_inputs_are_what_unkai_render_shows(local):
    for name in ("api", "worker"):
        image = local.container_images[name]
        args = container_image_inputs(image, local)
        assert isinstance(args, ContainerImageInputs)
        assert args.name == name
        assert args.dockerfile == render_dockerfile(image, local)
        assert args.tag == image_tag(image, local)
        # local's images go to unkai's registry, from which its VM node pulls them.
        assert args.registry == "127.0.0.1:5000"
        assert f"{args.registry}/{args.name}:{args.tag}" == image_reference(image, local)


def test_the_base_is_a_slim_tree_of_its_own_not_the_vm_images_rootfs(local):
    args = container_image_inputs(local.container_images["worker"], local)
    assert args.model_dump(mode="json")["base"] == {
        "name": "debian-12",
        "version": "12",
        "suite": "bookworm",
        "packages": [],
        "mirror": args.base.mirror,
    }
    spec = base_spec(args.base)
    assert spec.slim and spec.packages == ()
    # Not the VM image's rootfs: no kernel, cloud-init or SSH server in containers.
    vm = local.vm_images["debian-12"]
    vm_inputs = vm_image_inputs(vm, local.hosts["localhost"], environment="local", root=ROOT)
    assert spec.digest() != vm_image_spec(vm_inputs).digest()
    # The VM image's packages and profile are no part of it: changing them keeps the base.
    lean = local.model_copy(update={"vm_images": {
        **local.vm_images,
        "debian-12": vm.model_copy(update={"packages": ("curl",), "profile": "default"}),
    }})  # fmt: skip
    assert container_image_inputs(lean.container_images["worker"], lean).base == args.base


def test_the_slim_base_is_built_without_docs_locales_or_usrmerge(local):
    base = container_image_inputs(local.container_images["api"], local).base
    assert base is not None
    spec = base_spec(base)
    argv = rootfs_argv(spec, Path("/out.tar"))
    assert not any(a.startswith("--include") for a in argv)  # Debian's minbase alone
    assert "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr" in argv
    for folder in ("doc", "man", "locale"):
        assert f"--dpkgopt=path-exclude=/usr/share/{folder}/*" in argv
    assert "--dpkgopt=path-include=/usr/share/doc/*/copyright" in argv
    hooks = [argv[i + 1] for i, a in enumerate(argv) if a == "--customize-hook"]
    assert hooks[-1] == SLIM_HOOK and "/var/lib/apt/lists/*" in SLIM_HOOK
    # Slim is part of the identity; a tree that is not slim keeps the digest it had.
    plain = dataclasses.replace(spec, slim=False)
    assert plain.digest() != spec.digest()
    assert "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr" not in rootfs_argv(
        plain, Path("/out.tar")
    )


def test_an_image_from_another_base_has_no_debian_base(local):
    image = local.container_images["api"].model_copy(update={"base_image": "busybox:1"})
    env = local.model_copy(update={"container_images": {**local.container_images, "api": image}})
    assert container_image_inputs(image, env).base is None


def test_check_accepts_rendered_inputs(inputs):
    assert ContainerImage().check(Props(inputs)) == inputs


@pytest.mark.parametrize(
    ("key", "value", "path", "match"),
    [
        ("name", "API", "name", r"must be an image repository name \(got 'API'\)"),
        ("tag", "-bad", "tag", r"must be an image tag \(got '-bad'\)"),
        ("tag", "0123456789abcdef", "tag", "not the content hash of the Dockerfile; allowed: "),
        ("dockerfile", "echo hi", "dockerfile", "must be the text of a Dockerfile; allowed: FROM"),
        (
            "base",
            {"name": "debian-12"},
            "base.version",
            "required key is missing; allowed: one of name, version, suite",
        ),
        (
            "base",
            {"name": "d", "version": "1", "color": "red"},
            "base.color",
            "unknown key; allowed: one of name, version",
        ),
        (
            "base",
            {"name": "d", "version": "1", "disk_gb": 4},
            "base.disk_gb",
            "unknown key; allowed: one of name, version, suite, packages, mirror",
        ),
        ("base", {"name": "", "version": "1"}, "base.name", "at least 1 character"),
        ("registry", "http://registry", "registry", r"\(got 'http://registry'\)"),
    ],
)
def test_check_names_the_bad_input(inputs, key, value, path, match):
    inputs[key] = value
    with pytest.raises(ConfigError, match=match) as err:
        ContainerImage().check(Props(inputs))
    assert err.value.key_path == path
    assert str(err.value).startswith(f"{path}: ")


def test_the_tag_error_names_the_right_tag(inputs):
    """A tag that is not the content hash says which one is (the label in the Dockerfile)."""
    right = inputs["tag"]
    with pytest.raises(ConfigError) as err:
        ContainerImage().check(Props({**inputs, "tag": "0123456789abcdef"}))
    assert err.value.allowed is not None and err.value.allowed.startswith(str(right))


def test_a_secret_dockerfile_is_refused(inputs):
    with pytest.raises(ConfigError, match="must not hold a secret") as err:
        ContainerImage().check(Props(inputs, secrets=frozenset({"dockerfile"})))
    assert err.value.key_path == "dockerfile"


def test_unchanged_is_no_diff_changed_dockerfile_replaces_registry_updates(inputs, local):
    res = ContainerImage()
    state = Props({**inputs, "image_id": "sha256:1", "reference": "x", "size_bytes": 1.0})
    assert not res.diff(state, Props(inputs)).has_changes

    env = local.model_copy(
        update={
            "container_images": {
                **local.container_images,
                "api": local.container_images["api"].model_copy(
                    update={"variables": {"port": "9090"}}
                ),
            }
        }
    )
    changed = container_image_inputs(env.container_images["api"], env)
    news = Props({**inputs, "dockerfile": changed.dockerfile, "tag": changed.tag})
    diff = res.diff(state, news)
    assert set(diff.replaces) == {"dockerfile", "tag"}
    assert "new tag is a new image" in diff.reasons["tag"]
    assert "built anew" in diff.reasons["dockerfile"]

    pushed = res.diff(state, Props({**inputs, "registry": "registry.local:5000"}))
    assert pushed.changed == ("registry",) and pushed.replaces == ()


def test_no_secret_reaches_a_rendered_dockerfile(local):
    """The model has secret references only; none of them, by name or key, is in an image."""
    refs: set[str] = set()
    for holder in (*local.workloads.values(), *local.instances.values()):
        secrets = getattr(holder, "secret_env", None) or getattr(holder, "secrets", {})
        refs |= {*secrets, *(ref.name for ref in secrets.values())}
    assert refs  # the example does use secrets
    for image in local.container_images.values():
        text = render_dockerfile(image, local)
        assert not [ref for ref in refs if ref in text]
        env_keys = re.findall(r"^ENV\s+(\w+)=|^\s+(\w+)=", text, flags=re.MULTILINE)
        for key in {k for pair in env_keys for k in pair if k}:
            assert not re.search(r"PASS|SECRET|TOKEN|KEY", key, flags=re.IGNORECASE), key
