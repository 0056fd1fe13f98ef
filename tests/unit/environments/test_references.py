"""Files an environment names are checked when it loads; missing ones named, closest shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from unkai.environments import ConfigProblems, load_environment
from unkai.errors import ConfigError

IMAGES = """\
    vm_images:
      app:
        version: "1"
        playbook: {playbook}
    container_images:
      web:
        dockerfile_template: {template}
"""


def test_a_missing_template_and_playbook_are_named_with_their_line(project: Path, write):
    (project / "playbooks").mkdir()
    (project / "playbooks" / "app.yml").write_text("- hosts: all\n")
    write("lab", IMAGES.format(playbook="playbooks/ap.yml", template="apii.Dockerfile.j2"))
    with pytest.raises(ConfigProblems) as err:
        load_environment("lab", root=project)
    shown = str(err.value)
    assert "environment 'lab' names files that do not exist: 2 problems" in shown
    assert "environments/lab.yaml:4: vm_images.app.playbook: no such playbook" in shown
    assert "playbooks/app.yml (did you mean it?)" in shown
    assert "environments/lab.yaml:7: container_images.web.dockerfile_template" in shown
    assert "api.Dockerfile.j2 (did you mean it?)" in shown


def test_the_projects_own_template_counts(project: Path, write):
    (project / "templates" / "docker").mkdir(parents=True)
    (project / "templates" / "docker" / "mine.Dockerfile.j2").write_text("FROM x\n")
    (project / "playbooks").mkdir()
    (project / "playbooks" / "app.yml").write_text("- hosts: all\n")
    write("lab", IMAGES.format(playbook="playbooks/app.yml", template="mine.Dockerfile.j2"))
    env = load_environment("lab", root=project)
    assert env.container_images["web"].dockerfile_template == "mine.Dockerfile.j2"


def test_the_project_comes_from_unkai_toml_never_from_a_file(project: Path, write):
    (project / "unkai.toml").write_text('[project]\nname = "acme"\n')
    write("lab", "description: x\n")
    assert load_environment("lab", root=project).project == "acme"
    write("lab", "project: other\n")
    with pytest.raises(ConfigError, match="an environment file may not set project"):
        load_environment("lab", root=project)


def test_a_kubernetes_version_the_toolchain_does_not_build_is_refused_when_loading(
    project: Path, write
):
    from unkai._pins import pinned_version

    write("lab", 'clusters:\n  apps:\n    kubernetes_version: "1.31.4"\n')
    with pytest.raises(ConfigError) as err:
        load_environment("lab", root=project)
    shown = str(err.value)
    assert "environments/lab.yaml:3: clusters.apps.kubernetes_version" in shown, shown
    assert "unkai's toolchain does not build Kubernetes 1.31.4" in shown
    assert f"allowed: {pinned_version('kubernetes')}" in shown
    write("lab", f'clusters:\n  apps:\n    kubernetes_version: "{pinned_version("kubernetes")}"\n')
    assert load_environment("lab", root=project).clusters["apps"].kubernetes_version


def test_a_node_image_of_a_kubernetes_version_not_built_is_refused_when_loading(
    project: Path, write
):
    from unkai._pins import pinned_version

    write("lab", 'vm_images:\n  node:\n    version: "1"\n    kubernetes: "1.35.0"\n')
    with pytest.raises(ConfigError) as err:
        load_environment("lab", root=project)
    shown = str(err.value)
    assert "vm_images.node.kubernetes" in shown, shown
    assert "unkai's toolchain does not build Kubernetes 1.35.0" in shown
    assert f"allowed: {pinned_version('kubernetes')}" in shown
