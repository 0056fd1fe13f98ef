"""Container images against the real Docker engine and the real Pulumi engine.

The base is imported from the slim Debian tree unkai builds (the cache's, built once),
the example ``api`` and ``worker`` images of environments/local.yaml are built from
their rendered Dockerfiles without network, run once as UID 10001, and the provider
resource goes through up / preview / refresh / destroy of a small stack.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from pulumi import automation as auto

from unkai.cli._workspace import select_stack
from unkai.components._containers import DEBIAN_BASE
from unkai.drivers import docker as d
from unkai.drivers.images import build_rootfs
from unkai.errors import DriverError
from unkai.kinds import ContainerBase
from unkai.model import DEBIAN_BASE_IMAGE
from unkai.provider.resources.container_image import base_spec
from unkai.render import CONTAINER_UID, image_reference, render_dockerfile
from unkai.toolchain import cache_root

ROOT = Path(__file__).resolve().parents[2]
STACK = Path(__file__).resolve().parent / "stacks" / "container_image"


@pytest.fixture
def test_ref(client):
    """``image_reference`` of an image under a repository of the test's own, removed after.

    The Dockerfile is the one ``unkai render`` shows; only the repository differs, so the
    images of a deployed local cloud (``api:<hash>``) are never touched.
    """
    made: list[str] = []
    prefix = f"unkai-it-{uuid.uuid4().hex[:8]}-"

    def ref(image, env) -> str:
        made.append(prefix + image_reference(image, env))
        return made[-1]

    yield ref
    for tag in made:
        d.remove_image(client, tag)


def docker(*args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=300, check=False
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_base_import_is_streamed_filtered_and_idempotent(client, rootfs):
    """A base of its own (another repository), so the shared one is never disturbed."""
    ref = f"unkai-it-{uuid.uuid4().hex[:8]}/debian:12"
    plan = d.plan_base_import(rootfs, ref=ref)
    try:
        start = time.monotonic()
        first = d.ensure_base_image(client, rootfs, ref=ref)
        cold = time.monotonic() - start
        start = time.monotonic()
        second = d.ensure_base_image(client, rootfs, ref=ref)
        cached = time.monotonic() - start
        assert first == second
        assert cached < 0.5 and cached * 20 < cold, (cold, cached)  # the import really ran
        state = d.image_state(client, ref)
        assert state is not None and state.id == first
        assert sorted(state.tags) == sorted([ref, plan.reference])
        assert state.labels[d.ROOTFS_DIGEST_LABEL] == rootfs.digest
        out = docker(
            "run", "--rm", "--network", "none", ref, "sh", "-c",
            "find /boot /usr/lib/modules -mindepth 1 2>/dev/null | wc -l;"
            " . /etc/os-release; echo $VERSION_ID; command -v perl",
        )  # fmt: skip
        assert out.split() == ["0", "12", "/usr/bin/perl"]
        # The tag moved away: the digest tag still names the import, only a retag happens.
        docker("rmi", ref)
        assert d.ensure_base_image(client, rootfs, ref=ref) == first
    finally:
        for name in (ref, plan.reference):
            d.remove_image(client, name, protect=())
    assert d.image_state(client, plan.reference) is None


@pytest.mark.parametrize("name", ["api", "worker"])
def test_example_images_build_and_run_as_non_root(client, base, local, name, test_ref):
    image = local.container_images[name]
    dockerfile = render_dockerfile(image, local)
    tag = test_ref(image, local)
    lines: list[str] = []
    built = d.build_image(client, dockerfile=dockerfile, tag=tag, say=lines.append)
    assert any(line.startswith("Step 1/") for line in lines)
    again = d.build_image(client, dockerfile=dockerfile, tag=tag)
    assert again.image_id == built.image_id
    assert again.cached_steps == again.steps - 1  # all but FROM from the layer cache
    ids = docker("run", "--rm", "--network", "none", "--entrypoint", "id", tag).split()
    assert ids[:2] == [f"uid={CONTAINER_UID}", f"gid={CONTAINER_UID}"]
    # Its own command starts and prints its first line.
    container = docker("run", "-d", "--network", "none", tag).strip()
    try:
        expected = "api listening on 8080" if name == "api" else "worker alive on queue jobs"
        deadline = time.monotonic() + 30
        logs = ""
        while expected not in logs and time.monotonic() < deadline:
            logs = docker("logs", container)
            time.sleep(0.2)
        assert expected in logs
        user = docker("inspect", "--format", "{{.Config.User}}", container).strip()
        assert user == f"{CONTAINER_UID}:{CONTAINER_UID}"
    finally:
        docker("rm", "-f", container)
    state = d.image_state(client, tag)
    assert state is not None and state.labels[d.MANAGED_LABEL] == "unkai"
    # A small base, and the image is its own layers on it: nothing is copied or installed.
    base_state = d.image_state(client, DEBIAN_BASE_IMAGE)
    assert base_state is not None and base_state.size_bytes <= 80_000_000, base_state
    assert state.size_bytes - base_state.size_bytes < 100_000, state.size_bytes
    history = json.loads(
        "[" + ",".join(docker("history", "--format", "json", tag).split("\n")[:-1]) + "]"
    )
    assert history[-1]["CreatedBy"] == "" and history[-1]["Comment"] == "Imported from -"
    assert [layer["Size"] for layer in history[:-1] if layer["Size"] != "0B"] == []


def test_an_images_packages_are_in_its_base_and_only_there(client, base):
    """``packages`` of an image become a slim base of their own (mmdebstrap, cached)."""
    spec = base_spec(ContainerBase(name="debian-12", version="12", packages=("jq",)))
    assert spec.digest() != base_spec(DEBIAN_BASE).digest()
    built = build_rootfs(spec, cache_root())
    ref = f"unkai-it-{uuid.uuid4().hex[:8]}/debian:12"
    plan = d.plan_base_import(built, ref=ref)
    try:
        d.ensure_base_image(client, built, ref=ref)
        found = docker("run", "--rm", "--network", "none", ref, "jq", "-n", "1+1")
        assert found.strip() == "2"
        state = d.image_state(client, ref)
        assert state is not None and state.size_bytes <= 85_000_000, state.size_bytes
    finally:
        for name in (ref, plan.reference):
            d.remove_image(client, name, protect=())
    script = (
        "command -v jq python3 ssh cloud-init; ls /usr/share/doc | wc -l;"
        " find /usr/share/man /usr/share/locale -type f 2>/dev/null | wc -l"
    )
    missing = docker("run", "--rm", "--network", "none", DEBIAN_BASE_IMAGE, "sh", "-c", script)
    # The shared base has none of them, no manuals or locales, only the licences.
    assert missing.split()[-1] == "0" and len(missing.split()) == 2, missing


def test_no_secret_in_image_layers_history_or_config(client, base, local, test_ref):
    """`docker history` and `inspect` of the example images hold no secret or its name."""
    secrets: set[str] = set()
    for holder in (*local.workloads.values(), *local.instances.values()):
        refs = getattr(holder, "secret_env", None) or getattr(holder, "secrets", {})
        secrets |= {*refs, *(ref.name for ref in refs.values())}
    assert secrets
    for image in local.container_images.values():
        tag = test_ref(image, local)
        d.build_image(client, dockerfile=render_dockerfile(image, local), tag=tag)
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag)
        config = json.loads(docker("inspect", tag))[0]["Config"]
        text = history + json.dumps(config)
        assert not [s for s in secrets if s in text], tag
        names = [e.split("=", 1)[0] for e in config["Env"]]
        assert set(names) <= {"PATH", "PORT", "WORKER_QUEUE", "WORKER_INTERVAL"}, names


def test_build_has_no_network_and_a_failing_step_says_which(client, base):
    name = f"unkai-it-{uuid.uuid4().hex[:8]}"
    tag = f"{name}:net"
    dockerfile = (
        f"FROM {DEBIAN_BASE_IMAGE}\n"
        f"LABEL dev.unkai.image={name}\n"
        "RUN ! grep -q eth0 /proc/net/dev && echo only-loopback\n"
        "RUN echo output-of-the-failing-step && exit 3\n"
    )
    with pytest.raises(DriverError) as err:
        d.build_image(client, dockerfile=dockerfile, tag=tag)
    text = str(err.value)
    assert "Step 4/5 : RUN echo output-of-the-failing-step" in text
    assert "output-of-the-failing-step" in text.split("\n", 1)[1]
    assert "returned a non-zero code: 3" in text
    assert "only-loopback" not in text
    assert d.image_state(client, tag) is None
    assert not docker("ps", "-aq", "--filter", f"label=dev.unkai.image={name}").strip()
    # The steps that passed stay in the layer cache, as with `docker build`; not here.
    assert ours(name)
    # Children before parents; `docker images` gives no order within one second.
    for _ in range(10):
        for layer in ours(name):
            subprocess.run(["docker", "rmi", layer], capture_output=True, check=False)
        if not ours(name):
            break
    assert ours(name) == []


# --- the provider resource through a real Pulumi stack -------------------------------


@pytest.fixture
def stack(base):
    name = "it-" + uuid.uuid4().hex[:8]
    st = select_stack(STACK, name)
    st.set_config("name", auto.ConfigValue(f"unkai-it-{name}"))
    yield st
    st.destroy()
    st.workspace.remove_stack(name)
    (STACK / f"Pulumi.{name}.yaml").unlink(missing_ok=True)


def ours(name: str) -> list[str]:
    """Every image (intermediate layers too) built for image ``name``."""
    return docker("images", "-aq", "--filter", f"label=dev.unkai.image={name}").split()


def test_stack_up_no_change_refresh_rebuild_replace_destroy(stack, client, base):
    name = stack.get_config("name").value
    up = stack.up()
    assert up.summary.resource_changes == {"create": 2}
    out = {k: v.value for k, v in up.outputs.items()}
    tag = out["tag"]
    assert out["reference"] == f"{name}:{tag}"
    assert out["repo_digest"] == out["image_id"]
    assert out["base_image_id"] == base
    state = d.image_state(client, out["reference"])
    assert state is not None and state.id == out["image_id"]
    assert out["size_bytes"] == state.size_bytes > 0

    preview = stack.preview(expect_no_changes=True)
    assert preview.change_summary == {"same": 2}

    # Gone behind unkai's back: refresh sees it, the next up builds it again.
    docker("rmi", out["reference"])
    stack.refresh()
    assert stack.preview().change_summary.get("create") == 1
    again = stack.up()
    assert again.summary.resource_changes == {"create": 1, "same": 1}
    assert d.image_state(client, out["reference"]) is not None

    # A changed Dockerfile is a new image under a new tag: a replace.
    stack.set_config("port", auto.ConfigValue("9090"))
    assert stack.preview().change_summary.get("replace") == 1
    moved = stack.up()
    new_ref = moved.outputs["reference"].value
    assert new_ref != out["reference"]
    assert d.image_state(client, out["reference"]) is None
    assert "9090/tcp" in docker("inspect", "--format", "{{json .Config.ExposedPorts}}", new_ref)

    stack.destroy()
    assert ours(name) == []
    assert d.image_state(client, DEBIAN_BASE_IMAGE) is not None
