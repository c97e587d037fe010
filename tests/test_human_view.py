"""The default view a person reads: host × family grid, verdict, readiness, at 80 and 120 columns.

Pure: reports built from hand-made results, rendered to text. The real-terminal version
of these checks is ``tests/lab/test_lab_terminal.py``.
"""

from __future__ import annotations

import re

import pytest

from portprobe.advice import Advice
from portprobe.environment.model import Clue, Environment
from portprobe.model import ProbeResult, Reply, Timings
from portprobe.outcome import Report
from portprobe.readiness.model import DnsblCheck, PtrCheck, Readiness
from portprobe.render import render, verdict_line
from portprobe.render.cells import display_width
from portprobe.render.markdown import render_markdown
from portprobe.render.table import render_table
from tests.builders import dns_error, dropped, healthy, open_, spec
from tests.builders import typed_report_for as report_for
from tests.test_render import HOSTILE, SGR, hostile_report, raw_controls
from tests.test_verdict import BY_ID

WIDTHS = (80, 120)
STATES = (
    "open",
    "rejected",
    "no-banner",
    "not-smtp",
    "tls-error",
    "refused",
    "filtered",
    "unreachable",
    "error",
)
LONG = "mx-inbound-01.mail.protection.outlook-like-provider.example"


def grid_of(out: str) -> list[str]:
    """The grid's lines: from its header row to the line before the legend or a blank."""
    lines = out.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("host "))
    after = ("✓", "✗", "!", "·", "(…)", "DNS could not")
    end = next(
        n
        for n in range(start + 2, len(lines) + 1)
        if n == len(lines) or not lines[n] or lines[n].startswith(after)
    )
    return lines[start + 2 : end]


def both_families(host: str = LONG) -> list[ProbeResult]:
    """Port 25 dropped on IPv4, open on IPv6, same host name: rows differ only by family."""
    results = []
    for family in ("ipv4", "ipv6"):
        state = dropped if family == "ipv4" else open_
        results.append(state("alpha", family=family, host=host))
        results += healthy("alpha", family=family)
    results += [open_("bravo"), *healthy("bravo")]
    return results


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("case", sorted(BY_ID))
def test_every_scenario_fits_and_keeps_the_essentials(case: str, width: int) -> None:
    report = report_for(BY_ID[case].results)
    for verbose in (False, True):
        out = render_table(report, width=width, verbose=verbose)
        assert max(map(len, out.splitlines())) <= width, (case, verbose)
        # The verdict line is never cut: at 80 columns it still reads whole when unwrapped.
        assert verdict_line(report) in " ".join(out.split()), case
        for p in report.probes:
            state = p.result.state
            if state == "dns-error" and not verbose:
                assert "DNS could not resolve" in out, case  # collapsed, see below
            else:
                assert state in out, (case, state)  # every state word, whole
        if not verbose and report.probes:
            families = {p.result.spec.family for p in report.probes if p.result.spec.family}
            for family in families:
                assert {"ipv4": "IPv4", "ipv6": "IPv6"}[family] in out


@pytest.mark.parametrize("width", WIDTHS)
def test_ipv4_and_ipv6_rows_of_one_host_are_told_apart(width: int) -> None:
    out = render_table(report_for(both_families()), width=width)
    rows = grid_of(out)
    assert len(rows) == len(set(rows)), out  # no two rows look alike
    mine = [r for r in rows if r.startswith(LONG[:8])]
    assert len(mine) == 2, out
    assert re.search(r"IPv4 +filtered", mine[0]) and re.search(r"IPv6 +open ✓", mine[1]), out
    # -v's per-probe table too: where the address column does not fit, the family shows.
    verbose = render_table(report_for(both_families()), width=width, verbose=True)
    probe_rows = verbose.split("\n\n")[1].splitlines()[2:]
    assert len(probe_rows) == 9 and len(set(probe_rows)) == 9, verbose


def test_narrow_terminal_shortens_names_in_the_middle_and_drops_detail_first() -> None:
    narrow = render_table(report_for(both_families()), width=80)
    wide = render_table(report_for(both_families()), width=120)
    # 80 columns: the long name loses its middle (both ends stay), no address column...
    rows = grid_of(narrow)
    assert all(LONG not in r for r in rows) and rows[0].startswith("mx-inbound-01.mail.")
    assert rows[0].split()[0].endswith("-provider.example")
    assert "2001:db8::" not in narrow
    # ...while 120 columns show the whole name, the addresses and the greeting.
    assert LONG in wide and "2001:db8::" in wide and "ESMTP ready" in wide
    assert grid_of(wide)[0].split()[:2] == [LONG, "IPv4"]


