"""The lean VM image profile: what the build does, what a domain boots, its user data."""

from __future__ import annotations

from pathlib import Path

import pytest

from unkai import render
from unkai.drivers.images import (
    LEAN_ESSENTIAL_HOOKS,
    LEAN_MASKED_UNITS,
    ImageSpec,
    lean_hooks,
    mmdebstrap_argv,
)
from unkai.environments import load_environment
from unkai.errors import ConfigError
from unkai.model import LEAN_USER_DATA_KEYS, Environment

ROOT = Path(__file__).resolve().parents[2]


def test_a_lean_image_is_another_build_and_a_default_one_keeps_its_digest():
    default = ImageSpec(name="debian-12", version="1", packages=("cloud-init",))
    lean = ImageSpec(name="debian-12", version="1", packages=("cloud-init",), profile="lean")
    assert default.digest() != lean.digest()
    # A default spec's digest has no profile in it: images cached before profiles stay.
    assert default.digest() == ImageSpec(name="debian-12", version="1",
                                         packages=("cloud-init",)).digest()  # fmt: skip
    hooks = [a for a in mmdebstrap_argv(lean, Path("/x.tar")) if a != "--customize-hook"]
    assert all(hook in hooks for hook in lean_hooks())
    assert not any("91-unkai-lean.cfg" in a for a in mmdebstrap_argv(default, Path("/x.tar")))


def test_a_lean_image_makes_its_initramfs_once_after_the_packages():
    lean = mmdebstrap_argv(ImageSpec(name="debian-12", version="1", profile="lean"), Path("/x"))
    default = mmdebstrap_argv(ImageSpec(name="debian-12", version="1"), Path("/x"))
    (divert,) = LEAN_ESSENTIAL_HOOKS
    assert f"--essential-hook={divert}" in lean
    assert not any(a.startswith("--essential-hook") for a in default)
    hooks = lean_hooks()
    # Put back by the first lean hook, and the initramfs made once, by the last.
    assert "dpkg-divert" in hooks[0] and "--remove" in hooks[0]
    assert hooks[-1] == 'chroot "$1" update-initramfs -c -k all'
    assert sum("update-initramfs -" in hook for hook in hooks) == 1


def test_the_lean_hooks_keep_what_unkai_reads_from_the_console():
    cfg = next(hook for hook in lean_hooks() if "91-unkai-lean.cfg" in hook)
    for module in ("keys-to-console", "final-message", "users-groups", "ssh", "bootcmd"):
        assert f"  - {module}\n" in cfg, module  # host keys, the finished line, keys, secrets
    assert "cloud-final.service" not in LEAN_MASKED_UNITS  # it records "status: done"
    assert "cloud-config.service" in LEAN_MASKED_UNITS


def test_the_local_environment_boots_lean_images_with_the_lean_command_line():
    env = load_environment("local", root=ROOT)
    assert env.vm_images["debian-12"].profile == "lean"
    db = next(i for i in env.all_instances() if i.name == "db")
    xml = render.render_domain_xml(db, env=env, accelerator="tcg")
    assert f"<cmdline>{render.LEAN_KERNEL_CMDLINE}</cmdline>" in xml
    prod = load_environment("prod", root=ROOT)
    web = prod.all_instances()[0]
    assert f"<cmdline>{render.DEFAULT_KERNEL_CMDLINE}</cmdline>" in render.render_domain_xml(
        web, env=prod, accelerator="kvm"
    )


def _with_user_data(user_data: dict[str, object]) -> dict[str, object]:
    env = load_environment("local", root=ROOT).model_dump(mode="json")
    env["instances"]["db"]["user_data"] = user_data
    return env


def test_user_data_a_lean_image_would_ignore_is_refused_with_the_key():
    with pytest.raises(ValueError) as err:
        Environment.model_validate(_with_user_data({"packages": ["htop"], "runcmd": ["true"]}))
    said = str(err.value)
    assert "instances.db.user_data.packages" in said and "lean image 'debian-12'" in said, said
    assert "runcmd" not in said.split("allowed")[0]


def test_user_data_a_lean_image_acts_on_is_taken():
    allowed = {"runcmd": ["true"], "write_files": [{"path": "/x", "content": "y"}]}
    assert set(allowed) <= LEAN_USER_DATA_KEYS
    Environment.model_validate(_with_user_data(allowed))


def test_the_loader_says_it_as_a_located_problem(tmp_path: Path):
    (tmp_path / "environments").mkdir()
    (tmp_path / "unkai.toml").write_text('[project]\nname = "t"\n')
    for name in ("base", "local"):
        text = (ROOT / "environments" / f"{name}.yaml").read_text()
        (tmp_path / "environments" / f"{name}.yaml").write_text(text)
    local = tmp_path / "environments" / "local.yaml"
    apt = "    user_data:\n      apt: {preserve_sources_list: true}\n"
    local.write_text(
        local.read_text().replace(
            "    disks:\n      - name: data", apt + "    disks:\n      - name: data"
        )
    )
    with pytest.raises(ConfigError) as err:
        load_environment("local", root=tmp_path)
    assert "environments/local.yaml" in str(err.value)
    assert "instances.db.user_data.apt" in str(err.value)
