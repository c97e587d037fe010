"""Right words in edge cases (issue 25): interrupted runs, one host of one's own, controls.

- An interrupted run names the probes still running as such, never "not probed", and its
  advice is to let the run finish, not to add port 25 to ``--ports``.
- One server of one's own offering STARTTLS on 587 and not on 25 is that server's
  configuration (``open``), not ``intercepted``; a second provider showing the same is a
  middlebox sign again.
- Only ports that greeted count as controls ("the path works"): a silent 2525 or a 465
  whose TLS failed does not.
"""

from __future__ import annotations

import dataclasses

from portprobe.model import Plan, ProbeResult, Timings
from portprobe.report import annotate, build_report, decide
from portprobe.report.build import unfinished
from tests.builders import PARAMETERS, T0, T1, healthy, no_banner, open_, reset

NOT_PROBED = "was not probed"
ADD_PORT = "Include port 25 in --ports"


def interrupted_report(done: list[ProbeResult], running: list[ProbeResult]) -> dict[str, object]:
    plan = Plan(specs=tuple(r.spec for r in [*done, *running]))
    report = build_report(
        results=done,
        plan=plan,
        parameters=PARAMETERS,
        tool_version="0.1.0",
        started_at=T0,
        finished_at=T1,
        interrupted=True,
    )
    return report.verdict.to_dict()


def text_of(verdict: dict[str, object]) -> str:
    return " ".join([*verdict["reasons"], *verdict["advice"]])  # type: ignore[misc]


def test_interrupted_while_port_25_runs_says_still_running() -> None:
    v = interrupted_report(done=[open_("own", 587)], running=[no_banner("own", 25)])
    words = text_of(v)
    assert v["port25"] == "inconclusive"
    assert "Port 25 was still being probed over IPv4 when the run was interrupted." in words
    assert "1 probe was still running when the run was interrupted (1 on port 25)" in words
    assert NOT_PROBED not in words and ADD_PORT not in words
    assert "let the probes finish" in words


def test_interrupted_before_anything_finished() -> None:
    v = interrupted_report(done=[], running=[no_banner("own", 25), open_("own", 587)])
    words = text_of(v)
    assert v["port25"] == "inconclusive"
    assert "No probe had finished when the run was interrupted." in words
    assert NOT_PROBED not in words and "Check the host and domain names" not in words


def test_interrupted_before_anything_connected_is_not_offline() -> None:
    # A refused 2525 finished, 25 and 587 were still running: nothing connected yet, which
    # says nothing about the network.
    v = interrupted_report(
        done=[reset("own", 2525)], running=[no_banner("own", 25), open_("own", 587)]
    )
    assert v["port25"] == "inconclusive"
    assert v["families"] == {"ipv4": "inconclusive", "ipv6": "untested"}
    assert "No connection over IPv4 had succeeded when the run was interrupted" in text_of(v)


def test_an_unconnected_interrupted_family_is_not_called_unavailable() -> None:
    done = [*healthy("own"), open_("own", 25)]
    running = [no_banner("own", 25, family="ipv6"), open_("own", 587, family="ipv6")]
    v = interrupted_report(done=done, running=running)
    assert v["port25"] == "open"
    assert v["families"] == {"ipv4": "open", "ipv6": "inconclusive"}
    assert "unavailable" not in text_of(v)


def test_a_finished_run_without_port_25_still_says_not_probed() -> None:
    # Not interrupted, port 25 not asked for: that is "not probed", with its advice.
    v = decide(annotate([open_("own", 587)])).to_dict()
    assert "Port 25 was not probed over IPv4." in v["reasons"]
    assert any(ADD_PORT in a for a in v["advice"])


def test_unfinished_is_the_plan_minus_the_results() -> None:
    a25, a587 = no_banner("a", 25), open_("a", 587)
    twice = Plan(specs=(a25.spec, a587.spec, a25.spec))
    assert unfinished(twice, [a587]) == (a25.spec, a25.spec)
    assert unfinished(twice, [a25, a587]) == (a25.spec,)
    assert unfinished(twice, [a25, a587, a25]) == ()


