from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from unkai.errors import RenderError
from unkai.model import Environment
from unkai.render import (
    BUILTIN_TEMPLATES,
    Templates,
    make_jinja_environment,
    render_dockerfile,
    template_search_path,
)
from unkai.render.filters import FILTERS


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_builtin_templates_are_found_from_the_checkout() -> None:
    assert BUILTIN_TEMPLATES.is_dir()
    for name in (
        "libvirt/domain.xml.j2",
        "libvirt/network.xml.j2",
        "cloud-init/user-data.j2",
        "cloud-init/meta-data.j2",
        "cloud-init/network-config.j2",
        "docker/base.Dockerfile.j2",
        "docker/api.Dockerfile.j2",
        "docker/worker.Dockerfile.j2",
        "ansible/inventory.yml.j2",
        "ansible/host_vars.yml.j2",
        "kubernetes/deployment.yaml.j2",
        "kubernetes/service.yaml.j2",
        "kubernetes/hpa.yaml.j2",
        "kubernetes/pdb.yaml.j2",
    ):
        assert (BUILTIN_TEMPLATES / name).is_file(), name


def test_environment_settings() -> None:
    jinja = make_jinja_environment([BUILTIN_TEMPLATES])
    assert jinja.undefined is jinja2.StrictUndefined
    assert jinja.keep_trailing_newline and jinja.trim_blocks and jinja.lstrip_blocks
    for name, function in FILTERS.items():
        assert jinja.filters[name].__wrapped__ is function  # checked for undefined values
    assert callable(jinja.autoescape)
    assert jinja.autoescape("libvirt/domain.xml.j2") is True
    assert jinja.autoescape("kubernetes/deployment.yaml.j2") is False


def test_no_environment_variables_or_clocks_reach_templates(tmp_path: Path) -> None:
    templates = Templates(_project(tmp_path, {"probe.j2": "{{ environ }}"}))
    with pytest.raises(RenderError, match="environ"):
        templates.render("probe.j2", {})
    jinja = make_jinja_environment([BUILTIN_TEMPLATES])
    assert set(jinja.globals) <= {"range", "dict", "lipsum", "cycler", "joiner", "namespace"}


def test_undefined_value_names_template_line_and_value(tmp_path: Path) -> None:
    templates = Templates(_project(tmp_path, {"kind/file.j2": "ok\n{{ image.nope }}\n"}))
    with pytest.raises(RenderError) as caught:
        templates.render("kind/file.j2", {"image": {}})
    message = str(caught.value)
    assert "kind/file.j2" in message and "line 2" in message and "nope" in message
    assert isinstance(caught.value.__cause__, jinja2.UndefinedError)


def test_syntax_error_and_missing_template(tmp_path: Path) -> None:
    templates = Templates(_project(tmp_path, {"bad.j2": "{% if %}"}))
    with pytest.raises(RenderError, match=r"bad.j2, line 1: syntax error"):
        templates.render("bad.j2", {})
    with pytest.raises(RenderError, match=r"template missing\.j2 not found; looked in"):
        templates.render("missing.j2", {})


def test_xml_templates_are_autoescaped(tmp_path: Path) -> None:
    templates = Templates(_project(tmp_path, {"x.xml.j2": "<a v='{{ v }}'/>", "x.j2": "{{ v }}"}))
    assert templates.render("x.xml.j2", {"v": "'/><evil/>"}) == "<a v='&#39;/&gt;&lt;evil/&gt;'/>"
    assert templates.render("x.j2", {"v": "<b>"}) == "<b>"


def test_project_templates_override_builtins(tmp_path: Path, env: Environment) -> None:
    project = _project(
        tmp_path,
        {"docker/api.Dockerfile.j2": "FROM {{ image.base_image }}\nUSER {{ uid }}\n"},
    )
    assert template_search_path(project) == ((project / "templates").resolve(), BUILTIN_TEMPLATES)
    templates = Templates(project)
    assert templates.origin("docker/api.Dockerfile.j2").is_relative_to(project)
    assert templates.origin("docker/worker.Dockerfile.j2").is_relative_to(BUILTIN_TEMPLATES)
    api = env.container_images["api"]
    assert render_dockerfile(api, env, templates=templates) == "FROM unkai/debian:12\nUSER 10001\n"
    assert render_dockerfile(api, env) != render_dockerfile(api, env, templates=templates)


def test_search_path_without_project_folder(tmp_path: Path) -> None:
    assert template_search_path(tmp_path) == (BUILTIN_TEMPLATES,)
    assert template_search_path(None) == (BUILTIN_TEMPLATES,)
