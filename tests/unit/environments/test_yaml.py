"""Reading files: YAML errors name file and line; surprises become errors, not values."""

from __future__ import annotations

from pathlib import Path

import pytest
from env_helpers import Write

from unkai.environments import ConfigProblem, load_environment, resolve_document
from unkai.environments._yaml import MAX_DEPTH, MAX_VALUES, parse_text


def _error(project: Path, write: Write, text: str) -> ConfigProblem:
    write("qa", text)
    with pytest.raises(ConfigProblem) as caught:
        resolve_document("qa", root=project)
    return caught.value


def test_syntax_error_names_file_line_and_column(project: Path, write: Write) -> None:
    err = _error(project, write, "hosts:\n  a: {cpus: 2\n  b: 3\n")
    assert err.file == "environments/qa.yaml"
    assert err.line == 3
    assert str(err).startswith("environments/qa.yaml:3: invalid YAML:")
    assert "column" in err.message


def test_tab_indentation_is_a_yaml_error(project: Path, write: Write) -> None:
    err = _error(project, write, "hosts:\n\ta: 1\n")
    assert (err.file, err.line) == ("environments/qa.yaml", 2)


def test_duplicate_keys_are_refused(project: Path, write: Write) -> None:
    err = _error(project, write, "settings:\n  a: 1\n  b: 2\n  a: 3\n")
    assert err.line == 4
    assert "duplicate key 'a' (first on line 2)" in err.message


def test_merge_keys_may_be_overridden(project: Path, write: Write) -> None:
    write("qa", "settings:\n  x: &d {a: 1, b: 2}\n  y:\n    <<: *d\n    b: 3\n")
    assert resolve_document("qa", root=project)["settings"]["y"] == {"a": 1, "b": 3}


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "list"), ("just text\n", "string"), ("42\n", "int"), ("true\n", "boolean")],
)
def test_document_must_be_a_mapping(project: Path, write: Write, text: str, kind: str) -> None:
    err = _error(project, write, text)
    assert err.message == f"the document is a {kind}, not a mapping"
    assert err.line == 1


def test_empty_file_is_an_empty_environment(project: Path, write: Write) -> None:
    write("qa", "# nothing yet\n")
    env = load_environment("qa", root=project)
    assert env.name == "qa" and not env.hosts


@pytest.mark.parametrize("key", ["no", "on", "1", "null", "3.5"])
def test_keys_must_be_strings(project: Path, write: Write, key: str) -> None:
    err = _error(project, write, f"settings:\n  {key}: x\n")
    assert err.key_path == "settings"
    assert err.line == 2
    assert "not a string" in err.message and "quote" in (err.allowed or "")


def test_several_documents_are_refused(project: Path, write: Write) -> None:
    err = _error(project, write, "a: 1\n---\nb: 2\n")
    assert "single document" in err.message and err.line == 2


def test_unsafe_tags_are_refused(project: Path, write: Write) -> None:
    err = _error(project, write, "settings: !!python/object/apply:os.system [echo hi]\n")
    assert "invalid YAML" in err.message and err.line == 1


def test_huge_integer_is_an_error_at_its_line(project: Path, write: Write) -> None:
    err = _error(project, write, "settings:\n  n: " + "9" * 5000 + "\n")
    assert err.line == 2 and "cannot read this value" in err.message


def test_big_integer_within_python_limits_reaches_the_model(project: Path, write: Write) -> None:
    write("qa", "instance_groups:\n  web: {template: web, size: " + "9" * 400 + "}\n")
    with pytest.raises(ConfigProblem) as caught:
        load_environment("qa", root=project)
    assert caught.value.key_path == "instance_groups.web.size"
    assert "1000" in caught.value.message


def test_bad_explicit_float_is_an_error(project: Path, write: Write) -> None:
    err = _error(project, write, "settings: {x: !!float abc}\n")
    assert err.line == 1


def test_timestamps_stay_text(project: Path, write: Write) -> None:
    write("qa", "settings: {released: 2024-06-01, bad: 2024-13-45}\n")
    settings = resolve_document("qa", root=project)["settings"]
    assert settings == {"released": "2024-06-01", "bad": "2024-13-45"}


def test_deep_nesting_is_refused_before_composing(project: Path, write: Write) -> None:
    err = _error(project, write, "settings: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert f"deeper than {MAX_DEPTH}" in err.message and err.line == 1


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(ConfigProblem, match=f"more than {MAX_VALUES} values"):
        parse_text("\n".join(lines) + "\n", "bomb.yaml")


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(ConfigProblem, match="refers to the value it is part of") as caught:
        parse_text("settings:\n  x: &a [1, *a]\n", "loop.yaml")
    assert caught.value.key_path == "settings.x.1"


def test_merging_a_mapping_into_itself_is_harmless() -> None:
    assert parse_text("x: &a\n  b: 1\n  <<: *a\n", "loop.yaml").data == {"x": {"b": 1}}


def test_not_utf8(project: Path) -> None:
    (project / "environments" / "qa.yaml").write_bytes(b"description: \xff\xfe\n")
    with pytest.raises(ConfigProblem, match="not UTF-8") as caught:
        resolve_document("qa", root=project)
    assert caught.value.file == "environments/qa.yaml"


def test_unicode_values_survive(project: Path, write: Write) -> None:
    write("qa", "description: 雲海 — sea of clouds ☁\nsettings: {greeting: héllo}\n")
    env = load_environment("qa", root=project)
    assert env.description == "雲海 — sea of clouds ☁"


def test_lines_are_recorded_for_every_key() -> None:
    parsed = parse_text("a:\n  b:\n    - c: 1\n      d: 2\n", "x.yaml")
    assert parsed.lines == {("a",): 1, ("a", "b"): 2, ("a", "b", 0, "c"): 3, ("a", "b", 0, "d"): 4}
