"""A user's own cloud repository, as a new user meets unkai: the wheel, ``unkai init``, ``up``.

The wheel is built from this checkout and installed into a fresh venv outside it; every
command runs from the new project's folder with that venv's ``unkai``, so nothing of the
checkout (its environments, templates, playbooks or programs) can be what is used. The
project deploys its own Dockerfile template and its own image playbook on this machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import commands
from commands import clean_env, ok

ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.executable)


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


def test_up_deploys_the_project_with_its_template_and_playbook(venv: Path, project: Path):
    try:
        up = unkai(venv, project, "up", "local")
        shown = ok(up)
        assert "app" in shown
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
    finally:
        destroyed = unkai(venv, project, "destroy", "local")
    ok(destroyed)
