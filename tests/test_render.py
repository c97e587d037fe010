"""Renderers: hostile server text never reaches the output raw; each format stays well-formed."""

from __future__ import annotations

import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portprobe.model import CertInfo, ErrorInfo, ProbeResult, Reply, Timings, TLSInfo
from portprobe.outcome import Report
from portprobe.render import FORMATS, render, verdict_line
from portprobe.render.junit import render_junit
from portprobe.render.markdown import render_markdown
from portprobe.render.table import render_table
from tests.builders import PROVIDERS, dropped, healthy, open_, spec
from tests.builders import typed_report_for as report_for
from tests.test_verdict import BY_ID

# ESC/OSC (retitle, hyperlink, clipboard), CSI clear screen, NUL, BEL, backspace, DEL, the
# C1 CSI, bidi override, zero-width joiner, line separator, BOM, and what decode_text
# makes of invalid UTF-8 (already a visible "\xff").
HOSTILE = (
    "evil.example ESMTP \x1b]0;pwned\x07 \x1b]52;c;Y3VybCBldmlsfHNo\x07 \x1b[2J\x1b[31mRED"
    "\x00NUL\x08\x08BS\x7fDEL \x9b31m \u202egnp.exe \u200d \u2028 \ufeff \\xff\\xfe | * _ <b>"
)
SGR = re.compile(r"\x1b\[[0-9;]*m")


def raw_controls(text: str) -> list[str]:
    """Characters a terminal or XML parser would act on: controls (but \\n), format, separators."""
    return [
        ch
        for ch in text
        if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")
    ]


def hostile_probe(text: str = HOSTILE, port: int = 25) -> ProbeResult:
    cert = CertInfo(subject=f"CN={text}", issuer=f"O={text}", san=(text,), not_after=None)
    return ProbeResult(
        spec=spec("mallory", port, host=f"mx.{text[:20]}.example"),
        state="open",
        greeting=Reply(220, (*text.split("\n"), "second line \x1b[5m")),
        ehlo=(text, "STARTTLS"),
        ehlo_plain=(text,),
        starttls="offered",
        tls=TLSInfo("TLSv1.2", text, verified=False, verify_error=text, cert=cert),
        anomalies=("starttls-trailing-data",),
        error=ErrorInfo("protocol", text, errno=None),
        timings=Timings(connect=1.0, greeting=2.0, ehlo=3.0, tls=4.0, total=5.0),
    )


def hostile_report(text: str = HOSTILE) -> Report:
    results = [hostile_probe(text), dropped("alpha"), *healthy("alpha")]
    results += [
        ProbeResult(
            spec=spec("mallory", 587),
            state="rejected",
            greeting=Reply(554, (text,)),
            timings=Timings(connect=1.0, total=2.0),
        )
    ]
    return report_for(results, notes=(f"note {text}",))


ALL_OUTPUTS = [
    ("table", {}),
    ("table", {"verbose": True}),
    ("table", {"verbose": True, "width": 60}),
    ("markdown", {}),
    ("markdown", {"verbose": True}),
    ("junit", {}),
    ("json", {}),
]


@pytest.mark.parametrize(("fmt", "kw"), ALL_OUTPUTS)
def test_hostile_text_is_made_visible(fmt: str, kw: dict[str, Any]) -> None:
    out = render(fmt, hostile_report(), **kw)
    assert raw_controls(out) == []
    if fmt != "json":
        assert "\\x1b]0;pwned\\x07" in out or "\\\\x1b\\]0;pwned\\\\x07" in out
        assert "\\u202e" in out or "\\\\u202e" in out


def test_color_output_has_only_our_own_sgr_sequences() -> None:
    out = render_table(hostile_report(), color=True, verbose=True)
    assert "\x1b[" in out  # colour is on...
    assert raw_controls(SGR.sub("", out)) == []  # ...and nothing else escapes


def test_no_color_means_no_escape_at_all() -> None:
    assert "\x1b" not in render_table(hostile_report(), color=False, verbose=True)


def test_json_is_ascii_and_round_trips() -> None:
    report = hostile_report()
    out = render("json", report)
    assert out.isascii()
    assert json.loads(out) == json.loads(json.dumps(report.to_dict()))


