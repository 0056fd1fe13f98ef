"""Environments declared in Python: ``[project] environments = "cloud:environments"``.

Every command loads environments through ``load_environment``; these tests check that a
project's Python is found, run, checked like a file and, when it fails, said plainly.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from env_helpers import REPO

from unkai.environments import (
    ConfigProblem,
    environment_source,
    list_environments,
    load_environment,
    load_yaml_environment,
    plan_new_environment,
)
from unkai.errors import ConfigError
from unkai.toolchain import load_project

# An environment of one host and one VM, in Python.
LOCAL = """
from unkai.model import Environment, Host, HostPool, Instance, Network, VmImage, Zone

def local(name="local", **extra):
    return Environment(
        name=name,
        zones={"z": Zone(name="z")},
        host_pools={"p": HostPool(name="p", zone="z")},
        hosts={"h": Host(name="h", address="127.0.0.1", connection="local", cpus=2,
                         memory_mb=4096, disk_gb=20, cpu_vendor="amd", pool="p", zone="z")},
        networks={"default": Network(name="default", mode="user")},
        vm_images={"deb": VmImage(name="deb", version="1", disk_gb=4)},
        instances={"vm": Instance(name="vm", machine_type="custom-1-1024", image="deb",
                                  zone="z", networks=["default"])},
        **extra,
    )
