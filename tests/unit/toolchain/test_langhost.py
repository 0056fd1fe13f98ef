import sys
from types import SimpleNamespace

from unkai.langhost import program_python, run_config
from unkai.langhost._exec import entry_file
from unkai.toolchain._pulumi import LANGHOST_MARKER, langhost_script


def _request(**kw):
    info = SimpleNamespace(
        program_directory=kw.pop("program_directory", "/p"),
        entry_point=kw.pop("entry_point", "."),
        root_directory="/p",
    )
    base = dict(
        info=info,
        pwd="/p",
        program="",
        project="proj",
        stack="dev",
        organization="",
        monitor_address="127.0.0.1:1",
        dryRun=True,
        parallel=4,
        config={"proj:a": "1"},
        configSecretKeys=["proj:a"],
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_run_config_carries_what_the_program_needs():
    cfg = run_config(_request(), "127.0.0.1:2")
    assert cfg["engine_address"] == "127.0.0.1:2"
    assert cfg["organization"] == "organization"
    assert cfg["dry_run"] is True
    assert cfg["config"] == {"proj:a": "1"}
    assert cfg["config_secret_keys"] == ["proj:a"]
    assert (cfg["program_directory"], cfg["entry_point"]) == ("/p", ".")


def test_program_python_follows_the_virtualenv_option(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    assert program_python(str(tmp_path), {"virtualenv": "venv"}) == str(venv / "bin" / "python")
    assert program_python(str(tmp_path), {"virtualenv": "missing"}) == sys.executable
    assert program_python(str(tmp_path), {}) == sys.executable


def test_entry_file_is_main_of_a_folder_or_the_named_file(tmp_path):
    assert entry_file(str(tmp_path), ".") == tmp_path / "__main__.py"
    (tmp_path / "prog.py").write_text("")
    assert entry_file(str(tmp_path), "prog.py") == tmp_path / "prog.py"


def test_langhost_script_execs_our_module_with_the_venv_python(tmp_path):
    script = langhost_script(tmp_path / "python")
    assert script.startswith("#!/bin/sh\n")
    assert LANGHOST_MARKER in script
    assert f'exec "{tmp_path / "python"}" -m unkai.langhost "$@"' in script
