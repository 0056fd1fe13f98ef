"""The plans of the Docker driver: nothing here talks to an engine."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from unkai.drivers import docker as d
from unkai.drivers.images import BuiltImage, docker_rootfs_members
from unkai.errors import DriverError

DIGEST = "c863b22702a06c56285c22d01fdc36705f708803ca0132e928393d4b73d5270c"


def _built(tmp_path: Path) -> BuiltImage:
    folder = tmp_path / "img"
    return BuiltImage(
        DIGEST,
        folder,
        folder / "disk.qcow2",
        folder / "vmlinuz",
        folder / "initrd.img",
        folder / "rootfs.tar",
    )


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_context_tar_holds_the_dockerfile_and_files_sorted_and_deterministic():
    files = {"etc/app.conf": "port = 8080\n", "a.txt": "a"}
    data = d.context_tar("FROM unkai/debian:12\n", files)
    assert data == d.context_tar("FROM unkai/debian:12\n", dict(reversed(files.items())))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["Dockerfile", "a.txt", "etc/app.conf"]
        for member in tar.getmembers():
            assert (member.mode, member.mtime, member.uid, member.gid) == (0o644, 0, 0, 0)
        dockerfile = tar.extractfile("Dockerfile")
        assert dockerfile is not None and dockerfile.read() == b"FROM unkai/debian:12\n"


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside", "Dockerfile", ""])
def test_context_files_stay_inside_the_context(bad):
    with pytest.raises(DriverError, match="inside the context"):
        d.context_tar("FROM x\n", {bad: "x"})


def test_build_plan_has_no_network_no_pull_and_unkai_labels():
    plan = d.plan_build(
        dockerfile="FROM unkai/debian:12\n",
        tag="api:0123456789abcdef",
        labels={"dev.unkai.base-digest": DIGEST},
        build_args={"B": "2", "A": "1"},
    )
    args = plan.api_arguments()
    assert args["pull"] is False
    assert args["network_mode"] == "none"
    assert args["rm"] is True and args["forcerm"] is True
    assert args["custom_context"] is True and args["decode"] is True
    assert args["tag"] == "api:0123456789abcdef"
    assert args["labels"] == {"dev.unkai.managed-by": "unkai", "dev.unkai.base-digest": DIGEST}
    assert list(args["buildargs"].items()) == [("A", "1"), ("B", "2")]
    assert _members(plan.context)["Dockerfile"].size == len("FROM unkai/debian:12\n")


def test_build_plan_without_args_passes_empty_ones():
    args = d.plan_build(dockerfile="FROM x\n", tag="w:1").api_arguments()
    assert args["buildargs"] == {} and args["labels"] == {"dev.unkai.managed-by": "unkai"}


def test_base_import_plan_names_the_digest_and_labels_it(tmp_path):
    plan = d.plan_base_import(_built(tmp_path))
    assert plan.repository == "unkai/debian"
    assert plan.digest_tag == "12-c863b22702a0"
    assert plan.reference == "unkai/debian:12-c863b22702a0"
    assert plan.aliases == ("unkai/debian:12",)
    assert plan.rootfs == tmp_path / "img" / "rootfs.tar"
    assert f'LABEL dev.unkai.rootfs-digest="{DIGEST}"' in plan.changes
    assert 'CMD ["/bin/bash"]' in plan.changes
    assert any(c.startswith("ENV PATH=") for c in plan.changes)
    other = d.plan_base_import(_built(tmp_path), ref="registry.local:5000/base:7")
    assert other.reference == "registry.local:5000/base:7-c863b22702a0"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("unkai/debian:12", ("unkai/debian", "12")),
        ("api", ("api", "latest")),
        ("registry.local:5000/api", ("registry.local:5000/api", "latest")),
        ("registry.local:5000/team/api:3f9a", ("registry.local:5000/team/api", "3f9a")),
    ],
)
def test_split_reference(ref, expected):
    assert d.split_reference(ref) == expected


def test_push_plan_only_with_a_registry():
    assert d.plan_push(name="api", tag="3f9a", registry=None) is None
    plan = d.plan_push(name="api", tag="3f9a", registry="registry.local:5000/team/")
    assert plan is not None
    assert plan.source == "api:3f9a"
    assert plan.repository == "registry.local:5000/team/api"
    assert plan.reference == "registry.local:5000/team/api:3f9a"


def _rootfs(path: Path, big: int) -> None:
    with tarfile.open(path, "w") as tar:

        def add(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(data)
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("./", kind=tarfile.DIRTYPE)
        add("./boot", kind=tarfile.DIRTYPE)
        add("./boot/vmlinuz-6.1.0-cloud-amd64", b"k" * 1000)
        add("./etc", kind=tarfile.DIRTYPE)
        add("./etc/hostname", b"")
        add("./etc/os-release", b"PRETTY_NAME=Debian 12\n")
        add("./usr/lib/modules/6.1.0/kernel/x.ko", b"m" * 100)
        add("./lib/modules/6.1.0/y.ko", b"m")
        add("./usr/bin/big", b"b" * big)
        add("./usr/bin/link", kind=tarfile.SYMTYPE, link="big")
        add("./usr/bin/hard", kind=tarfile.LNKTYPE, link="./usr/bin/big")
        add("./var/empty", kind=tarfile.DIRTYPE)


def test_filtered_rootfs_leaves_out_kernel_and_modules_and_streams(tmp_path):
    source = tmp_path / "rootfs.tar"
    big = 3 << 20
    _rootfs(source, big)
    chunks = list(d.filtered_rootfs(source))
    assert len(chunks) >= 2  # streamed, not one blob
    assert max(len(c) for c in chunks) <= big + (1 << 20) + 64 * 1024
    out = _members(b"".join(chunks))
    with tarfile.open(source) as tar:
        expected = [m.name for m in docker_rootfs_members(tar.getmembers())]
    assert list(out) == expected
    assert "./boot" in out and not any(n.startswith("./boot/") for n in out)
    assert not any("/modules/" in n for n in out)
    assert out["./usr/bin/link"].issym() and out["./usr/bin/link"].linkname == "big"
    assert out["./usr/bin/hard"].islnk()
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        body = tar.extractfile("./usr/bin/big")
        assert body is not None and body.read() == b"b" * big


def test_filtered_rootfs_of_a_missing_tarball_is_a_driver_error(tmp_path):
    with pytest.raises(DriverError, match="cannot read the rootfs"):
        list(d.filtered_rootfs(tmp_path / "nope.tar"))


def test_build_log_names_the_failing_step_and_its_output():
    lines: list[str] = []
    log = d._BuildLog(lines.append, "api:1234")
    log.feed({"stream": "Step 1/3 : FROM unkai/debian:12\n"})
    log.feed({"stream": " ---> 3e956445e297\n"})
    log.feed({"stream": "Step 2/3 : LABEL a=b\n"})
    log.feed({"stream": " ---> Using cache\n"})
    log.feed({"stream": "Step 3/3 : RUN make\n"})
    log.feed({"stream": "make: *** No targets.  Stop.\n"})
    log.raise_error()  # no error yet
    log.feed(
        {
            "errorDetail": {"code": 2, "message": "The command '/bin/sh -c make' returned 2"},
            "error": "The command '/bin/sh -c make' returned 2",
        }
    )
    log.feed({"stream": "Removing intermediate container 1234\n"})
    with pytest.raises(DriverError) as err:
        log.raise_error()
    text = str(err.value)
    assert text.startswith("docker build of api:1234 failed at Step 3/3 : RUN make")
    assert "returned 2" in text and "No targets" in text
    assert "3e956445e297" not in text  # output of earlier steps is not repeated
    assert (log.steps, log.cached) == (3, 1)
    assert lines[0] == "Step 1/3 : FROM unkai/debian:12"


def test_import_answer_gives_the_image_id_or_an_error():
    answer = '{"status":"Downloading"}\n{"status":"sha256:abc"}\n'
    assert d._import_id(answer) == "sha256:abc"
    with pytest.raises(DriverError, match="no space left"):
        d._import_id('{"error":"no space left"}\n')
    with pytest.raises(DriverError, match="no image id"):
        d._import_id("garbage")


def test_the_shared_base_is_never_removed():
    with pytest.raises(DriverError, match="shared base"):
        d.remove_image(object(), "unkai/debian:12")
    with pytest.raises(DriverError, match="shared base"):
        d.remove_image(object(), "unkai/debian:12-c863b22702a0")


def test_run_commands_are_each_run_step_as_its_container_runs_it():
    dockerfile = (
        "FROM unkai/debian:12\n"
        "# a comment\n"
        "RUN sleep 6 && echo x > /built\n"
        "run apt-get install -y \\\n"
        "    # dropped, as the engine drops it\n"
        "    curl   jq\n"
        'RUN ["/bin/echo", "exec form"]\n'
        "COPY a /a\n"
        "RUN\n"
    )
    assert d.run_commands(dockerfile) == {
        "sleep 6 && echo x > /built",
        "apt-get install -y curl jq",
        "/bin/echo exec form",
    }
    assert d.plan_build(dockerfile=dockerfile, tag="w:1").run_commands == d.run_commands(dockerfile)
    assert d.run_commands("FROM x\nCOPY a /a\n") == frozenset()