def test_unknown_format() -> None:
    assert set(FORMATS) == {"table", "json", "markdown", "junit", "openmetrics", "nagios"}
    with pytest.raises(ValueError, match="unknown format"):
        render("yaml", hostile_report())


# --- table --------------------------------------------------------------------------------


def test_table_rows_and_verdict() -> None:
    report = report_for(BY_ID["blocked-dropped"].results)
    out = render_table(report)
    grid = out.split("\n\n")[1].splitlines()
    assert grid[0].split() == ["host", "family", "25", "465", "587", "address", "greeting"]
    assert "mx.alpha.example" in out and "filtered" in out and "open ✓" in out
    assert verdict_line(report) in out
    assert "Reasons:" in out and "Advice:" in out
    # -v keeps the per-probe table.
    verbose = render_table(report, verbose=True).split("\n\n")[1]
    head = verbose.splitlines()[0].split()
    assert head == ["provider", "host", "address", "port", "state", "greeting", "TLS", "ms"]
    assert "TLSv1.3 ✓" in verbose


def test_verdict_line() -> None:
    report = report_for(BY_ID["partial-v4-blocked-v6-open"].results)
    assert verdict_line(report) == (
        "port 25: partial (high confidence; dropped; IPv4 blocked, IPv6 open)"
    )


@pytest.mark.parametrize("width", [80, 100, 120, 160])
def test_table_fits_the_terminal(width: int) -> None:
    results = [open_(p, greeting=f"mx.{p}.example ESMTP " + "x" * 200) for p in PROVIDERS]
    results += [dropped("delta"), open_("alpha", tls_info=None, starttls="not-offered")]
    for verbose in (False, True):
        out = render_table(report_for(results), width=width, verbose=verbose)
        assert max(len(line) for line in out.splitlines()) <= width, verbose


def test_tls_summary_forms() -> None:
    from tests.builders import tls

    results = [
        open_("alpha"),
        open_("bravo", tls_info=tls("x.example", verified=False)),
        dropped("charlie"),
    ]
    out = render_table(report_for(results), verbose=True)
    assert "TLSv1.3 ✓" in out and "TLSv1.3 ✗ hostname mismatch" in out and "—" in out
    grid = render_table(report_for(results))
    assert "open ✓" in grid and "open ✗" in grid and "filtered" in grid
    assert "✓ TLS verified" in grid and "✗ TLS failed or not verified" in grid


def test_verbose_shows_timings_and_full_text() -> None:
    greeting = "mx.alpha.example ESMTP first line\nsecond greeting line"
    out = render_table(report_for([open_("alpha", greeting=greeting)]), verbose=True)
    assert "timings (ms): connect 30, greeting 50" in out
    assert "second greeting line" in out
    assert "EHLO: SIZE 35882577, 8BITMIME, STARTTLS" in out
    short = render_table(report_for([open_("alpha", greeting=greeting)]))
    grid = short.split("\n\n")[1]
    assert "first line" in grid and "second greeting line" not in grid
    assert "timings (ms)" not in short


def test_anomalies_are_marked() -> None:
    report = report_for(BY_ID["intercepted-masked-greeting"].results)
    out = render_table(report, verbose=True)
    assert "open!" in out and "anomalies: masked-greeting" in out
    grid = render_table(report)
    assert re.search(r"mx\.alpha\.example +IPv4 +open ✓!", grid)
    assert "! anomaly (-v lists them)" in grid


# --- markdown -----------------------------------------------------------------------------


def _cells(row: str) -> int:
    """Unescaped pipes in a GFM table row."""
    count, escaped = 0, False
    for ch in row:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "|":
            count += 1
    return count


def test_markdown_table_survives_pipes_and_markup() -> None:
    out = render_markdown(hostile_report(), verbose=True)
    grid, probes = out.split("### Probes")
    rows = [line for line in probes.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 5  # header, alignment, one row per probe
    assert len({_cells(r) for r in rows}) == 1
    grid_rows = [line for line in grid.splitlines() if line.startswith("|")]
    assert len(grid_rows) == 2 + 4  # header, alignment, one row per host and family
    assert len({_cells(r) for r in grid_rows}) == 1
    assert "<b>" not in out and "&lt;b&gt;" in out
    assert out.startswith("## ")
    assert "### Reasons" in out and "### Advice" in out


def test_markdown_names_the_verdict() -> None:
    out = render_markdown(report_for(BY_ID["blocked-dropped"].results))
    assert "port 25 is **blocked**" in out.splitlines()[0]


# --- junit --------------------------------------------------------------------------------


def test_junit_one_case_per_port_failure_where_no_genuine_greeting() -> None:
    root = ET.fromstring(render_junit(report_for(BY_ID["blocked-dropped"].results)))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"port 25", "port 465", "port 587"}
    assert cases["port 25"].find("failure") is not None
    assert cases["port 587"].find("failure") is None
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["verdict.port25"] == "blocked" and props["verdict.ipv4"] == "blocked"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("tests") == "3"


