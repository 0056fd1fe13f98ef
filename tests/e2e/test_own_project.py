"""A user's own cloud repository, as a new user meets unkai: the wheel, ``unkai init``, ``up``.

The wheel is built from this checkout and installed into a fresh venv outside it; every
command runs from the new project's folder with that venv's ``unkai``, so nothing of the
checkout (its environments, templates, playbooks or programs) can be what is used. The
project deploys its own Dockerfile template and its own image playbook on this machine.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from unkai.drivers import libvirt
from unkai.render import STORAGE_POOL, owned_by

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import commands
from commands import clean_env, ok

ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.executable)
LOCAL_URI = "qemu:///system"


def run(*argv: str | Path, cwd: Path, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """A command of the fresh venv's, with none of this venv's variables."""
    return commands.run(*argv, cwd=cwd, timeout=timeout, env=clean_env())


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with unkai installed from its wheel."""
    base = tmp_path_factory.mktemp("own-project")
    wheels = base / "dist"
    ok(run(PYTHON, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, ROOT, cwd=base))
    (wheel,) = wheels.glob("unkai-*.whl")
    ok(run(sys._base_executable, "-m", "venv", base / "venv", cwd=base))  # type: ignore[attr-defined]
    pip = base / "venv" / "bin" / "pip"
    lock = ROOT / "requirements.lock"
    ok(run(pip, "install", "-q", "--disable-pip-version-check", wheel, "-c", lock, cwd=base))
    # The language host and the pinned engine (from the shared cache) for this venv.
    ok(run(base / "venv" / "bin" / "unkai", "bootstrap", cwd=base))
    return base / "venv"


@pytest.fixture(scope="module")
def project(venv: Path) -> Path:
    folder = venv.parent / "acme"
    made = ok(run(venv / "bin" / "unkai", "init", folder, cwd=venv.parent))
    assert "made project acme" in made
    return folder