"""


def python_project(root: Path, body: str, *, source: str = "cloud:environments") -> Path:
    (root / "unkai.toml").write_text(
        f'[project]\nname = "acme"\nenvironments = "{source}"\n', encoding="utf-8"
    )
    (root / "cloud.py").write_text(LOCAL + textwrap.dedent(body), encoding="utf-8")
    return root


def said(err: pytest.ExceptionInfo[ConfigError]) -> str:
    text = str(err.value)
    assert "Traceback" not in text and "Error:" not in text and "Exception" not in text, text
    return text


def test_an_environment_declared_in_python_loads_with_the_projects_name(tmp_path: Path):
    root = python_project(tmp_path, "def environments():\n    return [local(), local('dev')]\n")
    env = load_environment("local", root=root)
    assert env.name == "local" and env.project == "acme"
    assert list(env.instances) == ["vm"]
    assert list_environments(root) == ["dev", "local"]
    assert environment_source("local", root=root) == "cloud.py: environments()"
    assert load_project(root).name == "acme"  # the key is allowed in unkai.toml


def test_a_mapping_of_environments_is_taken_too(tmp_path: Path):
    root = python_project(tmp_path, "def environments():\n    return {'local': local()}\n")
    assert load_environment("local", root=root).name == "local"


def test_overrides_merge_over_a_python_environment_and_are_validated(tmp_path: Path):
    root = python_project(tmp_path, "def environments():\n    return [local()]\n")
    env = load_environment("local", root=root, overrides={"settings": {"ssh_port_base": 2900}})
    assert env.settings["ssh_port_base"] == 2900
    with pytest.raises(ConfigError) as err:
        load_environment("local", root=root, overrides={"instances": {"vm": {"image": "nope"}}})
    text = said(err)
    assert "cloud.py: environments()" in text and "instances.vm" in text, text


def test_an_unknown_name_lists_the_declared_ones(tmp_path: Path):
    root = python_project(tmp_path, "def environments():\n    return [local(), local('dev')]\n")
    with pytest.raises(ConfigProblem) as err:
        load_environment("prod", root=root)
    text = said(err)
    assert "unknown environment 'prod'" in text and "one of dev, local" in text, text


def test_a_name_error_in_the_module_names_the_file_line_and_the_name(tmp_path: Path):
    root = python_project(tmp_path, "def environments():\n    return [missing_helper()]\n")
    with pytest.raises(ConfigError) as err:
        load_environment("local", root=root)
    text = said(err)
    line = LOCAL.count("\n") + 2
    assert f"cloud.py:{line}: environments() failed: a name is not defined" in text, text
    assert "missing_helper" in text


def test_an_invalid_model_value_names_the_model_field_and_value(tmp_path: Path):
    body = """
    from unkai.model import Disk
    def environments():
        return [local(), Disk(name="data")]
    """
    root = python_project(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_environment("local", root=root)
    text = said(err)
    assert "declared an invalid value: Disk" in text and "size_gb" in text, text


def test_a_syntax_error_names_the_line(tmp_path: Path):
    root = python_project(tmp_path, "def environments(:\n    return []\n")
    with pytest.raises(ConfigError) as err:
        load_environment("local", root=root)
    assert f"cloud.py:{LOCAL.count(chr(10)) + 1}:" in said(err)


def test_something_other_than_environments_is_refused(tmp_path: Path):
    root = python_project(tmp_path, "def environments():\n    return ['local']\n")
    with pytest.raises(ConfigError) as err:
        load_environment("local", root=root)
    assert "returned str 'local'; it must return unkai.model.Environment values" in said(err)


def test_a_name_declared_twice_is_refused(tmp_path: Path):
    root = python_project(tmp_path, "def environments():\n    return [local(), local()]\n")
    with pytest.raises(ConfigError) as err:
        load_environment("local", root=root)
    assert "declares environment 'local' twice" in said(err)


def test_a_module_that_loads_its_own_project_is_told_what_to_call(tmp_path: Path):
    body = """
    from pathlib import Path
    from unkai.environments import load_environment
    def environments():
        return [load_environment("local", root=Path(__file__).parent)]
    """
    root = python_project(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_environment("local", root=root)
    assert "load_yaml_environment instead" in said(err)


@pytest.mark.parametrize(
    ("source", "wanted"),
    [
        ("cloud", "must name a module and a function"),
        ("cloud:env:x", "must name a module and a function"),
        ("clouds:environments", "names module clouds, and the project has no clouds.py"),
        ("cloud:nothing", "cloud.py has no function nothing"),
    ],
)
def test_a_wrong_source_in_unkai_toml_names_the_key(tmp_path: Path, source: str, wanted: str):
    root = python_project(tmp_path, "def environments():\n    return [local()]\n", source=source)
    with pytest.raises(ConfigProblem) as err:
        load_environment("local", root=root)
    text = said(err)
    assert "unkai.toml" in text and "project.environments" in text and wanted in text, text


def test_a_project_set_in_python_must_be_the_projects(tmp_path: Path):
    root = python_project(tmp_path, "def environments():\n    return [local(project='other')]\n")
    with pytest.raises(ConfigProblem) as err:
        load_environment("local", root=root)
    assert "may not set project: unkai.toml names it" in said(err)


def test_files_an_environment_names_must_exist_as_for_yaml(tmp_path: Path):
    body = """
    from unkai.model import ContainerImage
    def environments():
        return [local(container_images={"api": ContainerImage(
            name="api", dockerfile_template="ap.Dockerfile.j2")})]
    """
    root = python_project(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_environment("local", root=root)
    text = said(err)
    assert "cloud.py: environments()" in text and "ap.Dockerfile.j2" in text, text


def test_a_new_environment_file_is_refused_with_where_to_add_it(tmp_path: Path):
    root = python_project(tmp_path, "def environments():\n    return [local()]\n")
    with pytest.raises(ConfigProblem) as err:
        plan_new_environment("prod", source="local", root=root)
    assert "declares its environments in Python (cloud.py: environments())" in said(err)


def test_python_built_on_yaml_values_reads_the_files_alone(tmp_path: Path):
    """The YAML loader of a Python project reads environments/ and never runs the module."""
    root = python_project(tmp_path, "raise RuntimeError('never imported')\n")
    (root / "environments").mkdir()
    shutil.copy(REPO / "environments" / "base.yaml", root / "environments")
    assert load_yaml_environment("base", root=root).project == "acme"


@pytest.mark.parametrize(
    ("example", "names"),
    [("python", ["local"]), ("python-yaml", ["local", "staging"])],
)
def test_the_examples_declare_valid_environments(example: str, names: list[str]):
    root = REPO / "examples" / example
    assert list_environments(root) == names
    for name in names:
        env = load_environment(name, root=root)
        assert env.instances or env.instance_groups, name
        assert all(i.networks for i in env.all_instances()), "an instance without a NIC"
