"""The command line as users meet it: a real subprocess (exit codes, stdout vs stderr,
parseable JSON validated against the schema) and typer's runner, against loopback
servers only. Every run names its targets: the built-in catalog is never probed here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from portprobe import __version__
from portprobe.cli import app
from tests.servers import Certs, aiosmtpd_server, closed_port, make_certs

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "reports" / "report.schema.json").read_text())
PORTPROBE = [sys.executable, "-m", "portprobe"]


def portprobe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PORTPROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("cli-certs"))


@pytest.fixture(scope="module")
def mail_host(certs: Certs) -> Iterator[list[str]]:
    """One host answering on all four roles: plain+STARTTLS on 25/587/2525, TLS on 465."""
    ctx = certs.server_context()
    with (
        aiosmtpd_server(starttls=ctx) as p25,
        aiosmtpd_server(implicit_tls=ctx) as p465,
        aiosmtpd_server(starttls=ctx) as p587,
        aiosmtpd_server(starttls=ctx) as p2525,
    ):
        yield [
            f"--port-map=25={p25}",
            f"--port-map=465={p465}",
            f"--port-map=587={p587}",
            f"--port-map=2525={p2525}",
            f"--ca-file={certs.ca_file}",
        ]


def validate(report: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(report)


# --- basics -------------------------------------------------------------------------------


def test_version() -> None:
    proc = portprobe("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"portprobe {__version__}"


@pytest.mark.parametrize(
    "args", [["--help"], ["diagnose", "--help"], ["targets", "--help"], ["serve", "--help"]]
)
def test_every_command_has_help_with_examples(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0
    assert "Usage" in result.output
    assert "Example" in result.output


def test_every_option_is_documented_in_the_readme() -> None:
    import typer.main

    readme = (ROOT / "README.md").read_text()
    command = typer.main.get_command(app)
    missing = []
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        assert f"portprobe {name}" in readme or name == "diagnose"
        for param in sub.params:
            for opt in param.opts:
                if opt.startswith("-") and opt not in ("--help",) and opt not in readme:
                    missing.append(f"{name} {opt}")
    assert missing == []


def test_python_dash_m_and_targets_json() -> None:
    proc = portprobe("targets", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["providers"]) >= 6


# --- end to end against loopback servers ---------------------------------------------------


def test_json_to_stdout_is_the_report_and_nothing_else(mail_host: list[str]) -> None:
    proc = portprobe("--target", "127.0.0.1", "--json", *mail_host)
    report = json.loads(proc.stdout)  # stdout is exactly one JSON document
    validate(report)
    assert proc.stderr == ""  # no progress line when stderr is not a terminal
    states = {p["port"]: p["state"] for p in report["probes"]}
    assert states == {25: "open", 465: "open", 587: "open", 2525: "open"}
    assert all(p["tls"]["verified"] for p in report["probes"])
    assert report["interrupted"] is False
    assert report["verdict"]["port25"] in ("open", "inconclusive")
    expected_exit = {"open": 0, "inconclusive": 7}[report["verdict"]["port25"]]
    assert proc.returncode == expected_exit


def test_blocked_port_25_with_controls_exits_3(mail_host: list[str]) -> None:
    """Two providers whose 25 is reset while 587 greets: the path blocks port 25."""
    dead = closed_port()
    args = [a for a in mail_host if not a.startswith("--port-map=25=")]
    proc = portprobe(
        "--target", "127.0.0.1", "--target", "127.0.0.2", f"--port-map=25={dead}",
        "--ports", "25,587", "--json", *args,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    validate(report)
    assert report["verdict"]["port25"] == "blocked", report["verdict"]
    assert proc.returncode == 3
    assert report["ports"]["25"]["reachable"] is False
    assert any("reset" in r.lower() or "refus" in r.lower() for r in report["verdict"]["reasons"])


def test_quiet_prints_only_the_verdict_line(mail_host: list[str]) -> None:
    proc = portprobe("--target", "127.0.0.1", "-q", *mail_host)
    assert len(proc.stdout.strip().splitlines()) == 1
    assert "port 25" in proc.stdout.lower()


def test_table_markdown_and_junit(mail_host: list[str], tmp_path: Path) -> None:
    table = portprobe("--target", "127.0.0.1", *mail_host)
    assert "127.0.0.1" in table.stdout and "open" in table.stdout
    assert "\x1b[" not in table.stdout  # no colour when stdout is not a terminal
    md = portprobe("--target", "127.0.0.1", "--format", "markdown", *mail_host)
    assert md.stdout.lstrip().startswith("#")
    assert "| " in md.stdout
    junit = portprobe("--target", "127.0.0.1", "--format", "junit", *mail_host)
    suite = ET.fromstring(junit.stdout)
    names = " ".join(tc.get("name", "") for tc in suite.iter("testcase"))
    assert all(port in names for port in ("25", "465", "587", "2525"))


def test_output_to_a_directory_gets_a_timestamped_file(
    mail_host: list[str], tmp_path: Path
) -> None:
    proc = portprobe("--target", "127.0.0.1", "-o", str(tmp_path), "-q", *mail_host)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and re.fullmatch(r"portprobe-\d{8}T\d{6}Z\.json", files[0].name)
    validate(json.loads(files[0].read_text()))
    assert proc.returncode in (0, 7)


def test_expect_failure_exits_9_with_one_line(mail_host: list[str], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = portprobe("--target", "127.0.0.1", "--expect", "blocked", "-o", str(out), *mail_host)
    assert proc.returncode == 9
    assert len(proc.stderr.strip().splitlines()) == 1 and "expect" in proc.stderr.lower()
    validate(json.loads(out.read_text()))  # the report is written all the same


def test_expect_that_holds_exits_0_whatever_the_verdict(mail_host: list[str]) -> None:
    dead = closed_port()
    args = [a for a in mail_host if not a.startswith("--port-map=25=")]
    proc = portprobe(
        "--target", "127.0.0.1", "--target", "127.0.0.2", f"--port-map=25={dead}",
        "--ports", "25,587", "--expect", "open,blocked", "-q", *args,
    )  # fmt: skip
    assert "blocked" in proc.stdout
    assert proc.returncode == 0


def test_require_port_failure_exits_9(mail_host: list[str]) -> None:
    dead = closed_port()
    args = [a for a in mail_host if not a.startswith("--port-map=465=")]
    proc = portprobe(
        "--target", "127.0.0.1", f"--port-map=465={dead}", "--require-port", "465", "-q", *args
    )
    assert proc.returncode == 9
    assert "465" in proc.stderr


def test_require_port_success_follows_the_verdict(mail_host: list[str]) -> None:
    proc = portprobe("--target", "127.0.0.1", "--require-port", "587", "-q", *mail_host)
    assert proc.returncode in (0, 7)


# --- bad input: one line, exit 2, nothing on stdout -----------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--ports", "0"],
        ["--ports", "70000"],
        ["--ports", "abc"],
        ["--timeout", "-1"],
        ["--concurrency", "0"],
        ["--nameserver", "not-an-ip"],
        ["--target", "bad host!"],
        ["--ca-file", "/nonexistent/ca.pem"],
        ["--format", "yaml"],
        ["--expect", "nonsense"],
        ["--no-such-option"],
        ["-4", "-6"],
        ["--port-map", "25"],
        ["-o", "/nonexistent/dir/report.json"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str]) -> None:
    target = [] if "--target" in args else ["--target", "127.0.0.1"]
    proc = portprobe(*target, *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("portprobe: error:")
    assert "Traceback" not in proc.stderr


def test_runner_maps_usage_errors_through_the_same_edge() -> None:
    from portprobe.cli import run

    assert run(["--ports", "26", "--target", "127.0.0.1"]) == 2
    assert run(["--version"]) == 0


def test_a_given_sysfs_is_checked_before_probing_and_the_default_is_not(tmp_path: Path) -> None:
    """An explicit --sysfs that is not a directory is a usage error; no --sysfs reads /sys
    only if it is there (macOS, Windows and BSD have none: no DMI evidence, not exit 2)."""
    closed = f"--port-map=25={closed_port()}"
    bad = portprobe(
        "--target", "127.0.0.1", "--ports", "25", closed, "--sysfs", str(tmp_path / "x")
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"portprobe: error: --sysfs {tmp_path / 'x'}: does not exist "
        "(give the directory mounted as /sys)"
    ]
    fine = portprobe("--target", "127.0.0.1", "--ports", "25", closed, "--json")
    assert json.loads(fine.stdout)["parameters"]["sysfs"] == "/sys"


def test_a_private_public_ip_is_a_usage_error_before_any_lookup() -> None:
    private = "10.0.0.1"  # address-text: refused before any lookup, never sent anywhere
    proc = portprobe("--target", "127.0.0.1", "--public-ip", private, "--ports", "25")
    assert proc.returncode == 2
    assert proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert "--public-ip 10.0.0.1: a private address (RFC 1918)" in line  # address-text


def test_serve_runs_from_the_command_line_and_stops_on_sigterm(mail_host: list[str]) -> None:
    """``portprobe serve`` with the main command's options as its ``default`` module."""
    import signal
    import urllib.request

    args = ["serve", "--listen", "127.0.0.1:0", "--target", "127.0.0.1", "--no-readiness"]
    proc = subprocess.Popen(
        [*PORTPROBE, *args, *mail_host], stderr=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+/)", first)
        assert found, first
        with urllib.request.urlopen(found.group(1) + "probe?module=default", timeout=30) as got:
            body = got.read().decode()
        assert 'portprobe_verdict{verdict="open"} 1' in body
        assert "probe_success 1" in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_with_a_bad_modules_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "serve.toml"
    bad.write_text("[modules.default]\nportz = [25]\n")
    proc = portprobe("serve", "--listen", "127.0.0.1:0", "--config", str(bad))
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert str(bad) in line and "portz" in line
