"""``unkai render``: write the rendered artifacts of an environment for review.

Thin: rendering is :func:`unkai.render.render_tree`, writing is
:func:`unkai.render.write_tree`; this module loads the environment, calls the two and
prints a summary.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from unkai.cli._workspace import Root, resolve_root


def render(
    env: Annotated[str, typer.Argument(help="Environment name, such as local or prod.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (replaced atomically).")],
    accelerator: Annotated[
        str | None,
        typer.Option(
            "--accelerator",
            help=(
                "kvm or tcg: the domain XML's type and CPU and the hosts' playbook"
                " variable. Default: what `unkai up` uses, the KVM probe's verdict on"
                " this machine."
            ),
            case_sensitive=False,
            show_default=False,
        ),
    ] = None,
    root: Root = None,
) -> None:
    """Render every artifact of an environment into OUT, with index.json of content hashes.

    Everything is rendered and checked before anything is written: a bad environment
    writes nothing. The project's operator SSH key is authorised in every instance's
    user-data, as ``unkai up`` does (it is made here when the project has none yet).
    The same inputs always give the same bytes; secret values never appear, only
    references.
    """
    from unkai.environments import load_environment
    from unkai.errors import ConfigError
    from unkai.render import INDEX_FILE, Templates, content_hash, render_tree, write_tree
    from unkai.toolchain import cached_probe, operator_key

    chosen = (accelerator or cached_probe().accelerator).lower()
    if chosen not in ("kvm", "tcg"):
        raise ConfigError("unknown accelerator", value=accelerator, allowed="kvm, tcg")
    kind: Literal["kvm", "tcg"] = "kvm" if chosen == "kvm" else "tcg"
    project = resolve_root(root)
    environment = load_environment(env, root=project)
    # The project's operator key, as `unkai up` authorises it on every instance (made on
    # first use, like up does): the rendered user-data is the applied one.
    operator = operator_key(project).with_suffix(".pub").read_text(encoding="utf-8").strip()
    tree = render_tree(
        environment, accelerator=kind, templates=Templates(project), ssh_keys=(operator,)
    )
    write_tree(tree, out)

    counts = Counter(path.parts[0] for path in tree if path != INDEX_FILE)
    sizes = Counter[str]()
    for path, text in tree.items():
        if path != INDEX_FILE:
            sizes[path.parts[0]] += len(text.encode("utf-8"))
    table = Table(title=f"unkai render {escape(env)} ({kind})")
    table.add_column("kind")
    table.add_column("files", justify="right")
    table.add_column("bytes", justify="right")
    for folder in sorted(counts):
        table.add_row(folder, str(counts[folder]), str(sizes[folder]))
    console = Console()
    console.print(table)
    console.print(
        f"wrote {len(tree)} files to {escape(str(out))}; index.json sha256"
        f" {content_hash(tree[INDEX_FILE])[:16]}",
        highlight=False,
    )