def unkai(venv: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The venv's unkai, run from a folder inside the project (found like git)."""
    inside = project / "environments"
    return run(venv / "bin" / "unkai", *args, cwd=inside)


def test_the_installed_package_is_not_the_checkout(venv: Path):
    where = ok(run(venv / "bin" / "python", "-c", "import unkai; print(unkai.__file__)", cwd=venv))
    assert str(venv) in where and str(ROOT) not in where


def test_init_refuses_a_folder_that_is_not_empty(venv: Path, project: Path):
    again = run(venv / "bin" / "unkai", "init", project, cwd=venv.parent)
    assert again.returncode == 2 and "is not an empty folder" in again.stderr
    assert "Traceback" not in again.stderr


def test_outside_any_project_the_error_says_where_it_looked(venv: Path):
    lost = run(venv / "bin" / "unkai", "plan", "local", cwd=venv)
    assert lost.returncode == 2
    assert "no unkai project here: no unkai.toml in " + str(venv) in lost.stderr


def test_plan_and_render_use_the_projects_own_files(venv: Path, project: Path):
    planned = ok(unkai(venv, project, "plan", "local"))
    assert "localhost" in planned
    out = project / "out"
    ok(unkai(venv, project, "render", "local", "--out", str(out)))
    dockerfile = (out / "docker" / "web" / "Dockerfile").read_text()
    assert 'ENV GREETING="hello from this project"' in dockerfile  # the project's template
    assert (out / "libvirt" / "domains" / "app.xml").is_file()


def test_a_project_declared_in_python_plans_and_renders_from_the_wheel(venv: Path):
    folder = venv.parent / "acme-py"
    made = ok(run(venv / "bin" / "unkai", "init", folder, "--python", cwd=venv.parent))
    assert "cloud.py" in made and "environments/" not in made
    shown = ok(run(venv / "bin" / "unkai", "env", "show", "local", cwd=folder))
    assert "project: acme-py" in shown
    out = folder / "out"
    ok(run(venv / "bin" / "unkai", "render", "local", "--out", out, cwd=folder))
    dockerfile = (out / "docker" / "web" / "Dockerfile").read_text()
    assert 'ENV GREETING="hello from this project"' in dockerfile  # the project's template
    assert (out / "libvirt" / "domains" / "app.xml").is_file()


def test_smoke_runs_from_the_project(venv: Path, project: Path):
    assert "smoke ok" in ok(unkai(venv, project, "smoke"))


def sweep_an_earlier_run(project: str, env: str) -> list[str]:
    """Remove what a run of this module killed before its destroy left on this machine.

    Every run makes a new project of the same name, with new keys: the domain an earlier
    run left is not this run's, and ``up`` rightly refuses to take it over. The sweep is
    ``destroy``'s own (:meth:`unkai.drivers.libvirt.Session.sweep`): only objects whose
    metadata and names are ``project``'s ``env``'s go.
    """
    with libvirt.session(LOCAL_URI) as conn:
        removed, _ = conn.sweep(
            env, project=project, pool=STORAGE_POOL,
            owns=functools.partial(owned_by, f"{project}-{env}"),
        )  # fmt: skip
    return removed


@pytest.fixture(scope="module")
def deployed(venv: Path, project: Path) -> Iterator[Path]:
    """The project deployed on ``local``; destroyed after the module's tests."""
    swept = sweep_an_earlier_run(project.name, "local")
    if swept:
        print(f"removed what an earlier run left: {', '.join(swept)}")
    try:
        shown = ok(unkai(venv, project, "up", "local"))
        assert "app" in shown
        yield project
    finally:
        destroyed = unkai(venv, project, "destroy", "local")
    ok(destroyed)


def test_up_deploys_the_project_with_its_template_and_playbook(venv: Path, deployed: Path):
    project = deployed
    again = ok(unkai(venv, project, "up", "local", "--expect-no-changes"))
    assert "error" not in again.lower()
    # The project's playbook was baked into the image the VM booted.
    motd = ok(unkai(venv, project, "ssh", "local", "app", "cat", "/etc/motd"))
    assert "baked by this project" in motd
    # Its domain carries the project: another project's `local` never meets it.
    names = ok(run("virsh", "-c", "qemu:///system", "list", "--name", cwd=project))
    assert "acme-local-app" in names.split()
    # The project's Dockerfile template built the container image.
    images = ok(run("docker", "image", "ls", "--filter", "label=dev.unkai.image=web",
                    "--format", "{{.ID}}", cwd=project)).split()  # fmt: skip
    assert images, "no image of the project's web was built"
    env = ok(run("docker", "image", "inspect", "--format", "{{json .Config.Env}}",
                 images[0], cwd=project))  # fmt: skip
    assert "GREETING=hello from this project" in env


def git(project: Path, *args: str) -> str:
    who = ("-c", "user.name=Reviewer", "-c", "user.email=reviewer@example.invalid")
    return ok(run("git", *who, *args, cwd=project))


def commit(project: Path, message: str, edit: Callable[[str], str], file: str) -> None:
    path = project / "environments" / file
    path.write_text(edit(path.read_text()))
    git(project, "commit", "-q", "-am", message)


def review(venv: Path, project: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """``unkai review --base HEAD~1 local``'s exit status, its JSON and its Markdown."""
    as_json = unkai(venv, project, "review", "--base", "HEAD~1", *args, "local", "--json")
    markdown = unkai(venv, project, "review", "--base", "HEAD~1", *args, "local")
    assert as_json.returncode == markdown.returncode, markdown.stderr
    assert "Traceback" not in as_json.stderr + markdown.stderr
    return as_json.returncode, json.loads(as_json.stdout), markdown.stdout


def _resources(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (env,) = report["environments"]
    return {change["resource"]: change for change in env["resources"]}


def test_review_reports_each_pull_request_against_the_deployed_stack(venv: Path, deployed: Path):
    project = deployed
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the cloud as deployed")
    ignored = ok(run("git", "status", "--porcelain", "--ignored", cwd=project))
    assert ".unkai/" in ignored  # state, keys and the passphrase never enter the repository

    # Nothing changed: exit 0.
    same = unkai(venv, project, "review", "--base", "HEAD")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "no change" in same.stdout and "No environment changes" in same.stdout

    # More memory for the VM: an update, the capacity chart moves.
    commit(project, "app: 1 GiB", lambda t: t.replace("custom-1-512", "custom-1-1024"),
           "base.yaml")  # fmt: skip
    code, report, markdown = review(venv, project)
    assert code == 3, markdown
    assert report["outcome"] == "changes"
    app = _resources(report)["local-app"]
    assert app["op"] == "update", app
    assert app["properties"]["memory_mb"] == {"before": 512, "after": 1024}
    (env,) = report["environments"]
    assert {"path": "instances.app.machine_type", "op": "change",
            "old": "custom-1-512", "new": "custom-1-1024"} in env["environment"]  # fmt: skip
    (host,) = env["capacity"]
    assert host["before"]["memory_mb"][0] == 512 and host["after"]["memory_mb"][0] == 1024
    assert "| `local-app` | vms | **update** | `domain_xml`, `memory_mb`: 512 → 1024" in markdown
    assert "memory █" in markdown and "<memory unit='MiB'>1024</memory>" in markdown

    # A new image version: the image and the VM booted from it are replaced, with reasons.
    commit(project, "app-image 2", lambda t: t.replace('version: "1"', 'version: "2"'),
           "base.yaml")  # fmt: skip
    code, report, markdown = review(venv, project)
    assert code == 3, markdown
    changes = _resources(report)
    assert changes["local-app-image-build"]["op"] == "replace"
    assert any(r.startswith("version: the image's content changes")
               for r in changes["local-app-image-build"]["reasons"])  # fmt: skip
    assert changes["local-app"]["op"] == "replace"
    assert any(r.startswith("image_volume_path:") for r in changes["local-app"]["reasons"])
    assert "**replace**" in markdown and "the image's content changes" in markdown

    # A password typed into the VM's user-data, in an environment that forbids it.
    broken = "instances:\n  app:\n    user_data:\n      password: hunter2-typed-in-clear\n"
    broken += "policies:\n  secret-values: mandatory\n"
    commit(project, "a password in clear", lambda t: t + broken, "local.yaml")
    code, report, markdown = review(venv, project)
    assert code == 4, markdown
    assert report["outcome"] == "failed"
    (env,) = report["environments"]
    (violation,) = [p for p in env["policies"] if p["level"] == "mandatory"]
    assert violation["policy"] == "secret-values" and violation["resource"] == "local-app"
    assert "(environments/local.yaml: instances.app)" in violation["message"]
    assert "❌ mandatory" in markdown and "environments/local.yaml: instances.app" in markdown
    assert "hunter2" not in markdown and "hunter2" not in json.dumps(report)

    # The pipeline unkai init wrote runs the same command, and the same verdict.
    workflow = yaml.safe_load((project / ".github" / "workflows" / "unkai-review.yml").read_text())
    (step,) = [s for s in workflow["jobs"]["review"]["steps"] if s.get("id") == "review"]
    outputs = project.parent / "github-output"
    env = {**clean_env(), "GITHUB_BASE_REF": "main", "GITHUB_OUTPUT": str(outputs),
           "PATH": f"{venv / 'bin'}:{clean_env()['PATH']}"}  # fmt: skip
    git(project, "update-ref", "refs/remotes/origin/main", "HEAD~1")  # the pull request's base
    ok(commands.run("bash", "-e", "-c", step["run"], cwd=project, env=env, timeout=600))
    assert outputs.read_text() == "status=4\n"
    assert "secret-values" in (project / "review.md").read_text()
    git(project, "reset", "-q", "--hard", "HEAD~3")  # the cloud as deployed, for destroy
