"""``unkai env promote``: a source's values written into a target's file, checked first."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from env_helpers import REPO

from unkai.environments import ConfigProblem, load_environment, plan_promotion
from unkai.errors import ConfigError

TRIED = """
vm_images:
  debian-12:
    version: "12.1"   # tried in staging first; a version that looks like a number
    packages: [cloud-init, openssh-server, htop]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    (tmp_path / "unkai.toml").write_text('[project]\nname = "t"\n')
    staging = tmp_path / "environments" / "staging.yaml"
    staging.write_text(staging.read_text() + TRIED)
    return tmp_path


def test_the_targets_image_becomes_the_sources_and_the_rest_of_its_file_stays(project: Path):
    prod = project / "environments" / "prod.yaml"
    before_text = prod.read_text()
    plan = plan_promotion("staging", "prod", root=project)
    assert prod.read_text() == before_text  # a plan writes nothing
    changed = {".".join(map(str, c.path)) for c in plan.changes}
    assert "vm_images.debian-12.version" in changed, changed
    prod.write_text(plan.text)
    after = load_environment("prod", root=project)
    staging = load_environment("staging", root=project)
    assert after.vm_images == staging.vm_images
    assert after.vm_images["debian-12"].version == "12.1"  # still text, not 12.1 the number
    # Its own comments and keys are kept.
    comments = [line for line in before_text.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(line in plan.text for line in comments)
    assert after.hosts == load_environment("prod", root=REPO).hosts
    # Promoted again: nothing left to change.
    assert plan_promotion("staging", "prod", root=project).changes == ()


def test_a_promotion_that_would_break_the_target_writes_nothing(project: Path):
    staging = project / "environments" / "staging.yaml"
    staging.write_text(
        staging.read_text().replace(
            "instance_templates:\n  web:\n", "instance_templates:\n  web:\n    image: debian-13\n"
        )
        + "  debian-13: {version: '13.0', packages: [cloud-init, openssh-server], disk_gb: 4}\n"
    )
    load_environment("staging", root=project)  # valid where it is
    prod = project / "environments" / "prod.yaml"
    before = prod.read_text()
    # The template alone, without the image it boots: prod would name an unknown image.
    with pytest.raises(ConfigError) as err:
        plan_promotion("staging", "prod", root=project, only=["instance_templates"])
    assert "instance_templates.web.image" in str(err.value) and "debian-13" in str(err.value)
    assert prod.read_text() == before


@pytest.mark.parametrize(
    ("source", "target", "only", "said"),
    [
        ("staging", "staging", ["vm_images"], "an environment is promoted to another"),
        ("staging", "prod", ["hosts"], "cannot be promoted"),
        ("staging", "prod", [], "nothing to promote"),
        ("nope", "prod", ["vm_images"], "unknown environment 'nope'"),
    ],
)
def test_what_cannot_be_promoted_is_said(project, source, target, only, said):
    with pytest.raises(ConfigProblem) as err:
        plan_promotion(source, target, root=project, only=only)
    assert said in str(err.value)
