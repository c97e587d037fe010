"""``portprobe merge``: one view over many reports, and hostile report files.

The reports merged are ``reports/examples/*.json`` (written by real runs against loopback
servers, one per verdict) and reports built here; the hostile inputs are a truncated file,
a 50 MB file, another schema version, non-JSON, non-UTF-8, absurd nesting and strings
carrying terminal escapes. Each bad file is one line on stderr and exit 2 (unless
``--skip-bad``); nothing raw reaches the terminal.
"""

from __future__ import annotations

import io
import json
import re
import tracemalloc
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import typer
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from portprobe.cli import merge as cli_merge
from portprobe.errors import InputError
from portprobe.fleet import (
    MAX_REPORT_BYTES,
    build_fleet,
    load_fleet,
    load_vantage,
    vantage_from_dict,
)
from portprobe.render.fleet import render_fleet
from portprobe.vocab import VERDICTS
from tests.test_openmetrics import promtool

EXAMPLES = Path(__file__).resolve().parent.parent / "reports" / "examples"
ESC = "\x1b]0;pwned\x07\x1b[2J\u202e"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


def write(tmp_path: Path, name: str, doc: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def merge(args: list[str], stdin: bytes = b"") -> tuple[int, str, str]:
    """Run ``portprobe merge`` as the CLI does; returns (exit code, stdout, stderr)."""
    import contextlib
    import sys

    app = typer.Typer()
    app.command("merge")(cli_merge.merge)

    @app.callback()
    def _root() -> None:  # a group, so the command is called by name as in portprobe
        pass

    out, err = io.StringIO(), io.StringIO()
    fake_stdin = io.TextIOWrapper(io.BytesIO(stdin))
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        old = sys.stdin
        sys.stdin = fake_stdin
        try:
            result = typer.main.get_command(app).main(["merge", *args], standalone_mode=False)
            code = result if isinstance(result, int) else 0
        except typer.Exit as exc:
            code = exc.exit_code
        finally:
            sys.stdin = old
    return code, out.getvalue(), err.getvalue()


def raw_controls(text: str) -> list[str]:
    return [
        ch for ch in text if ch != "\n" and (unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"))
    ]


# --- the view ------------------------------------------------------------------------------


def test_examples_merge_into_one_row_each_and_counts() -> None:
    fleet, errors = load_fleet([str(EXAMPLES)])
    assert errors == ()
    assert [v.name for v in fleet.vantages] == sorted(VERDICTS)
    assert {v.name: v.port25 for v in fleet.vantages} == {w: w for w in VERDICTS}
    assert fleet.verdicts == dict.fromkeys(VERDICTS, 1)
    blocked = next(v for v in fleet.vantages if v.name == "blocked")
    assert blocked.ports[25] == "refused" and blocked.ports[587] == "open"
    assert blocked.reachable[587] is True


def test_summary_counts_vantage_points_per_verdict(tmp_path: Path) -> None:
    for i, name in enumerate(["blocked", "blocked", "open"]):
        write(tmp_path, f"runner-{i}.json", example(name))
    code, out, err = merge([str(tmp_path)])
    assert code == 0, err
    assert out.splitlines()[0] == "3 vantage points: 1 open, 2 blocked"
    assert re.search(r"^runner-1 .* blocked", out, re.MULTILINE)


def test_vantage_columns_platform_ci_address(tmp_path: Path) -> None:
    doc = example("blocked")
    doc["environment"] = {"platform": "azure", "ci": "github-actions", "evidence": []}
    doc["readiness"] = {"ready": "no", "public_addresses": {"ipv4": ["198.51.100.7"]}}
    doc["vantage"] = {"name": "ubuntu-latest"}
    redacted = example("open")
    redacted["readiness"] = {"ready": "yes", "public_addresses": {"ipv4": ["[redacted]"]}}
    code, out, _ = merge(
        [str(write(tmp_path, "a.json", doc)), str(write(tmp_path, "b.json", redacted))]
    )
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("ubuntu-latest"))
    assert "azure / github-actions" in row and "198.51.100.7" in row and " no" in row
    assert "(redacted)" in next(line for line in out.splitlines() if line.startswith("b "))


def test_same_name_twice_gets_unique_names() -> None:
    v = vantage_from_dict(example("open"), "x/open.json")
    fleet = build_fleet([v, v])
    assert [x.name for x in fleet.vantages] == ["open", "open#2"]


def test_markdown_and_json_and_openmetrics(tmp_path: Path) -> None:
    fleet, _ = load_fleet([str(EXAMPLES)])
    md = render_fleet("markdown", fleet)
    assert md.startswith("### portprobe: 7 vantage points")
    assert md.count("\n| ") == 1 + 7  # header and one row per vantage point
    data = json.loads(render_fleet("json", fleet))["fleet"]
    assert data["summary"]["vantages"] == 7 and data["summary"]["verdicts"]["open"] == 1
    text = render_fleet("openmetrics", fleet)
    samples = {
        (s.name, s.labels.get("vantage"), s.labels.get("verdict")): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    assert samples[("portprobe_verdict", "blocked", "blocked")] == 1
    assert samples[("portprobe_verdict", "blocked", "open")] == 0
    assert samples[("portprobe_fleet_verdict_vantages", None, "open")] == 1
    promtool(text)


def test_one_report_markdown_says_why() -> None:
    fleet, _ = load_fleet([str(EXAMPLES / "blocked.json")])
    md = render_fleet("markdown", fleet)
    assert "**Reasons**" in md and "**Advice**" in md


def test_stdin(tmp_path: Path) -> None:
    code, out, err = merge(["-", "--json"], stdin=json.dumps(example("partial")).encode())
    assert code == 0, err
    assert json.loads(out)["fleet"]["vantages"][0]["name"] == "stdin"


def test_output_file_is_written(tmp_path: Path) -> None:
    target = tmp_path / "fleet.prom"
    code, out, _ = merge([str(EXAMPLES), "--format", "openmetrics", "-o", str(target)])
    assert code == 0 and out == ""
    assert target.read_text().endswith("# EOF\n")
    code, _, _ = merge([str(EXAMPLES), "--format", "markdown", "-o", str(tmp_path)])
    assert code == 0 and (tmp_path / "portprobe-fleet.md").read_text().startswith("### ")


# --- hostile inputs ------------------------------------------------------------------------

BAD: list[tuple[str, object, str]] = [
    ("truncated", json.dumps(example("open"))[:500], r"not valid JSON \(line 1, column \d+"),
    ("not-json", "hello, I am not a report\n", r"not valid JSON"),
    ("empty", "", r"empty file"),
    ("array", [1, 2, 3], r"JSON list, expected a report object"),
    ("schema-2", {**example("open"), "schema_version": 2}, r"schema_version 2; this portprobe"),
    ("schema-missing", {"verdict": {}}, r"schema_version null"),
    ("bad-verdict", {**example("open"), "verdict": {"port25": "fine"}}, r"verdict.port25 \"fine\""),
    ("no-ports", {k: v for k, v in example("open").items() if k != "ports"}, r"'ports' missing"),
    ("deep", "[" * 100_000 + "]" * 100_000, r"not a usable JSON document|not valid JSON"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_report_is_one_line_and_exit_2(
    tmp_path: Path, name: str, content: object, message: str
) -> None:
    path = write(tmp_path, f"{name}.json", content)
    with pytest.raises(InputError, match=message):
        load_vantage(str(path))
    code, out, err = merge([str(path), str(EXAMPLES / "open.json")])
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"portprobe: error: {path}: ")
    code, out, err = merge([str(path), str(EXAMPLES / "open.json"), "--skip-bad"])
    assert code == 0 and "warning: skipped" in err
    assert out.startswith("1 vantage point: 1 open")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"schema_version": 1, "x": "\xff\xfe"}')
    with pytest.raises(InputError, match="not UTF-8"):
        load_vantage(str(path))


def test_a_50_mb_file_is_refused_without_being_slurped(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.write(b'{"schema_version": 1, "pad": "')
        handle.truncate(50 * 1024 * 1024)  # sparse: costs no disk
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="larger than 16 MiB"):
            load_vantage(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MAX_REPORT_BYTES  # read at most the cap, never the whole 50 MB


def test_missing_file_and_empty_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = merge([str(tmp_path / "nope.json"), str(empty)])
    lines = err.splitlines()
    assert code == 2 and len(lines) == 2  # one line each
    assert "nope.json: cannot read: No such file or directory" in lines[0]
    assert "holds no *.json report" in lines[1]
    code, _, err = merge([str(empty), "--skip-bad"])
    assert code == 2 and err.splitlines()[-1] == "portprobe: error: no readable report to merge"


def test_bad_format_is_exit_2() -> None:
    code, _, err = merge([str(EXAMPLES), "--format", "nagios"])
    assert code == 2 and "is not one of table, markdown, json, openmetrics" in err


def hostile_report() -> dict[str, Any]:
    doc = example("intercepted")
    doc["vantage"] = {"name": f"evil{ESC}"}
    doc["environment"] = {"platform": f"aws{ESC}", "ci": f"gh{ESC}|*x*"}
    doc["tool"]["version"] = ESC
    doc["started_at"] = f"2026-11-29T00:40{ESC}"
    doc["verdict"]["reasons"] = [f"reason {ESC} | <script>", 42]
    doc["verdict"]["advice"] = [ESC * 50]
    doc["ports"]["25"]["state"] = f"open{ESC}"
    return doc


@pytest.mark.parametrize("fmt", ["table", "markdown", "json", "openmetrics"])
def test_escape_sequences_never_reach_the_terminal(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, f"evil{ESC}.json", hostile_report())
    code, out, err = merge([str(path), "--format", fmt])
    assert code == 0, err
    assert raw_controls(out) == [] and raw_controls(err) == []
    if fmt != "json":
        assert "\\x1b" in out
    if fmt == "markdown":
        assert "<script>" not in out and "&lt;script&gt;" in out
    if fmt == "openmetrics":
        list(text_string_to_metric_families(out))
    code, _, err = merge([str(write(tmp_path, f"bad{ESC}.json", "{"))])
    assert code == 2 and raw_controls(err) == [] and "\\x1b" in err


# --- shape ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        "portprobe.fleet",
        "portprobe.render.fleet",
        "portprobe.render.openmetrics",
        "portprobe.render.nagios",
        "portprobe.render.junit",
    ],
)
def test_monitoring_modules_are_pure(module: str) -> None:
    from tests.test_layers import FORBIDDEN, imported_by

    loaded = imported_by(module)
    bad = sorted(n for n in loaded if any(n == f or n.startswith(f + ".") for f in FORBIDDEN))
    assert bad == [], f"{module} imports {bad}"


def test_merge_has_help_with_examples_and_is_a_portprobe_command() -> None:
    from typer.testing import CliRunner

    from portprobe.cli import app

    result = CliRunner().invoke(app, ["merge", "--help"])
    assert result.exit_code == 0
    assert "REPORT.json" in result.output and "Examples" in result.output
    assert "--skip-bad" in result.output
