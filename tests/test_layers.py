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
    "portprobe.advice",
    "portprobe.model",
    "portprobe.vocab",
    "portprobe.errors",
    "portprobe.outcome",
    "portprobe.readiness.model",
    "portprobe.environment.model",
    "portprobe.mta.model",
    "portprobe.mta.parse",
    "portprobe.companions.mta_advice",
    "portprobe.report.redact",
    "portprobe.defaults",
    "portprobe.exit_codes",
    "portprobe.protocol.smtp",
    "portprobe.text",
    "portprobe.report.verdict",
    "portprobe.report.build",
    "portprobe.render",
    "portprobe.path.model",
    "portprobe.path.locate",
    "portprobe.companions.path_verdict",
    "portprobe.render.path",
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


# --- direction: who may import whom (static, from the source) ---------------------------------

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

PACKAGE = Path(__file__).resolve().parent.parent / "portprobe"
#: The modules that talk to a person: the only ones that may import typer or print. The
#: whole ``portprobe/cli/`` package, and ``__main__.py`` which only calls it.
CLI_PACKAGE = PACKAGE / "cli"
CLI_MODULES = {PACKAGE / "__main__.py", *CLI_PACKAGE.rglob("*.py")}
#: (package, packages it must never import): report decides, render presents, and the
#: two meet only through the typed Report in portprobe.outcome. The feature packages sit
#: below the report: environment says where this runs (the platform's advice is the
#: report's, report/platform_advice.py), readiness checks our address, targets plans and
#: probe talks SMTP; none of them knows the report, the renderers or the CLI.
NEVER = [
    ("report", ("portprobe.render", "portprobe.probe", "portprobe.targets", "portprobe.cli")),
    ("render", ("portprobe.report", "portprobe.probe", "portprobe.cli")),
    ("protocol", ("portprobe.probe", "portprobe.report", "portprobe.render", "portprobe.cli")),
    (
        "environment",
        (
            "portprobe.report",
            "portprobe.render",
            "portprobe.probe",
            "portprobe.targets",
            "portprobe.readiness",
            "portprobe.cli",
            "portprobe.outcome",  # the Report imports environment.model, never the reverse
        ),
    ),
    # readiness asks DNS through the one DNS client (probe.dnsclient), never the TCP
    # probe engine, and reads its catalog sections from the catalog already loaded.
    (
        "readiness",
        (
            "portprobe.report",
            "portprobe.render",
            "portprobe.cli",
            "portprobe.targets",
            "portprobe.probe.engine",
            "portprobe.probe.runner",
            "portprobe.probe.connect",
        ),
    ),
    # the local MTA is read through its own tools; joining it with the Report is the
    # companion's (portprobe.companions.mta), so the Report may import mta.model.
    (
        "mta",
        (
            "portprobe.report",
            "portprobe.render",
            "portprobe.probe",
            "portprobe.targets",
            "portprobe.cli",
            "portprobe.outcome",
            "portprobe.request",
            "portprobe.companions",
        ),
    ),
    # the path's model and rules; the trace's I/O is probe.trace, its joining with the
    # Report the companion's (portprobe.companions.path).
    (
        "path",
        (
            "portprobe.report",
            "portprobe.render",
            "portprobe.targets",
            "portprobe.cli",
            "portprobe.outcome",
            "portprobe.request",
            "portprobe.companions",
        ),
    ),
    (
        "targets",
        (
            "portprobe.report",
            "portprobe.render",
            "portprobe.readiness",
            "portprobe.environment",
            "portprobe.cli",
        ),
    ),
    (
        "probe",
        (
            "portprobe.report",
            "portprobe.render",
            "portprobe.targets",
            "portprobe.readiness",
            "portprobe.environment",
            "portprobe.cli",
        ),
    ),
]


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at run time or for type checking alike."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize(("package", "forbidden"), NEVER, ids=[p for p, _ in NEVER])
def test_imports_run_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    bad = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for module in imports_of(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert bad == []


def test_only_the_cli_imports_typer_or_writes_to_the_terminal() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in CLI_MODULES:
            continue
        source = path.read_text()
        tree = ast.parse(source)
        for module in imports_of(path):
            if module.split(".")[0] in ("typer", "click"):
                bad.append(f"{path.relative_to(PACKAGE)} imports {module}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno} calls print()")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("stdout", "stderr")
                and getattr(node.value, "id", None) == "sys"
            ):
                bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno} uses sys.{node.attr}")
    assert bad == []


def test_the_direction_test_sees_a_violation(tmp_path: Path) -> None:
    """The scanner itself: a planted import and a planted print are found."""
    planted = tmp_path / "x.py"
    planted.write_text("import portprobe.render.table\nprint('hi')\n")
    assert "portprobe.render.table" in imports_of(planted)


def test_import_portprobe_is_cheap() -> None:
    """The library's front door loads nothing heavy until a name is used."""
    loaded = imported_by("portprobe")
    assert not {"trio", "dns", "ssl", "typer", "portprobe.diagnosis"} & loaded
    code = "import portprobe, sys; portprobe.DiagnoseRequest; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
