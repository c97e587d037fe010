"""Thousands of targets: the report is built in time linear in the probes (issue 25).

No clock: the seam is a ``ProbeResult`` that counts how often its ``spec`` is read. Every
look at a result (its port, host, address, provider, family) goes through ``spec``, so the
count is the work done per result. A linear build reads each result a fixed number of
times, whatever their number; a rule that scans every result for each result (the control
handshake lookup did, once per refused port 25) reads them n times each, and the count
grows with n². Timing figures are bench/scale.py's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from portprobe.model import ErrorInfo, ProbeResult, Reply, Timings
from portprobe.render import render
from portprobe.report.anomalies import ControlIndex, refusal_timings
from tests.builders import open_, rejected, reset, spec, typed_report_for

READS = [0]


class CountedResult(ProbeResult):
    """A probe result that counts the reads of its ``spec``."""

    def __getattribute__(self, name: str) -> Any:
        if name == "spec":
            READS[0] += 1
        return super().__getattribute__(name)


def counted(result: ProbeResult) -> CountedResult:
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    return CountedResult(**fields)


def refused_25(n: int) -> list[ProbeResult]:
    """n hosts, each its own provider: 25 refused fast, 587 greets, 2525 refused."""
    out: list[ProbeResult] = []
    for i in range(n):
        name = f"p{i}"
        address = f"192.0.2.{i % 250 + 1}" if i < 250 else f"198.51.100.{i % 250 + 1}"
        out.append(reset(name, host=f"mx.{name}.example", address=address, total_ms=0.4))
        out.append(open_(name, 587, host=f"mx.{name}.example", address=address))
        out.append(reset(name, 2525, host=f"mx.{name}.example", address=address))
    return out


def blocklisted_25(n: int) -> list[ProbeResult]:
    """n providers refusing this client on 25 with a blocklist text, 587 greeting."""
    out: list[ProbeResult] = []
    for i in range(n):
        name = f"p{i}"
        out.append(rejected(name, 554, f"mx.{name}.example 5.7.1 listed at zen.spamhaus.org"))
        out.append(open_(name, 587))
    return out


def starttls_missing(n: int) -> list[ProbeResult]:
    """n providers greeting on 25 without STARTTLS while their 587 offers it."""
    out: list[ProbeResult] = []
    for i in range(n):
        name = f"p{i}"
        out.append(open_(name, 25, starttls="not-offered"))
        out.append(open_(name, 587))
    return out


def dns_failures(n: int) -> list[ProbeResult]:
    out: list[ProbeResult] = []
    for i in range(n):
        s = dataclasses.replace(spec(f"p{i}", 25), address=None, family=None)
        err = ErrorInfo(kind="dns", message="name does not resolve")
        out.append(ProbeResult(spec=s, state="dns-error", error=err, timings=Timings(total=0.0)))
        out.append(open_(f"p{i}", 587))
    return out


def reads_for(results: list[ProbeResult]) -> int:
    """Spec reads while building the report and rendering every format this issue owns."""
    mine = [counted(r) for r in results]
    READS[0] = 0
    report = typed_report_for(mine)
    report.to_dict()
    render("nagios", report)
    render("openmetrics", report)
    return READS[0]


SCENARIOS: list[Callable[[int], list[ProbeResult]]] = [
    refused_25,
    blocklisted_25,
    starttls_missing,
    dns_failures,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_report_work_grows_linearly_with_the_targets(
    scenario: Callable[[int], list[ProbeResult]],
) -> None:
    small, large = reads_for(scenario(40)), reads_for(scenario(160))
    assert small > 0
    # Four times the targets: about four times the reads (a fixed overhead makes it a
    # little less). A per-result scan of all results would make it about sixteen.
    assert large <= 4.2 * small, (small, large)


def test_the_seam_sees_a_quadratic_scan() -> None:
    # The test above would catch the old control lookup: a scan of every result for each
    # refusal, done here on purpose, multiplies the reads by about sixteen.
    def scan(results: list[ProbeResult]) -> int:
        mine = [counted(r) for r in results]
        READS[0] = 0
        for r in mine:
            if r.spec.port == 25:
                for other in mine:
                    _ = other.spec.address
        return READS[0]

    small, large = scan(refused_25(40)), scan(refused_25(160))
    assert large > 12 * small


def test_control_lookup_is_the_old_three_tiers() -> None:
    # Same address first, then the same host at another address, then the provider; the
    # fastest handshake within the tier, never port 25, a negative control or the other
    # family, and never a probe that did not connect.
    def probe(port: int, host: str, address: str, connect: float | None, **kw: Any) -> Any:
        s = dataclasses.replace(spec("acme", port), host=host, address=address, **kw)
        state = "open" if connect is not None else "filtered"
        greeting = Reply(220, (f"{host} ESMTP",)) if connect is not None else None
        return ProbeResult(
            spec=s, state=state, greeting=greeting, timings=Timings(connect=connect, total=1.0)
        )

    refusal = probe(25, "mx1.acme.example", "192.0.2.1", None)
    others = [
        probe(587, "mx2.acme.example", "192.0.2.9", 1.0),  # provider tier
        probe(465, "mx1.acme.example", "192.0.2.2", 9.0),  # host tier, other address
        probe(2525, "mx1.acme.example", "192.0.2.1", None),  # did not connect
        probe(587, "mx1.acme.example", "192.0.2.1", 1.0, negative=True),  # negative control
        probe(25, "mx1.acme.example", "192.0.2.1", 0.5),  # port 25 is never a control
    ]
    index = ControlIndex(others)
    assert index.fastest(refusal.spec) == (9.0, 465)  # the host tier beats the provider's
    same_address = [*others, probe(587, "mx1.acme.example", "192.0.2.1", 20.0)]
    assert ControlIndex(same_address).fastest(refusal.spec) == (20.0, 587)
    assert ControlIndex(others[:1]).fastest(refusal.spec) == (1.0, 587)
    v6 = dataclasses.replace(refusal.spec, family="ipv6", address="2001:db8::1")
    assert ControlIndex(others).fastest(v6) is None
    timed = refusal_timings([dataclasses.replace(refusal, state="refused"), *others])
    assert [(t.index, t.control_ms, t.control_port) for t in timed] == [(0, 9.0, 465)]


def test_counted_results_change_nothing_in_the_report() -> None:
    plain = typed_report_for(refused_25(30)).to_dict()
    seen = typed_report_for([counted(r) for r in refused_25(30)]).to_dict()
    assert plain == seen
    assert plain["verdict"]["port25"] in ("blocked", "inconclusive")
