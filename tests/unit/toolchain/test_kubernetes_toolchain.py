from pathlib import Path

import pytest

from unkai.errors import ToolchainError
from unkai.toolchain._gobuild import (
    build_all_argv,
    pinned_local_replaces,
    wrapper_files,
    wrapper_replaces,
)
from unkai.toolchain._kubernetes import (
    KUBE_BINARIES,
    gather_stages,
    kubernetes_tool,
    kubernetes_version,
    kwok_tool,
    kwok_version,
    staging_version,
)
from unkai.toolchain._pins import pinned_version

K8S_GO_MOD = {
    "Go": "1.26.0",
    "Replace": [
        {"Old": {"Path": "k8s.io/api"}, "New": {"Path": "./staging/src/k8s.io/api"}},
        {"Old": {"Path": "k8s.io/client-go"}, "New": {"Path": "./staging/src/k8s.io/client-go"}},
        {"Old": {"Path": "example.com/x"}, "New": {"Path": "example.com/y", "Version": "v1.0.0"}},
    ],
}


def test_pins_come_from_toolchain_toml():
    assert kubernetes_version() == pinned_version("kubernetes")
    assert kwok_version() == pinned_version("kwok")
    assert kubernetes_version().startswith("1.3")


def test_missing_pin_is_a_toolchain_error(tmp_path):
    (tmp_path / "toolchain.toml").write_text("[kwok]\n")
    with pytest.raises(ToolchainError, match="kwok"):
        pinned_version("kwok", root=tmp_path)
    with pytest.raises(ToolchainError, match="cannot read"):
        pinned_version("kwok", root=tmp_path / "nowhere")


def test_staging_version():
    assert staging_version("1.36.3") == "v0.36.3"
    with pytest.raises(ToolchainError):
        staging_version("v1.36")


def test_every_local_staging_replace_is_pinned_in_the_wrapper():
    tool = kubernetes_tool("1.36.3")
    assert pinned_local_replaces(K8S_GO_MOD, "v0.36.3")[0].new == "k8s.io/api"
    go_mod = wrapper_files(tool, wrapper_replaces(tool, K8S_GO_MOD), "1.26.0")["go.mod"]
    assert "\tk8s.io/kubernetes v1.36.3\n" in go_mod
    assert "\tk8s.io/api => k8s.io/api v0.36.3\n" in go_mod
    assert "\tk8s.io/client-go => k8s.io/client-go v0.36.3\n" in go_mod
    assert "\texample.com/x => example.com/y v1.0.0\n" in go_mod
    assert "./staging" not in go_mod


def test_kubernetes_build_is_one_go_build_with_version_stamps():
    tool = kubernetes_tool("1.36.3")
    argv = build_all_argv(tool, Path("/out"))
    assert argv[:3] == ["go", "build", "-trimpath"]
    assert argv[argv.index("-o") + 1] == "/out/"
    assert argv[-len(KUBE_BINARIES) :] == [f"k8s.io/kubernetes/cmd/{b}" for b in KUBE_BINARIES]
    ldflags = argv[argv.index("-ldflags") + 1]
    assert ldflags.startswith("-s -w ")
    assert "-X k8s.io/component-base/version.gitVersion=v1.36.3" in ldflags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=36" in ldflags


def test_kwok_tool_is_not_pinning_local_replaces():
    tool = kwok_tool("0.8.0")
    assert tool.module == "sigs.k8s.io/kwok" and tool.version == "v0.8.0"
    assert tool.pin_local_replaces is None
    assert wrapper_replaces(tool, K8S_GO_MOD) == wrapper_replaces(
        tool, {"Replace": [K8S_GO_MOD["Replace"][2]]}
    )


def test_build_all_refuses_binary_names_go_would_not_use():
    tool = kwok_tool("0.8.0")
    bad = type(tool)(**{**tool.__dict__, "binaries": (("sigs.k8s.io/kwok/cmd/kwok", "k"),)})
    with pytest.raises(ValueError):
        build_all_argv(bad, Path("/o"))


def test_stages_are_gathered_without_kustomizations():
    text = gather_stages(
        {
            "b/pod-ready.yaml": "kind: Stage\nname: b\n",
            "a/node-initialize.yaml": "kind: Stage\nname: a\n\n",
            "a/kustomization.yaml": "kind: Kustomization\n",
            "a/README.md": "x",
        }
    )
    assert text == "---\nkind: Stage\nname: a\n---\nkind: Stage\nname: b\n"


def test_etcd_siblings_are_pinned_but_not_the_forbidden_guard():
    from unkai.toolchain._kubernetes import etcd_tool

    go_mod = {
        "Replace": [
            {"Old": {"Path": "go.etcd.io/etcd/api/v3"}, "New": {"Path": "../api"}},
            {"Old": {"Path": "go.etcd.io/etcd"}, "New": {"Path": "./FORBIDDEN_DEPENDENCY"}},
        ]
    }
    tool = etcd_tool("3.6.8")
    assert [(r.old, r.version) for r in wrapper_replaces(tool, go_mod)] == [
        ("go.etcd.io/etcd/api/v3", "v3.6.8")
    ]
