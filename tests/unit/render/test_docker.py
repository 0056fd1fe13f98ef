from __future__ import annotations

import re

import pytest

from unkai.errors import RenderError
from unkai.model import DEBIAN_BASE_IMAGE, ContainerImage, Environment
from unkai.render import dockerfile_hash, image_reference, image_tag, render_dockerfile


@pytest.mark.parametrize("name", ["api", "worker", "plain"])
def test_dockerfile_shape(env: Environment, name: str) -> None:
    image = env.container_images[name]
    text = render_dockerfile(image, env)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == f"FROM {DEBIAN_BASE_IMAGE}"
    users = [line for line in lines if line.startswith("USER ")]
    assert users == ["USER 10001:10001"]
    assert not any(line.startswith(("RUN", "ADD", "COPY")) for line in lines)
    assert "apt-get" not in text
    assert f'dev.unkai.content-hash="{dockerfile_hash(image, env)}"' in text
    assert "dev.unkai.environment" not in text


def test_tag_is_content_hash_and_same_in_every_environment(
    env: Environment, sample_document: dict[str, object]
) -> None:
    api = env.container_images["api"]
    assert image_tag(api, env) == dockerfile_hash(api, env)[:16]
    assert re.fullmatch(r"api:[0-9a-f]{16}", image_reference(api, env))
    sample_document["name"] = "prod"
    prod = Environment.model_validate(sample_document)
    assert render_dockerfile(prod.container_images["api"], prod) == render_dockerfile(api, env)


def test_variables_change_the_tag(sample_document: dict[str, object]) -> None:
    env = Environment.model_validate(sample_document)
    sample_document["container_images"]["api"]["variables"]["port"] = "9090"  # type: ignore[index]
    other = Environment.model_validate(sample_document)
    assert "EXPOSE 9090" in render_dockerfile(other.container_images["api"], other)
    assert image_tag(env.container_images["api"], env) != image_tag(
        other.container_images["api"], other
    )


def test_registry_in_reference(sample_document: dict[str, object]) -> None:
    sample_document["container_images"]["api"]["registry"] = "registry.local:5000/team"  # type: ignore[index]
    env = Environment.model_validate(sample_document)
    assert image_reference(env.container_images["api"], env).startswith(
        "registry.local:5000/team/api:"
    )


def test_missing_template_is_a_render_error(env: Environment) -> None:
    image = ContainerImage(name="api", dockerfile_template="nope.Dockerfile.j2")
    with pytest.raises(RenderError, match=r"docker/nope\.Dockerfile\.j2 not found"):
        render_dockerfile(image, env)


def test_a_variable_the_image_does_not_set_names_the_key_to_set(
    sample_document: dict, tmp_path
) -> None:
    from unkai.errors import ConfigError
    from unkai.render import Templates

    own = tmp_path / "templates" / "docker"
    own.mkdir(parents=True)
    (own / "mine.Dockerfile.j2").write_text(
        '{% extends "docker/base.Dockerfile.j2" %}\n'
        "{% block environment %}\nENV PORT={{ variables.prot | to_json }}\n{% endblock %}\n"
    )
    sample_document["container_images"]["api"]["dockerfile_template"] = "mine.Dockerfile.j2"
    env = Environment.model_validate(sample_document)
    with pytest.raises(ConfigError) as err:
        render_dockerfile(env.container_images["api"], env, templates=Templates(tmp_path))
    assert err.value.key_path == "container_images.api.variables.prot"
    assert "line 3" in str(err.value) and "did you mean 'port'?" in str(err.value)