def test_own_server_without_starttls_on_25_is_its_configuration() -> None:
    results = [open_("own", 25, starttls="not-offered", tls_info=None), open_("own", 587)]
    observed = annotate(results)
    assert "starttls-missing-on-25" not in observed[0].anomalies
    assert observed[0].genuine
    v = decide(observed).to_dict()
    assert v["port25"] == "open"
    words = text_of(v)
    assert "did not offer STARTTLS on port 25 while its provider's port 587 did" in words
    assert "that server's own configuration" in words
    assert "Cisco" not in words and "intercept" not in words


def test_a_second_provider_without_starttls_on_25_is_a_middlebox_sign() -> None:
    results = [open_(p, 25, starttls="not-offered", tls_info=None) for p in ("alpha", "bravo")] + [
        open_(p, 587) for p in ("alpha", "bravo")
    ]
    observed = annotate(results)
    assert all("starttls-missing-on-25" in o.anomalies for o in observed[:2])
    assert decide(observed).port25 == "intercepted"


def test_a_catalog_expectation_alone_still_flags_missing_starttls() -> None:
    from portprobe.model import Expectation

    own = open_("own", 25, starttls="not-offered", tls_info=None)
    expected = dataclasses.replace(
        own, spec=dataclasses.replace(own.spec, expect=Expectation(starttls=True))
    )
    assert "starttls-missing-on-25" in annotate([expected])[0].anomalies


def test_only_ports_that_greeted_are_controls() -> None:
    silent_25 = no_banner("own", 25)
    silent_2525 = no_banner("own", 2525)
    tls_failed_465 = dataclasses.replace(
        open_("own", 465), state="tls-error", greeting=None, tls=None
    )
    v = decide(annotate([silent_25, silent_2525, tls_failed_465])).to_dict()
    # Nothing greeted on another port: no control, so no claim that the path works.
    assert v["port25"] == "inconclusive"
    assert "the path to" not in text_of(v)
    assert "No other port reached the same host" in text_of(v)

    v = decide(annotate([silent_25, silent_2525, tls_failed_465, open_("own", 587)])).to_dict()
    assert "Port 587 reached it, so the path to it works." in v["reasons"]
    assert "2525" not in " ".join(v["reasons"][:2])


def test_a_connected_silent_control_still_times_a_refusal() -> None:
    # Refusal timing compares handshakes: a silent port's TCP handshake is a round trip
    # all the same, so it stays a timing control (only "the path works" needs a greeting).
    from portprobe.report.anomalies import refusal_timings

    silent = dataclasses.replace(no_banner("own", 2525), timings=Timings(connect=40.0, total=9.0))
    timed = refusal_timings([reset("own", 25, total_ms=1.0), silent])
    assert [(t.control_port, t.from_path) for t in timed] == [(2525, True)]


def test_the_table_and_markdown_show_still_running_cells_not_not_probed() -> None:
    """The 80-column view and Markdown name each cell still running at the interruption,
    and the header counts them; the "· not probed" mark is for ports never asked."""
    from portprobe.render import render

    done = [open_("own", 587)]
    running = [dataclasses.replace(done[0], spec=dataclasses.replace(done[0].spec, port=25))]
    report = build_report(
        results=done,
        plan=Plan(specs=tuple(r.spec for r in [*done, *running])),
        parameters=PARAMETERS,
        tool_version="0.1.0",
        started_at=T0,
        finished_at=T1,
        interrupted=True,
    )
    assert report.unfinished == (running[0].spec,)
    table = render("table", report)
    assert "1 still running when interrupted" in " ".join(table.split("\n\n")[0].split())
    row = next(line for line in table.splitlines() if line.startswith("smtp.own"))
    assert row.split()[2:4] == ["running", "open"]  # port 25, then 587
    assert "running: still running when interrupted" in table
    assert "not probed" not in table
    markdown = render("markdown", report)
    assert "| running |" in markdown and "not probed" not in markdown
