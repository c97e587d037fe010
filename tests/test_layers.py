"""Layers import in one direction: the pure core never pulls in I/O or the CLI.

Each module is imported in a fresh interpreter and the modules it dragged in are listed:
a parser that imports ``socket``, or a renderer that imports ``trio``, fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PURE = [
    "portprobe.model",
    "portprobe.defaults",
    "portprobe.exit_codes",
    "portprobe.protocol.smtp",
    "portprobe.protocol.text",
    "portprobe.report.verdict",
    "portprobe.report.build",
    "portprobe.render",
]
FORBIDDEN = ("trio", "socket", "ssl", "dns", "typer", "click", "portprobe.cli", "portprobe.probe")


def imported_by(module: str) -> set[str]:
    code = f"import sys, json; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out))


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_io(module: str) -> None:
    loaded = imported_by(module)
    bad = sorted(
        name for name in loaded if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    )
    assert bad == [], f"{module} imports {bad}"


def test_help_does_not_import_the_probe_stack() -> None:
    """``portprobe --help`` must start fast: no trio, dnspython or ssl on its path."""
    code = (
        "import sys, json\n"
        "from portprobe.cli import run\n"
        "run(['--help'])\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded = set(json.loads(proc.stderr.strip().splitlines()[-1]))
    assert "Usage" in proc.stdout
    assert not {"trio", "dns", "ssl", "cryptography"} & loaded


def test_a_literal_target_never_imports_dnspython() -> None:
    """Nothing to resolve, nothing to import: dnspython costs ~65 ms before the first SYN."""
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: print(sorted(m for m in sys.modules if m.split('.')[0] == 'dns'),"
        " file=sys.stderr))\n"
        "from portprobe.cli import run\n"
        "run(['--target', '127.0.0.1', '--port-map', '25=1', '--ports', '25', '-q'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "port 25:" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "[]"
