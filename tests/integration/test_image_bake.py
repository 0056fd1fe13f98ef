"""A custom image bakes an Ansible playbook in: a real mmdebstrap build with the bake.

The playbook (written by the test) installs ``jq`` from Debian with ``ansible.builtin.apt``
and writes a file naming the image; the rootfs tarball is read with :mod:`tarfile` to
see both, and Ansible's temporary files must be gone. A second build of the same spec
comes from the cache; editing the playbook gives another digest.
"""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import pytest

from unkai.drivers.images import ImageSpec, build_image
from unkai.render import playbook_digest

pytestmark = pytest.mark.integration

PLAYBOOK = """\
- name: Bake a test image
  hosts: all
  tasks:
    - name: Install jq from Debian
      ansible.builtin.apt:
        name: jq
        state: present
    - name: Name the image
      ansible.builtin.template:
        src: templates/unkai-image.j2
        dest: /etc/unkai-image
        mode: "0644"
"""


def test_baked_image_has_the_playbooks_work_and_is_cached(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "templates").mkdir(parents=True)
    (project / "templates" / "unkai-image.j2").write_text(
        "{{ unkai_image_name }} {{ unkai_image_version }}\n"
    )
    playbook = project / "bake.yml"
    playbook.write_text(PLAYBOOK)
    spec = ImageSpec(
        name="bake-test",
        version="1",
        disk_gb=2,
        playbook=str(playbook),
        playbook_digest=playbook_digest(playbook),
    )
    cache = tmp_path / "cache"
    lines: list[str] = []

    start = time.monotonic()
    built = build_image(spec, cache, say=lines.append)
    cold = time.monotonic() - start
    assert built.build_seconds > 0
    assert any("baking" in line for line in lines)

    with tarfile.open(built.rootfs) as tar:
        names = set(tar.getnames())
        marker = tar.extractfile("./etc/unkai-image")
        assert marker is not None
        assert marker.read() == b"bake-test 1\n"
    assert "./usr/bin/jq" in names
    assert "./usr/lib/python3/dist-packages/apt/__init__.py" in names  # BAKE_PACKAGES
    assert not any(n.startswith(("./root/.ansible", "./tmp/.unkai-ansible")) for n in names)
    assert built.disk.stat().st_size > 0

    start = time.monotonic()
    again = build_image(spec, cache)
    cached = time.monotonic() - start
    assert again.digest == built.digest
    assert again.build_seconds == 0
    assert cached < 1.0, f"cache hit took {cached:.2f}s (cold build {cold:.0f}s)"

    (project / "templates" / "unkai-image.j2").write_text("edited\n")
    assert playbook_digest(playbook) != spec.playbook_digest