@pytest.mark.parametrize("width", WIDTHS)
def test_identical_dns_failures_collapse_into_one_line_naming_the_hosts(width: int) -> None:
    names = [f"p{n:02d}" for n in range(15)]
    results = [dns_error(name, port) for name in names for port in (25, 587)]
    results += [open_("alpha"), *healthy("alpha")]
    out = render_table(report_for(results), width=width)
    assert "dns-error" not in out  # thirty identical rows are gone...
    joined = " ".join(out.split())
    assert "DNS could not resolve 15 hosts (not probed on 25, 587)" in joined
    for name in names:  # ...and every host is still named, once
        assert joined.count(f"mx.{name}.example") == 1
    assert len(grid_of(out)) == 2  # alpha: mx on 25, smtp on 465 and 587


def test_offline_by_name_is_one_line_not_a_table() -> None:
    results = [dns_error(p, port) for p in ("alpha", "bravo", "gamma") for port in (25, 465)]
    out = render_table(report_for(results), width=80)
    assert not any(line.startswith("host ") for line in out.splitlines())
    assert "dns-error" not in out
    assert "DNS could not resolve 3 hosts" in out
    assert "port 25: offline" in out or "port 25: inconclusive" in out


def test_every_state_word_survives_80_columns() -> None:
    results = []
    for n, state in enumerate(STATES):
        s = spec(f"prov{n}", (25, 465, 587, 2525)[n % 4], host=f"host-{n}.example")
        results.append(ProbeResult(spec=s, state=state, timings=Timings(total=1.0)))  # type: ignore[arg-type]
    out = render_table(report_for(results), width=80)
    assert max(map(len, out.splitlines())) <= 80
    for state in STATES:
        assert re.search(rf"(^|\s){re.escape(state)}(\s|$)", out, re.M), state


def test_negative_control_and_not_probed_marks_are_explained() -> None:
    results = [open_("alpha"), dropped("alpha", 2525, negative=True), *healthy("alpha")]
    out = render_table(report_for(results), width=80)
    assert "(filtered)" in out and "(…) expected to fail" in out
    assert "· not probed" in out


def test_colour_only_when_asked() -> None:
    report = report_for(BY_ID["partial-v4-blocked-v6-open"].results)
    plain = render_table(report, color=False, width=80)
    assert "\x1b" not in plain
    painted = render_table(report, color=True, width=80)
    assert "\x1b[31mfiltered\x1b[0m" in painted and "\x1b[32mopen ✓\x1b[0m" in painted
    assert "\x1b[33mport 25: partial" in painted
    # Colour changes nothing else: the same text, the same alignment.
    assert SGR.sub("", painted) == plain


def with_context() -> Report:
    env = Environment(
        platform="aws",
        ci="github-actions",
        evidence=(Clue("dmi:sys_vendor", "Amazon EC2", "aws"),),
        label="AWS EC2",
        advice=(
            Advice(
                "platform-unblock-step",
                "AWS: request removal of the port-25 restriction with the EC2 form.",
            ),
        ),
        notes=("AWS documents port 25 as throttled by default; measured: dropped.",),
    )
    ready = Readiness(
        ready="no",
        public_addresses={"ipv4": ("198.51.100.7",), "ipv6": ()},
        ptr=(PtrCheck("198.51.100.7", ("ec2-198-51-100-7.compute.example",), "pass"),),
        dnsbl=(
            DnsblCheck("zen.spamhaus.org", "198.51.100.7", "listed", ("127.0.0.11",), ("PBL",)),
        ),
        reasons=("198.51.100.7 is in Spamhaus PBL: receivers will refuse direct mail.",),
        advice=(Advice("pbl-relay", "Relay through a smarthost on 587.", ports=(587,)),),
    )
    return report_for(BY_ID["blocked-dropped"].results, readiness=ready, environment=env)


