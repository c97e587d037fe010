"""``--format nagios``: the plugin line, its state word, the exit code, the perfdata grammar.

The grammar is the Monitoring Plugins development guidelines': first line
``SERVICE STATE - text | perfdata``, further lines long output, and after the second ``|``
more perfdata, each item ``'label'=value[UOM];[warn];[crit];[min];[max]``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portprobe import exit_codes
from portprobe.outcome import Report
from portprobe.readiness.model import Readiness
from portprobe.render import render
from portprobe.render.nagios import nagios_state, render_nagios
from portprobe.vocab import VERDICTS
from tests.builders import dns_error, dropped, healthy, no_banner, open_
from tests.builders import typed_report_for as report_for
from tests.test_openmetrics import BY_VERDICT
from tests.test_verdict import BY_ID

EXPECTED = {
    "open": ("OK", 0),
    "restricted": ("WARNING", 1),
    "partial": ("WARNING", 1),
    "blocked": ("CRITICAL", 2),
    "intercepted": ("CRITICAL", 2),
    "inconclusive": ("UNKNOWN", 3),
    "offline": ("UNKNOWN", 3),
}
FIRST = re.compile(r"PORTPROBE (OK|WARNING|CRITICAL|UNKNOWN) - ([^|]+) \| (.+)")
UOM = r"(s|ms|us|%|B|KB|MB|TB|c)?"
NUM = r"-?[0-9]+(\.[0-9]+)?"
PERF = re.compile(rf"('[^'=]+'|[^'= ]+)=({NUM}{UOM}|U);({NUM})?;({NUM})?;({NUM})?(;({NUM})?)?")


def perfdata(text: str) -> list[str]:
    """Every perfdata item of a plugin output (first line and long output)."""
    lines = text.rstrip("\n").split("\n")
    items = lines[0].split(" | ", 1)[1].split()
    long_perf = False
    for line in lines[1:]:
        if long_perf:
            items += line.split()
        elif " | " in line:
            long_perf = True
            items += line.split(" | ", 1)[1].split()
    return items


def test_every_verdict_has_a_state_word_and_exit_code() -> None:
    assert set(EXPECTED) == set(VERDICTS)


@pytest.mark.parametrize("verdict", VERDICTS)
def test_plugin_line_state_and_exit_code(verdict: str) -> None:
    report = report_for(BY_ID[BY_VERDICT[verdict]].results)
    word, code = EXPECTED[verdict]
    out = render("nagios", report)
    first = out.split("\n", 1)[0]
    assert len(first) < 80, first
    m = FIRST.fullmatch(first)
    assert m is not None, first
    assert m.group(1) == word == nagios_state(report, None)
    assert f"port 25 {verdict}" in m.group(2)
    assert exit_codes.for_report(report, None, nagios=True) == code
    items = perfdata(out)
    assert items and all(PERF.fullmatch(i) for i in items), items
    labels = [i.split("=", 1)[0].strip("'") for i in items]
    assert len({lb[:19] for lb in labels}) == len(labels)  # RRD: unique in 19 characters
    assert out.count("|") == 2  # one on the first line, one opening the long perfdata


def test_long_output_names_each_port_and_the_reasons() -> None:
    report = report_for(BY_ID["blocked-dropped"].results)
    out = render_nagios(report)
    assert "port 25: filtered, 0/3 genuine greetings" in out
    assert "port 587: open, 3/3 genuine greetings; TLS ok" in out
    assert "reason: Port 25 failed at all 3 providers" in out
    items = dict(i.split("=", 1) for i in perfdata(out))
    assert items["port25"].startswith("0;")
    assert items["port_25_reachable"] == "0;;;0;1"
    assert items["port_587_genuine"] == "3;;;0;3"
    assert items["port_25_time"].startswith("5s;")


@pytest.mark.parametrize(
    ("verdict", "expect", "word"),
    [("open", ["open"], "OK"), ("blocked", ["blocked"], "OK"), ("open", ["blocked"], "CRITICAL")],
)
def test_expect_keeps_its_meaning(verdict: str, expect: list[str], word: str) -> None:
    report = report_for(BY_ID[BY_VERDICT[verdict]].results)
    out = render_nagios(report, expect=expect)
    first = out.split("\n", 1)[0]
    assert first.startswith(f"PORTPROBE {word} - ") and len(first) < 80
    failure = None if verdict in expect else "expected " + expect[0]
    code = exit_codes.for_report(report, failure, expect_given=True, nagios=True)
    assert exit_codes.NAGIOS_BY_VERDICT and code == {"OK": 0, "CRITICAL": 2}[word]
    if word == "CRITICAL":
        assert "expected blocked" in first


def test_a_long_assertion_failure_still_fits_and_shows() -> None:
    report = report_for(BY_ID["offline-nothing-connects-dns-fails"].results)
    failure = "port 587 gave no SMTP greeting on any host (unreachable); port 2525 was not probed"
    first = render_nagios(report, assertion_failure=failure).split("\n", 1)[0]
    assert first.startswith("PORTPROBE CRITICAL - port 25 offline, port 587") and len(first) < 80


def test_interrupted_is_unknown() -> None:
    report = report_for(BY_ID["open-everywhere"].results, interrupted=True)
    assert nagios_state(report, None) == "UNKNOWN"
    assert "interrupted" in render_nagios(report).split("\n", 1)[0]


def test_readiness_line_and_perfdata() -> None:
    readiness = Readiness(ready="no", public_addresses={"ipv4": ("198.51.100.7",)})
    report = report_for(BY_ID["open-everywhere"].results, readiness=readiness)
    out = render_nagios(report)
    assert "mail readiness: no" in out
    assert "ready=0;;;0;1" in perfdata(out)


def test_hostile_text_cannot_break_the_plugin_format() -> None:
    hostile = "evil | 'x'=1 \x1b[2J\x1b]0;pwned\x07\n\u202eCRITICAL"
    probe = open_("evil", 25, greeting=hostile)
    report: Report = report_for([probe, *healthy("evil"), dropped("alpha"), *healthy("alpha")])
    # The reasons quote greetings; a report read from a file may carry anything.
    out = render_nagios(report, assertion_failure=hostile)
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert out.count("|") == 2
    assert all(PERF.fullmatch(i) for i in perfdata(out))
    assert len(out.split("\n", 1)[0]) < 80


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"expect": ["open"]}, "OK"),
        ({"expect": ["blocked"]}, "CRITICAL"),
        ({"require_ports": [2525]}, "CRITICAL"),  # not probed
        ({"expect": ["open"], "require_ports": [587]}, "OK"),
    ],
)
def test_the_runs_own_assertions_from_its_parameters(
    params: dict[str, list[Any]], word: str
) -> None:
    # render("nagios", report) takes no options: it must agree with the exit code the
    # CLI computes from the same --expect / --require-port.
    base = report_for(BY_ID["open-everywhere"].results)
    report = replace(base, parameters={**base.parameters, **params})
    first = render("nagios", report).split("\n", 1)[0]
    assert first.startswith(f"PORTPROBE {word} - port 25 open"), first
    if params.get("expect") == ["blocked"]:
        assert "port 25 open, expected blocked" in first
    if params.get("require_ports") == [2525]:
        assert "port 2525 was not probed" in first


NETWORK_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(greeting=NETWORK_TEXT, host=NETWORK_TEXT, failure=NETWORK_TEXT)
def test_any_text_keeps_nagios_and_openmetrics_well_formed(
    greeting: str, host: str, failure: str
) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from portprobe.render.openmetrics import render_openmetrics

    probe = open_("evil", 25, host=host or "h", greeting=greeting)
    report = report_for([probe, *healthy("evil"), dropped("alpha"), *healthy("alpha")])
    out = render_nagios(report, assertion_failure=failure or None)
    first = out.split("\n", 1)[0]
    assert len(first) < 80 and FIRST.fullmatch(first), first
    assert out.count("|") == 2 and all(PERF.fullmatch(i) for i in perfdata(out))
    metrics = render_openmetrics(report)
    for text in (out, metrics):
        assert not [
            c for c in text if c != "\n" and unicodedata.category(c)[0] in "CZ" and c != " "
        ]
    names = {f.name for f in text_string_to_metric_families(metrics)}
    assert "portprobe_probe_success" in names


# --- a check without port 25 (issue 25): a submission service can be OK --------------------


def submission_report(results: list[Any], **params: Any) -> Report:
    base = report_for(results)
    return replace(base, parameters={**base.parameters, **params})


def test_a_submission_check_is_judged_by_its_required_port() -> None:
    report = submission_report([open_("own", 587)], ports=[587], require_ports=[587])
    assert report.verdict.port25 == "inconclusive"  # the port-25 verdict is unchanged
    assert not exit_codes.port25_asked(report)
    out = render("nagios", report)
    first = out.split("\n", 1)[0]
    assert first == "PORTPROBE OK - port 587 open | port25=U;;;0;1", first
    assert exit_codes.for_report(report, None, nagios=True) == exit_codes.NAGIOS_OK
    # Outside Nagios the spec's codes stay: a port-25 verdict was asked for by nobody, and
    # the exit code is still the verdict's.
    assert exit_codes.for_report(report, None) == exit_codes.VERDICT["inconclusive"]


def test_a_submission_check_without_require_port_judges_its_ports() -> None:
    ok = submission_report([open_("own", 587)], ports=[587])
    assert exit_codes.for_report(ok, None, nagios=True) == exit_codes.NAGIOS_OK
    silent = submission_report([open_("own", 587), no_banner("own", 2525)], ports=[587, 2525])
    assert exit_codes.ungreeted_ports(silent) == (2525,)
    assert exit_codes.for_report(silent, None, nagios=True) == exit_codes.NAGIOS_CRITICAL
    first = render("nagios", silent).split("\n", 1)[0]
    assert first.startswith("PORTPROBE CRITICAL - port 587 open, port 2525 no-banner |"), first


def test_a_submission_check_that_fails_is_critical_not_unknown() -> None:
    report = submission_report([dropped("own", 587)], ports=[587], require_ports=[587])
    failure = "port 587 gave no SMTP greeting on any host (filtered)"
    assert exit_codes.for_report(report, failure, nagios=True) == exit_codes.NAGIOS_CRITICAL
    assert render("nagios", report).startswith("PORTPROBE CRITICAL - port 587 filtered")
    interrupted = replace(report, interrupted=True)
    assert exit_codes.for_report(interrupted, None, nagios=True) == exit_codes.NAGIOS_UNKNOWN


def test_a_report_without_parameters_counts_port_25_as_asked() -> None:
    report = submission_report([open_("own", 587)], ports=None)
    assert exit_codes.port25_asked(report)
    assert exit_codes.for_report(report, None, nagios=True) == exit_codes.NAGIOS_UNKNOWN


@pytest.mark.parametrize(
    ("verdict", "head"), [("open", "1"), ("blocked", "0"), ("inconclusive", "U"), ("offline", "U")]
)
def test_port25_perfdata_is_u_when_undeterminable(verdict: str, head: str) -> None:
    out = render("nagios", report_for(BY_ID[BY_VERDICT[verdict]].results))
    assert dict(i.split("=", 1) for i in perfdata(out))["port25"] == f"{head};;;0;1"


def test_a_port_whose_names_did_not_resolve_has_u_perfdata() -> None:
    report = report_for([dns_error("gone", 25), *healthy("own")])
    items = dict(i.split("=", 1) for i in perfdata(render("nagios", report)))
    assert items["port_25_reachable"] == "U;;;0;1"
    assert items["port_25_genuine"].startswith("U;")
    assert items["port_25_time"] == "U;;;0"  # not the dns-error's 0 s
    assert items["port_587_time"].endswith("s;;;0") and items["port_587_reachable"] == "1;;;0;1"


CONTRIB = Path(__file__).resolve().parent.parent / "contrib" / "nagios" / "portprobe.cfg"


def contrib_service_args(description: str) -> list[str]:
    """The arguments the contrib Nagios config gives check_portprobe for a service."""
    text = CONTRIB.read_text()
    blocks = re.findall(r"define service \{(.*?)\}", text, re.DOTALL)
    for block in blocks:
        if re.search(rf"service_description\s+{re.escape(description)}\s*$", block, re.M):
            m = re.search(r"check_command\s+check_portprobe!(.*)$", block, re.M)
            assert m is not None, block
            return m.group(1).split()
    raise AssertionError(f"no service {description!r} in {CONTRIB}")


def test_the_contrib_submission_service_is_ok_when_587_greets() -> None:
    # The contrib config's own arguments, run as Nagios would (a subprocess, exit code and
    # stdout), against a real SMTP server on loopback standing in for 587.
    import subprocess
    import sys

    from tests.servers import aiosmtpd_server

    args = contrib_service_args("SMTP submission (587)")
    assert args == ["--ports", "587", "--require-port", "587"]
    with aiosmtpd_server() as port:
        loopback = ["--target", "127.0.0.1", f"--port-map=587={port}", "--no-readiness"]
        run = subprocess.run(
            [sys.executable, "-m", "portprobe", "--format", "nagios", *args, *loopback],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == exit_codes.NAGIOS_OK, run.stdout + run.stderr
    assert run.stdout.startswith("PORTPROBE OK - port 587 open |"), run.stdout