def test_junit_parses_with_hostile_text() -> None:
    out = render_junit(hostile_report())
    root = ET.fromstring(out.encode())
    texts = " ".join(e.text or "" for e in root.iter())
    assert "\\x00NUL" in texts


def test_junit_one_case_per_readiness_check_and_environment_properties() -> None:
    from portprobe.environment.model import Environment
    from portprobe.readiness.model import DnsblCheck, GenericNameCheck, PtrCheck, Readiness

    readiness = Readiness(
        ready="no",
        public_addresses={"ipv4": ("198.51.100.7",)},
        ptr=(PtrCheck("198.51.100.7", ("dyn-198-51-100-7.isp.example",), "pass"),),
        generic_name=(
            GenericNameCheck("dyn-198-51-100-7.isp.example", True, matched="dyn-198-51-100-7"),
        ),
        dnsbl=(
            DnsblCheck("zen.spamhaus.org", "198.51.100.7", "listed", ("127.0.0.11",), ("PBL",)),
            DnsblCheck("bl.example", "198.51.100.7", "unknown", reason="127.255.255.254"),
        ),
        reasons=("198.51.100.7 is in Spamhaus PBL",),
    )
    env = Environment(platform="azure", ci="github-actions")
    report = report_for(BY_ID["blocked-dropped"].results, readiness=readiness, environment=env)
    root = ET.fromstring(render_junit(report))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    readiness_cases = {
        n: c for n, c in cases.items() if c.get("classname") == "portprobe.readiness"
    }
    assert set(readiness_cases) == {
        "public address ipv4",
        "ptr 198.51.100.7",
        "generic name dyn-198-51-100-7.isp.example",
        "dnsbl zen.spamhaus.org 198.51.100.7",
        "dnsbl bl.example 198.51.100.7",
    }
    assert readiness_cases["ptr 198.51.100.7"].find("failure") is None
    assert readiness_cases["generic name dyn-198-51-100-7.isp.example"].find("failure") is not None
    listed = readiness_cases["dnsbl zen.spamhaus.org 198.51.100.7"].find("failure")
    assert listed is not None and "PBL" in (listed.text or "")
    assert readiness_cases["dnsbl bl.example 198.51.100.7"].find("skipped") is not None
    suite = root.find("testsuite")
    assert suite is not None
    # port 25 + generic name + listed; 3 ports + 5 checks
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("8", "3", "1")
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["environment.platform"] == "azure"
    assert props["environment.ci"] == "github-actions"
    assert props["readiness.ready"] == "no"


# --- property: nothing from the network reaches any output raw -----------------------------

NETWORK_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(greeting=NETWORK_TEXT, ehlo=st.lists(NETWORK_TEXT, max_size=3), other=NETWORK_TEXT)
def test_no_raw_controls_in_any_output(greeting: str, ehlo: list[str], other: str) -> None:
    probe = hostile_probe(other)
    probe = ProbeResult(
        spec=probe.spec,
        state="open",
        greeting=Reply(220, tuple(greeting.split("\n"))),
        ehlo=tuple(ehlo),
        ehlo_plain=tuple(ehlo),
        starttls="offered",
        tls=probe.tls,
        error=probe.error,
        timings=probe.timings,
    )
    report = report_for([probe, dropped("alpha"), *healthy("alpha")], notes=(other,))
    for fmt, kw in ALL_OUTPUTS:
        out = render(fmt, report, **kw)
        assert raw_controls(out) == [], (fmt, kw)
    ET.fromstring(render_junit(report).encode())
    assert raw_controls(SGR.sub("", render_table(report, color=True, verbose=True))) == []
