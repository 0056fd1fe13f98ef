"""Building pinned Go tools from the Go module proxy into the cache.

Modules such as ``github.com/pulumi/pulumi/pkg/v3`` carry ``replace`` lines, so
``go install module@version`` refuses them. The usual way round, used here, is a small
wrapper module of ours whose ``go.mod`` requires the tool's module at the pinned
version and repeats the tool's own non-local ``replace`` lines; ``go build`` then
builds the tool's main packages from it.

Some modules replace their siblings with *local* paths that a wrapper cannot repeat:
``k8s.io/kubernetes`` points every staging module (``k8s.io/api``, ``k8s.io/client-go``,
...) at ``./staging/src/...``. For those, :attr:`GoTool.pin_local_replaces` names the
version each such module is pinned to instead (``replace k8s.io/api => k8s.io/api
v0.36.3``), which is how the Kubernetes release tags its staging modules.

The plan (:func:`wrapper_files`, :func:`build_argv`) is pure and tested; :func:`build`
executes it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from unkai.toolchain._run import run


@dataclass(frozen=True)
class Replace:
    """One ``replace old => new version`` line of a ``go.mod``."""

    old: str
    new: str
    version: str


@dataclass(frozen=True)
class GoTool:
    """A tool built from a Go module at a pinned version.

    Attributes:
        name: Short name, also the cache folder's prefix (``pulumi``).
        module: The module that holds the main packages.
        version: The module version, with its ``v`` (``v3.259.0``).
        binaries: ``(main package import path, binary name)`` pairs to build.
        requires: Further modules pinned in the wrapper (``module``, ``version``), e.g. the
            sibling module that the tool's ``go.mod`` replaces with a local path.
        ldflags: Linker flags, e.g. to stamp the version.
        env: Extra environment variables for ``go``.
        pin_local_replaces: When set, every module the tool's ``go.mod`` replaces with a
            local path is pinned to this version in the wrapper instead of being dropped.
        together: Build every binary in one ``go build`` invocation, which compiles the
            packages they share once (each binary is named after its package's last
            path element).
        tags: Build tags (``go build -tags``), e.g. to leave out code that needs cgo.
    """

    name: str
    module: str
    version: str
    binaries: tuple[tuple[str, str], ...]
    requires: tuple[tuple[str, str], ...] = ()
    ldflags: str = "-s -w"
    env: Mapping[str, str] = field(default_factory=dict)
    pin_local_replaces: str | None = None
    together: bool = False
    tags: tuple[str, ...] = ()


def _tags(tool: GoTool) -> list[str]:
    return ["-tags", ",".join(tool.tags)] if tool.tags else []


def non_local_replaces(go_mod_json: Mapping[str, object]) -> tuple[Replace, ...]:
    """The ``replace`` lines of a ``go.mod`` (as ``go mod edit -json``) a wrapper can repeat.

    Those are the ones that point at another module version, not at a local path.
    """
    out = []
    for item in go_mod_json.get("Replace") or []:  # type: ignore[union-attr]
        new = item["New"]
        if new.get("Version"):
            out.append(Replace(item["Old"]["Path"], new["Path"], new["Version"]))
    return tuple(sorted(out, key=lambda r: r.old))


def pinned_local_replaces(go_mod_json: Mapping[str, object], version: str) -> tuple[Replace, ...]:
    """The modules a ``go.mod`` replaces with local paths, each pinned to ``version``.

    ``k8s.io/api => ./staging/src/k8s.io/api`` becomes ``k8s.io/api => k8s.io/api
    <version>``: the published module at the release that matches the local copy.
    Paths whose major version cannot be ``version`` are left out.
    """
    out = []
    for item in go_mod_json.get("Replace") or []:  # type: ignore[union-attr]
        if not item["New"].get("Version"):
            old = item["Old"]["Path"]
            if _major_fits(old, version):
                out.append(Replace(old, old, version))
    return tuple(sorted(out, key=lambda r: r.old))


def _major_fits(path: str, version: str) -> bool:
    # A module path carries its major version (``.../v3``) from v2 on; a replace of a path
    # that cannot have ``version`` (etcd's ``go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY``
    # guard) is no sibling module and is left out.
    major = int(version.lstrip("v").split(".")[0])
    suffix = path.rsplit("/", 1)[-1]
    if suffix.startswith("v") and suffix[1:].isdigit():
        return int(suffix[1:]) == major
    return major <= 1


def wrapper_replaces(tool: GoTool, go_mod_json: Mapping[str, object]) -> tuple[Replace, ...]:
    """Every ``replace`` line of the wrapper that builds ``tool`` from its ``go.mod``."""
    replaces = non_local_replaces(go_mod_json)
    if tool.pin_local_replaces:
        replaces += pinned_local_replaces(go_mod_json, tool.pin_local_replaces)
    return tuple(sorted(replaces, key=lambda r: r.old))


def wrapper_files(tool: GoTool, replaces: Sequence[Replace], go_version: str) -> dict[str, str]:
    """The files of the wrapper module that builds ``tool``: ``go.mod`` and ``tools.go``."""
    requires = [(tool.module, tool.version), *tool.requires]
    lines = [f"module unkai.local/toolchain/{tool.name}", "", f"go {go_version}", "", "require ("]
    lines += [f"\t{mod} {ver}" for mod, ver in requires]
    lines.append(")")
    if replaces:
        lines += ["", "replace ("]
        lines += [f"\t{r.old} => {r.new} {r.version}" for r in replaces]
        lines.append(")")
    imports = "\n".join(f'\t_ "{pkg}"' for pkg, _ in tool.binaries)
    tools_go = f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"
    return {"go.mod": "\n".join(lines) + "\n", "tools.go": tools_go}


def build_argv(tool: GoTool, package: str, out: Path) -> list[str]:
    """The ``go build`` command that builds one main package of ``tool`` to ``out``."""
    return [
        "go",
        "build",
        "-trimpath",
        *_tags(tool),
        "-ldflags",
        tool.ldflags,
        "-o",
        str(out),
        package,
    ]


def build_all_argv(tool: GoTool, out_dir: Path) -> list[str]:
    """The one ``go build`` command that builds every main package of ``tool``.

    The binaries land in ``out_dir``, which must exist; ``go`` names each one after the
    last path element of its package.

    Raises:
        ValueError: a binary's name is not its package's last path element.
    """
    for package, binary in tool.binaries:
        if package.rsplit("/", 1)[-1] != binary:
            raise ValueError(f"{binary!r} must be named after its package {package!r}")
    packages = [package for package, _ in tool.binaries]
    return [
        "go", "build", "-trimpath", *_tags(tool), "-ldflags", tool.ldflags, "-o", f"{out_dir}/",
        *packages,
    ]  # fmt: skip


def _go_env() -> dict[str, str]:
    # Keep the tools reproducible and independent of the caller's GOFLAGS.
    return {"GOFLAGS": "-mod=mod -buildvcs=false", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}


def build(tool: GoTool, dest: Path, *, say: Callable[[str], None] = lambda _: None) -> None:
    """Build every binary of ``tool`` into ``dest/bin``, atomically.

    The wrapper module lives in a temporary folder; binaries appear in ``dest`` only
    when all of them built, so an interrupted build leaves nothing half-made.

    Raises:
        CommandFailed: a ``go`` command failed (its output is in the error).
    """
    env = {**_go_env(), **tool.env}
    with tempfile.TemporaryDirectory(prefix=f"unkai-{tool.name}-") as tmp:
        work = Path(tmp)
        say(f"resolving {tool.module}@{tool.version} from the Go module proxy")
        info = json.loads(
            run(["go", "mod", "download", "-json", f"{tool.module}@{tool.version}"], env=env)
        )
        mod_json = json.loads(run(["go", "mod", "edit", "-json", info["GoMod"]], env=env))
        go_version = str(mod_json.get("Go") or "1.22")
        for name, text in wrapper_files(tool, wrapper_replaces(tool, mod_json), go_version).items():
            (work / name).write_text(text, encoding="utf-8")
        say("downloading modules (go mod tidy)")
        run(["go", "mod", "tidy"], cwd=work, env=env)
        staging = work / "bin"
        staging.mkdir()
        if tool.together:
            names = ", ".join(binary for _, binary in tool.binaries)
            say(f"compiling {names} (this is the slow part)")
            run(build_all_argv(tool, staging), cwd=work, env=env)
        else:
            for package, binary in tool.binaries:
                say(f"compiling {binary} (this is the slow part)")
                run(build_argv(tool, package, staging / binary), cwd=work, env=env)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        shutil.move(str(staging), partial / "bin")
        (partial / "wrapper-go.mod").write_text((work / "go.mod").read_text(), encoding="utf-8")
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(partial, dest)
