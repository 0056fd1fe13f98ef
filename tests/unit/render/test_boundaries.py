from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("pulumi", "docker", "libvirt", "ansible_runner", "kubernetes", "yaml")


def test_render_imports_no_engine_or_client() -> None:
    code = (
        "import sys, unkai.render\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}"
        " or m.startswith(('unkai.drivers', 'unkai.provider', 'unkai.components', 'unkai.cli')))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
