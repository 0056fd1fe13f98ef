"""``unkai init``: the scaffolds, of YAML environments and of Python ones, declare one cloud."""

from __future__ import annotations

from pathlib import Path

from unkai.cli.init import init, scaffold_files
from unkai.environments import load_environment, python_source


def made(tmp_path: Path, *, python: bool = False) -> Path:
    target = tmp_path / "acme"
    init(target, name=None, python=python)
    assert (target / "unkai.toml").is_file()
    return target


def test_the_python_scaffold_declares_in_cloud_py_what_the_yaml_one_declares(tmp_path: Path):
    yaml_project = made(tmp_path / "yaml")
    python_project = made(tmp_path / "python", python=True)
    assert python_source(yaml_project) is None
    assert str(python_source(python_project)) == "cloud.py: environments()"
    assert not (python_project / "environments").exists()
    for shared in ("templates/docker/web.Dockerfile.j2", "playbooks/app.yml", "__main__.py"):
        assert (python_project / shared).read_text() == (yaml_project / shared).read_text()
    # The same cloud, value for value.
    from_yaml = load_environment("local", root=yaml_project)
    assert load_environment("local", root=python_project) == from_yaml


def test_the_scaffold_ships_pipelines_that_run_unkai_review_with_this_version():
    import importlib.metadata

    import yaml

    files = scaffold_files("acme")
    version = importlib.metadata.version("unkai")
    github = yaml.safe_load(files[Path(".github/workflows/unkai-review.yml")])
    steps = github["jobs"]["review"]["steps"]
    (review,) = [step for step in steps if step.get("id") == "review"]
    assert 'unkai review --base "origin/$GITHUB_BASE_REF" > review.md' in review["run"]
    assert any(f'"unkai=={version}"' in str(step.get("run")) for step in steps)
    assert github["permissions"] == {"contents": "read", "pull-requests": "write"}
    gitlab = yaml.safe_load(files[Path(".gitlab-ci.yml")])["unkai-review"]
    script = "\n".join(gitlab["script"])
    assert 'unkai review --base "origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"' in script
    assert f'"unkai=={version}"' in script and gitlab["artifacts"]["paths"] == ["review.md"]
    for text in files.values():
        assert "$$" not in text  # every escape was filled in
