from pathlib import Path

from unkai.toolchain import Replace, build_argv, pulumi_tool, wrapper_files
from unkai.toolchain._gobuild import non_local_replaces

PKG_GO_MOD = {
    "Go": "1.25.11",
    "Replace": [
        {"Old": {"Path": "github.com/pulumi/pulumi/sdk/v3"}, "New": {"Path": "../sdk"}},
        {
            "Old": {"Path": "github.com/atotto/clipboard"},
            "New": {"Path": "github.com/tgummerer/clipboard", "Version": "v0.0.0-2024"},
        },
    ],
}


def test_only_non_local_replaces_are_repeated():
    assert non_local_replaces(PKG_GO_MOD) == (
        Replace("github.com/atotto/clipboard", "github.com/tgummerer/clipboard", "v0.0.0-2024"),
    )
    assert non_local_replaces({"Replace": None}) == ()


def test_wrapper_module_requires_the_tool_and_its_sibling_at_the_same_version():
    tool = pulumi_tool("3.259.0")
    files = wrapper_files(tool, non_local_replaces(PKG_GO_MOD), "1.25.11")
    go_mod = files["go.mod"]
    assert "module unkai.local/toolchain/pulumi\n" in go_mod
    assert "go 1.25.11\n" in go_mod
    assert "\tgithub.com/pulumi/pulumi/pkg/v3 v3.259.0\n" in go_mod
    assert "\tgithub.com/pulumi/pulumi/sdk/v3 v3.259.0\n" in go_mod
    assert "github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-2024" in go_mod
    assert "../sdk" not in go_mod
    assert '_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"' in files["tools.go"]
    assert files["tools.go"].startswith("//go:build tools\n")


def test_wrapper_without_replaces_has_no_replace_block():
    files = wrapper_files(pulumi_tool("3.1.0"), (), "1.22")
    assert "replace" not in files["go.mod"]


def test_build_argv_stamps_the_version():
    tool = pulumi_tool("3.259.0")
    argv = build_argv(tool, "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", Path("/o/pulumi"))
    assert argv[:3] == ["go", "build", "-trimpath"]
    assert argv[-3:] == ["-o", "/o/pulumi", "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"]
    ldflags = argv[argv.index("-ldflags") + 1]
    assert "version.Version=v3.259.0" in ldflags
