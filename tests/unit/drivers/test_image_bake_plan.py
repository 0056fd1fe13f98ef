"""Baking a playbook into an image: the pure plan (hook, spec, digest) and the inputs.

Nothing runs here: the mmdebstrap argv and the hook are compared as values, the digest
is computed over files in a temporary folder. The real build is in
``tests/integration/test_image_bake.py``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from unkai.components import container_image_inputs, vm_image_inputs
from unkai.drivers import images
from unkai.drivers.images import BAKE_PACKAGES, ImageSpec, bake_hook, mmdebstrap_argv
from unkai.errors import ConfigError
from unkai.kinds import ContainerBase, VmImageInputs, VmImageState
from unkai.model import Host, VmImage
from unkai.provider import Props
from unkai.provider.resources import VmImage as VmImageResource
from unkai.provider.resources.container_image import base_spec
from unkai.provider.resources.image_build import image_spec as vm_image_spec
from unkai.render import playbook_digest
from unkai.toolchain import pinned_version

DIGEST = "ab" * 32


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "playbooks" / "roles" / "web" / "tasks").mkdir(parents=True)
    (tmp_path / "playbooks" / "roles" / "web" / "tasks" / "main.yml").write_text("- a\n")
    (tmp_path / "playbooks" / "files").mkdir()
    (tmp_path / "playbooks" / "files" / "motd").write_text("hello\n")
    (tmp_path / "playbooks" / "web.yml").write_text("- hosts: all\n")
    return tmp_path


def baked(playbook: str = "/p/playbooks/web.yml") -> ImageSpec:
    return ImageSpec(name="web", version="1", playbook=playbook, playbook_digest=DIGEST)


def test_the_hook_runs_the_venvs_ansible_through_the_chroot_connection():
    hook = bake_hook(baked(), ansible_playbook=Path("/venv/bin/ansible-playbook"))
    words = shlex.split(hook.replace('"$1"', "ROOT").replace('"$1', '"ROOT'))
    assert words[:3] == ["rc=0;", "env", f"ANSIBLE_CONFIG={images.ANSIBLE_PLUGINS}/bake.cfg"]
    assert (images.ANSIBLE_PLUGINS / "bake.cfg").is_file()
    start = words.index("/venv/bin/ansible-playbook")
    env = dict(w.split("=", 1) for w in words[2:start])
    assert env["ANSIBLE_CONNECTION_PLUGINS"] == str(images.ANSIBLE_PLUGINS / "connection")
    assert (images.ANSIBLE_PLUGINS / "connection" / "unkai_chroot.py").is_file()
    assert env["ANSIBLE_ROLES_PATH"] == "/p/playbooks/roles"
    assert words[start + 1 : start + 8] == [
        "--connection=unkai_chroot",
        "--inventory=unkai-image,",
        "--extra-vars=ansible_python_interpreter=/usr/bin/python3",
        "--extra-vars=unkai_image_name=web",
        "--extra-vars=unkai_image_version=1",
        "/p/playbooks/web.yml",
        "--extra-vars=ansible_host=ROOT",
    ]
    # A failed playbook fails the hook (and the build), after Ansible's files are removed.
    assert hook.endswith('rm -rf "$1/tmp/.unkai-ansible" "$1/root/.ansible"; exit $rc')
    assert "|| rc=$?" in hook


def test_the_hook_quotes_a_path_with_spaces():
    hook = bake_hook(baked("/my project/web.yml"), ansible_playbook=Path("/v/ansible-playbook"))
    assert "'/my project/web.yml'" in hook


def test_a_baked_image_runs_its_hook_before_the_host_keys_are_removed():
    argv = mmdebstrap_argv(baked(), Path("/out.tar"))
    hooks = [argv[i + 1] for i, a in enumerate(argv) if a == "--customize-hook"]
    bake = next(i for i, h in enumerate(hooks) if "unkai_chroot" in h)
    assert bake == len(hooks) - 2 and "ssh_host_" in hooks[-1]
    assert "python3-apt" in next(a for a in argv if a.startswith("--include="))


def test_an_unbaked_image_has_no_bake_hook_and_no_bake_packages():
    spec = ImageSpec(name="web", version="1")
    assert not any("ansible" in a for a in mmdebstrap_argv(spec, Path("/out.tar")))
    assert not set(BAKE_PACKAGES) & set(spec.all_packages())
    with pytest.raises(ConfigError, match="bakes no playbook"):
        bake_hook(spec)


def test_the_digest_covers_the_playbooks_content_not_its_path():
    plain = ImageSpec(name="web", version="1")
    assert baked().digest() != plain.digest()
    assert baked("/elsewhere/web.yml").digest() == baked().digest()
    other = ImageSpec(name="web", version="1", playbook="/p/web.yml", playbook_digest="cd" * 32)
    assert other.digest() != baked().digest()
    assert baked().unbaked() == plain


def test_an_unbaked_spec_keeps_the_digest_images_had_before_baking():
    # The cache of every existing image stays valid: no playbook, no new field in the digest.
    spec = ImageSpec(name="debian-12", version="12", packages=("cloud-init",), disk_gb=4)
    assert spec.digest() == images.ImageSpec(**{**spec.__dict__}).digest()
    assert "playbook" not in spec.digest()


def test_a_spec_needs_the_path_and_the_digest_together():
    with pytest.raises(ConfigError, match="both"):
        ImageSpec(name="web", version="1", playbook="/p/web.yml")
    with pytest.raises(ConfigError, match="both"):
        ImageSpec(name="web", version="1", playbook_digest=DIGEST)


def test_playbook_digest_changes_with_a_role_file_and_stays_otherwise(project: Path):
    playbook = project / "playbooks" / "web.yml"
    first = playbook_digest(playbook)
    assert playbook_digest(playbook) == first
    (project / "playbooks" / "unrelated.txt").write_text("not part of the playbook\n")
    assert playbook_digest(playbook) == first
    role_file = project / "playbooks" / "roles" / "web" / "tasks" / "main.yml"
    role_file.write_text("- b\n")
    assert playbook_digest(playbook) != first
    role_file.write_text("- a\n")
    assert playbook_digest(playbook) == first
    (project / "playbooks" / "files" / "motd").rename(project / "playbooks" / "files" / "m2")
    assert playbook_digest(playbook) != first


def test_playbook_digest_is_the_same_in_another_checkout(project: Path, tmp_path_factory):
    first = playbook_digest(project / "playbooks" / "web.yml")
    moved = tmp_path_factory.mktemp("other") / "checkout"
    project.rename(moved)
    assert playbook_digest(moved / "playbooks" / "web.yml") == first


def test_playbook_digest_of_a_missing_file_names_it(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        playbook_digest(tmp_path / "nope.yml")


HOST = Host.model_validate(
    {"name": "h", "address": "127.0.0.1", "connection": "local", "cpus": 2, "memory_mb": 4096,
     "disk_gb": 20, "pool": "p", "zone": "z", "cpu_vendor": "amd"}
)  # fmt: skip


def test_component_resolves_the_playbook_under_the_project_root(project: Path):
    image = VmImage(name="web", version="1", playbook="playbooks/web.yml")
    args = vm_image_inputs(image, HOST, environment="local", root=project)
    assert isinstance(args, VmImageInputs)
    assert args.playbook == str(project / "playbooks" / "web.yml")
    assert args.playbook_digest == playbook_digest(project / "playbooks" / "web.yml")
    plain = vm_image_inputs(VmImage(name="web", version="1"), HOST, environment="local")
    assert (plain.playbook, plain.playbook_digest) == (None, None)
    with pytest.raises(ConfigError, match="does not exist"):
        vm_image_inputs(image, HOST, environment="local", root=project / "nowhere")


def test_resource_spec_and_diff_of_a_baked_image(project: Path):
    image = VmImage(name="web", version="1", playbook="playbooks/web.yml")
    args = vm_image_inputs(image, HOST, environment="local", root=project)
    news = {
        "environment": "local",
        "name": "web",
        "version": "1",
        "libvirt_uri": "qemu:///system",
        "pool": "unkai",
        "boot_dir": "/b",
        "playbook": args.playbook,
        "playbook_digest": args.playbook_digest,
    }
    resource = VmImageResource()
    checked = resource.check(Props(news))
    spec = vm_image_spec(VmImageInputs.model_validate(checked))
    assert (spec.playbook, spec.playbook_digest) == (args.playbook, args.playbook_digest)
    # The component's inputs pass the provider's check as they are.
    assert resource.check(Props(args.model_dump(mode="json"))) == args.model_dump(mode="json")
    edited = resource.diff(Props(checked), Props({**checked, "playbook_digest": "cd" * 32}))
    assert edited.replaces == ("playbook_digest",)
    assert "playbook baked in changed" in edited.reasons["playbook_digest"]
    moved = resource.diff(Props(checked), Props({**checked, "playbook": "/other/web.yml"}))
    assert moved.replaces == () and moved.changed == ("playbook",)
    state = VmImageState(**checked, digest="d" * 64, volume="web-dddddddddddd.qcow2")
    updated = resource.update("id", state, VmImageInputs(**{**checked, "playbook": "/o.yml"}))
    assert updated.playbook == "/o.yml"
    # Nothing else moves: the built image is the same one.
    assert updated == state.model_copy(update={"playbook": "/o.yml"})


@pytest.mark.parametrize(
    ("extra", "key", "match"),
    [
        ({"playbook": "/p/web.yml"}, "playbook_digest", "needs both the playbook and its digest"),
        ({"playbook_digest": DIGEST}, "playbook_digest", "needs both the playbook and its digest"),
        (
            {"playbook": "web.yml", "playbook_digest": DIGEST},
            "playbook",
            "must be an absolute path .*; allowed: /abs/path",
        ),
        (
            {"playbook": "/p/web.yml", "playbook_digest": "xyz"},
            "playbook_digest",
            "must be a sha256 in hex .*; allowed: 64 hex digits",
        ),
    ],
)
def test_resource_check_names_a_bad_bake_input(extra, key, match):
    news = {"environment": "local", "name": "web", "version": "1",
            "libvirt_uri": "qemu:///system", "pool": "unkai", "boot_dir": "/b",
            **extra}  # fmt: skip
    with pytest.raises(ConfigError, match=match) as err:
        VmImageResource().check(Props(news))
    assert err.value.key_path == key


def test_a_playbook_baked_into_the_vm_image_never_reaches_the_container_base():
    # The container base is a slim tree of its own: a playbook baked into the VM image
    # leaves unkai/debian:12 as it is.
    from unkai.model import ContainerImage, Environment

    env = Environment.model_validate(
        {"name": "e", "vm_images": {"debian-12": {"version": "1", "playbook": "p/web.yml"}},
         "container_images": {"api": {"dockerfile_template": "api.Dockerfile.j2"}}}
    )  # fmt: skip
    args = container_image_inputs(env.container_images["api"], env)
    assert isinstance(args.base, ContainerBase)
    assert "playbook" not in ContainerBase.model_fields
    assert "playbook" not in args.model_dump(mode="json")["base"]
    assert base_spec(args.base).hooks == ()
    assert isinstance(env.container_images["api"], ContainerImage)


def test_images_without_a_node_keep_the_digests_they_had():
    # Pinned: a new digest rebuilds every cached image and replaces the VMs made from it,
    # so it changes only on purpose (node images did not change these; the zstd disk
    # encoding did).
    assert ImageSpec(
        name="debian-12", version="12", packages=("cloud-init",), disk_gb=4
    ).digest() == ("7a801c6656da812945556d582ce1eaaa617da2fc929a0f9582e712a7a51a8886")
    assert ImageSpec(name="debian-12", version="12", profile="lean").digest() == (
        "d1db078d7b46e21270dfdb068e13fe70ba12f341bfc69d41a6c3dd21c7cec36f"
    )
    assert baked().digest() == "d9f3d8f4e009ae2241d297a4799c9c686e307a57c97dfaa6f351e3f8589ffb2b"


def test_the_disk_is_a_zstd_compressed_qcow2():
    mkfs, convert = images.disk_argvs(Path("/r"), Path("/d.raw"), Path("/d.qcow2"), 4)
    assert mkfs[:1] == ["mkfs.ext4"] and mkfs[-2:] == ["/d.raw", "4G"]
    assert convert == ["qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd",
                       "/d.raw", "/d.qcow2"]  # fmt: skip


def test_a_node_image_digest_has_its_versions_not_where_its_binaries_lie():
    node = ImageSpec(name="node", version="1", playbook="/p/k8s-node.yml", playbook_digest=DIGEST,
                     node="kubernetes=1.36.3 containerd=2.4.2")  # fmt: skip
    assert node.digest() != baked().digest()
    moved = images.ImageSpec(**{**node.__dict__, "bake_vars": (("k8s_node_image_kube_bin", "/x"),)})
    assert moved.digest() == node.digest()
    newer = images.ImageSpec(**{**node.__dict__, "node": "kubernetes=1.36.4 containerd=2.4.2"})
    assert newer.digest() != node.digest()


def test_the_hook_passes_the_bake_vars_to_the_playbook():
    spec = images.ImageSpec(
        **{**baked().__dict__, "bake_vars": (("k8s_node_image_kube_bin", "/c/b"),)}
    )
    argv = shlex.split(bake_hook(spec, ansible_playbook=Path("/v/ansible-playbook")))
    assert "--extra-vars=k8s_node_image_kube_bin=/c/b" in argv


def test_a_node_image_bakes_the_node_playbook_packages_and_pinned_versions(tmp_path: Path):
    image = VmImage(name="node", version="1", kubernetes="1.36.3", packages=("curl",))
    inputs = vm_image_inputs(image, HOST,
                             environment="local", root=tmp_path)  # fmt: skip
    assert inputs.playbook is not None and inputs.playbook.endswith("playbooks/images/k8s-node.yml")
    assert inputs.playbook_digest == playbook_digest(Path(inputs.playbook))
    assert {"runc", "containernetworking-plugins", "curl"} <= set(inputs.packages)
    assert inputs.kubernetes == "1.36.3" and inputs.containerd == pinned_version("containerd")
    spec = vm_image_spec(inputs)
    assert spec.node == f"kubernetes=1.36.3 containerd={pinned_version('containerd')}"
    assert spec.bake_vars == ()  # only a build is told where the binaries are


def test_a_projects_own_node_playbook_overrides_unkais(tmp_path: Path):
    own = tmp_path / "playbooks" / "images" / "k8s-node.yml"
    own.parent.mkdir(parents=True)
    own.write_text("- hosts: all\n")
    image = VmImage(name="node", version="1", kubernetes="1.36.3")
    inputs = vm_image_inputs(image, HOST,
                             environment="local", root=tmp_path)  # fmt: skip
    assert inputs.playbook == str(own)