@pytest.mark.parametrize("width", WIDTHS)
def test_where_it_ran_and_readiness_are_in_the_view(width: int) -> None:
    out = render_table(with_context(), width=width)
    assert max(map(len, out.splitlines())) <= width
    lines = out.splitlines()
    assert "Running on: AWS EC2 (CI: github-actions)" in lines[:3]
    assert "Public address: IPv4 198.51.100.7" in lines[:3]
    joined = " ".join(out.split())
    assert "Mail readiness: no" in out
    assert "198.51.100.7 is in Spamhaus PBL" in joined and "Relay through a smarthost" in joined
    # The platform's own step joins the verdict's advice; its policy note is shown.
    advice = joined.split("Advice:", 1)[1]
    assert "request removal of the port-25 restriction" in advice
    assert "note: AWS documents port 25" in joined
    # The readiness block comes after the verdict.
    assert out.index("port 25: blocked") < out.index("Mail readiness: no")
    verbose = " ".join(render_table(with_context(), width=width, verbose=True).split())
    assert "zen.spamhaus.org 198.51.100.7: listed (PBL)" in verbose
    assert "reverse DNS 198.51.100.7: pass (ec2-198-51-100-7.compute.example)" in verbose


def test_markdown_has_the_same_shape() -> None:
    out = render_markdown(with_context())
    assert out.index("portprobe: port 25 is **blocked**") < out.index("Running on: AWS EC2")
    assert "| Host | Family | 25 | 465 | 587 | Address | Greeting |" in out
    assert "| mx.alpha.example | IPv4 | filtered | · | · |" in out
    assert out.index("### Reasons") < out.index("### Advice") < out.index("Mail readiness")
    assert "### Probes" not in out and "### Probes" in render_markdown(with_context(), verbose=True)
    results = [dns_error(p, 25) for p in ("a", "b")] + [open_("alpha"), *healthy("alpha")]
    md = render("markdown", report_for(results))
    assert "DNS could not resolve 2 hosts (not probed on 25): mx.a.example, mx.b.example" in md
    assert "dns-error" not in md


def megabyte_report() -> Report:
    text = (HOSTILE + " ") * (1_000_000 // len(HOSTILE))
    results = [
        ProbeResult(
            spec=spec("mallory", 25, host="mx.mallory.example"),
            state="open",
            greeting=Reply(220, (text, "\x1b[2J" * 1000)),
            ehlo=(text,),
            timings=Timings(connect=1.0, total=2.0),
        ),
        dropped("alpha"),
        *healthy("alpha"),
    ]
    return report_for(results, notes=(text[:5000],))


@pytest.mark.parametrize("report", [hostile_report(), megabyte_report()], ids=["hostile", "1MB"])
@pytest.mark.parametrize("width", WIDTHS)
def test_hostile_text_is_sanitised_and_bounded_in_every_view(report: Report, width: int) -> None:
    for verbose in (False, True):
        for color in (False, True):
            out = render_table(report, width=width, verbose=verbose, color=color)
            assert raw_controls(SGR.sub("", out)) == [], (verbose, color)
            assert max(map(display_width, SGR.sub("", out).splitlines())) <= width, (verbose, color)
            assert len(out) < 200_000, (verbose, len(out))  # 1 MB in, a screenful out
            if not color:
                assert "\x1b" not in out
        md = render_markdown(report, verbose=verbose)
        assert raw_controls(md) == [] and len(md) < 200_000
    assert "\\x1b]0;pwned\\x07" in render_table(report, width=width, verbose=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_wide_characters_count_as_two_cells(width: int) -> None:
    """A greeting in Japanese takes two terminal cells a character: still within width."""
    wide = "メールサーバー準備完了" * 20
    results = [open_("alpha", greeting=f"mx.alpha.example ESMTP {wide}"), *healthy("alpha")]
    results += [open_("bravo", greeting=f"mx.bravo.example {wide}"), *healthy("bravo")]
    for verbose in (False, True):
        out = render_table(report_for(results), width=width, verbose=verbose)
        assert max(map(display_width, out.splitlines())) <= width, out
        assert "メール" in out  # shortened, not dropped
    grid = grid_of(render_table(report_for(results), width=width))
    # Columns stay aligned: every row's family starts in the same terminal column.
    starts = {display_width(r[: r.index("IPv4")]) for r in grid}
    assert len(starts) == 1, grid


def test_several_addresses_of_one_host_and_family_are_told_apart() -> None:
    results = [
        open_("alpha", address="192.0.2.10"),
        dropped("alpha", address="198.51.100.10"),
        open_("alpha", family="ipv6", address="2001:db8::10"),
        *healthy("alpha"),
        open_("bravo"),
        *healthy("bravo"),
    ]
    for width in WIDTHS:
        rows = grid_of(render_table(report_for(results), width=width))
        mx = [r for r in rows if r.startswith("mx.alpha.example")]
        assert len(mx) == 3 and len(set(mx)) == 3, rows
        assert "IPv4 …2.10" in mx[0] and "IPv4 …0.10" in mx[1], rows
        assert re.search(r"IPv6 +open", mx[2]), rows
