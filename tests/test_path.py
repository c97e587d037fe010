"""The path trace (spec "Path"): the TTL ladder over a simulated path, the blocker rules,
Team Cymru parsing, the advice that follows ``where``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import trio
import trio.testing

from portprobe.advice import Advice
from portprobe.companions.path import path_advice
from portprobe.model import DnsAnswer, ProbeSpec
from portprobe.path.asn import (
    HopNames,
    clean_ptr,
    is_private,
    origin_name,
    parse_as_name,
    parse_origin,
)
from portprobe.path.locate import locate
from portprobe.path.model import Trace, distance_of, hops_of
from portprobe.probe.trace import MAX_ATTEMPTS, Ladder
from tests.fake_dns import FakeDNS
from tests.fake_path import FakePath

# Hop addresses of a fake path (tests/fake_path.py): text, never dialled.
HOME = "192.168.1.1"  # address-text
ISP1, TRANSIT, DESTGW = "198.18.1.1", "192.0.2.99", "203.0.113.1"
HOST = "203.0.113.10"
AS_DATA = {
    ISP1: 64500,
    TRANSIT: 64510,
    DESTGW: 64511,
    HOST: 64511,
}
ZONE: dict[str, dict[str, Any]] = {
    origin_name(a) or "": {"TXT": [f"{asn} | {a}/24 | ZZ | lab | 2026-01-01"]}
    for a, asn in AS_DATA.items()
}
ZONE.update(
    {
        "AS64500.asn.cymru.com": {"TXT": ["64500 | ZZ | lab | 2026-01-01 | EXAMPLE-ISP, ZZ"]},
        "AS64510.asn.cymru.com": {"TXT": ["64510 | ZZ | lab | 2026-01-01 | TRANSIT-NET"]},
        "AS64511.asn.cymru.com": {"TXT": ["64511 | ZZ | lab | 2026-01-01 | RECEIVER"]},
        "1.1.18.198.in-addr.arpa": {"PTR": ["edge1.isp.example."]},
    }
)


def spec(port: int) -> ProbeSpec:
    return ProbeSpec("mx.example", "mx.example", HOST, "ipv4", port, provider="example")


def trace_of(path: FakePath, *, max_hops: int = 8, asn: bool = True) -> tuple[Trace, FakePath]:
    ladder = Ladder(spec(25), spec(587), max_hops=max_hops, wait=0.5, connector=path)
    names = HopNames(FakeDNS(ZONE), asn=asn)

    async def main() -> Trace:
        await ladder.run()
        hops = hops_of(ladder.port25, ladder.control, HOST)
        named = []
        for h in hops:
            if h.address is not None:
                info = await names.as_of(h.address)
                name = await names.ptr(h.address)
                h = type(h)(
                    **{**h.__dict__, "name": name, "asn": info.asn, "as_name": info.as_name}
                )
            named.append(h)
        return Trace("ipv4", "mx.example", HOST, 587, distance_of(ladder.control), tuple(named))

    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(main, clock=clock), path


PATH = [HOME, ISP1, TRANSIT, DESTGW]  # the host at hop 5


@pytest.mark.parametrize(
    ("rule", "at", "where", "how", "hop"),
    [
        ("local-drop", 0, "this-machine", "drop", 0),
        ("local-reject", 0, "this-machine", "prohibited", 0),
        ("drop", 1, "local-network", "drop", 1),
        ("drop", 2, "isp", "drop", 2),
        ("reset", 2, "isp", "reset", 2),
        ("prohibited", 2, "isp", "prohibited", 2),
        ("drop", 3, "transit", "drop", 3),
        ("drop", 4, "destination", "drop", 5),
        ("host-drop", 5, "destination", "drop", 5),
        ("proxy", 1, "local-network", "proxy", 1),
        ("proxy", 2, "isp", "proxy", 2),
    ],
)
def test_the_blocker_is_placed(rule: str, at: int, where: str, how: str, hop: int) -> None:
    trace, path = trace_of(FakePath(list(PATH), rule, at))
    assert trace.distance == 5
    blocker = locate(trace)
    assert blocker is not None, trace
    assert (blocker.where, blocker.how, blocker.hop) == (where, how, hop), blocker
    assert blocker.evidence
    # Polite: never more than two SYNs per TTL and port.
    assert max(path.sent.count(s) for s in set(path.sent)) <= MAX_ATTEMPTS


def test_a_hop_is_named_with_ptr_and_as() -> None:
    trace, _ = trace_of(FakePath(list(PATH), "drop", 2))
    hop = trace.hops[1]
    assert hop.to_dict() == {
        "ttl": 2,
        "address": ISP1,
        "name": "edge1.isp.example",
        "asn": 64500,
        "as_name": "EXAMPLE-ISP, ZZ",
        "port25": "time-exceeded",
        "control": "time-exceeded",
    }
    assert [h.port25 for h in trace.hops] == ["time-exceeded"] * 2 + ["silent"] * 3
    assert trace.hops[-1].address == HOST and trace.hops[-1].control == "answered"
    blocker = locate(trace)
    assert blocker is not None and blocker.asn == 64500 and blocker.name == "edge1.isp.example"
    assert any("dropped after hop 2" in e for e in blocker.evidence)


def test_without_as_data_where_is_unknown_but_the_hop_is_given() -> None:
    trace, _ = trace_of(FakePath(list(PATH), "drop", 2), asn=False)
    blocker = locate(trace)
    assert blocker is not None
    assert (blocker.where, blocker.hop, blocker.address) == ("unknown", 2, ISP1)


def test_nothing_blocked_has_no_blocker() -> None:
    trace, _ = trace_of(FakePath(list(PATH)))
    assert locate(trace) is None
    assert [h.port25 for h in trace.hops][-1] == "answered"


def test_all_ttls_of_a_window_go_out_together() -> None:
    """One window: the first round sends every TTL of both ports before any answer."""
    _, path = trace_of(FakePath(list(PATH)), max_hops=8)
    first_round = path.sent[:16]
    assert sorted(first_round) == sorted((p, t) for p in (25, 587) for t in range(1, 9))


def test_proxy_distance_is_in_the_evidence() -> None:
    trace, _ = trace_of(FakePath(list(PATH), "proxy", 1))
    blocker = locate(trace)
    assert blocker is not None
    assert "greeting comes from hop 1, the server is 5 hops away" in blocker.evidence[0]


# -- Team Cymru answers, bounded against junk ---------------------------------------------


def test_origin_names() -> None:
    assert origin_name("198.18.1.1") == "1.1.18.198.origin.asn.cymru.com"
    v6 = origin_name("2001:db8::1")
    assert v6 is not None and v6.endswith(".8.b.d.0.1.0.0.2.origin6.asn.cymru.com")
    assert origin_name(HOME) is None and origin_name("junk") is None
    assert is_private(HOME) and is_private("fd00::1") and not is_private("198.18.1.1")


def test_cymru_parsers_take_junk_as_none() -> None:
    assert parse_origin(["3561 | 216.88.0.0/14 | US | arin | 1998-09-25"]) == 3561
    assert parse_origin(["3561 1234 | 1.2.3.0/24 | US | arin | x"]) == 3561  # multi-origin
    assert parse_origin(["junk"]) is None
    assert parse_origin(["99999999999 | x | y"]) is None
    assert parse_origin(["0 | x | y"]) is None
    assert parse_origin(["junk"] * 1000 + ["64500 | x | y"]) is None  # bounded: 4 read
    assert parse_as_name(["64500 | ZZ | lab | d | NAME\x1b[31m"], 64500) == "NAME\\x1b[31m"
    assert parse_as_name(["64501 | ZZ | lab | d | OTHER"], 64500) is None
    long = parse_as_name(["64500 | ZZ | lab | d | " + "A" * 5000], 64500)
    assert long is not None and len(long) <= 64
    assert clean_ptr(["edge.example.", "x"]) == "edge.example"
    assert clean_ptr(["bad name\x00."]) is None and clean_ptr(["a" * 300]) is None


def test_lookups_are_asked_once_per_address() -> None:
    dns = FakeDNS(ZONE)
    names = HopNames(dns)

    async def main() -> None:
        for _ in range(3):
            await names.as_of(ISP1)
            await names.ptr(ISP1)

    trio.run(main)
    assert len(dns.asked) == 3  # origin, AS name, PTR


class BrokenDNS:
    async def query(self, name: str, rdtype: str, server: object = None) -> DnsAnswer:
        return DnsAnswer("ok", ("garbage",) * 1000)


def test_a_junk_resolver_gives_nulls() -> None:
    names = HopNames(BrokenDNS())

    async def main() -> tuple[object, object]:
        return await names.as_of(ISP1), await names.ptr(ISP1)

    info, ptr = trio.run(main)
    assert info.asn is None and info.as_name is None  # type: ignore[attr-defined]
    assert ptr == "garbage"  # a syntactically valid one-label name is kept


# -- the advice follows where --------------------------------------------------------------


def _advice(where: str) -> Advice:
    from portprobe.path.model import Blocker

    found = path_advice(
        Blocker(where, "drop", 2, ISP1, None, 64500, None, (), "ipv4", "mx.example")
    )  # type: ignore[arg-type]
    assert found is not None
    return found


def test_advice_for_this_machine_never_asks_the_isp() -> None:
    a = _advice("this-machine")
    assert "nft list ruleset" in a.text and "iptables -S OUTPUT" in a.text
    assert "lift-port25-block" in a.replaces and "platform-unblock-step" in a.replaces


def test_advice_for_the_isp_quotes_the_hop_and_keeps_the_isp_advice() -> None:
    a = _advice("isp")
    assert "hop 2 (198.18.1.1, AS64500)" in a.text and a.replaces == ()


def test_advice_for_the_destination() -> None:
    a = _advice("destination")
    assert "refuses you, not your network" in a.text and "lift-port25-block" in a.replaces


def test_the_ladder_keeps_the_per_address_limit() -> None:
    """Through the process-wide manners, at most ``per_host`` TTL probes are in flight to
    one address, lowest TTLs first; nothing above the host's distance is sent."""
    from contextlib import asynccontextmanager

    from portprobe.probe.runner import Manners

    manners = Manners(per_host=2, sockets=8)
    path = FakePath(list(PATH), "drop", 2)
    in_flight = peak = 0

    async def counting(spec: ProbeSpec, options: Any) -> Any:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await path(spec, options)
        finally:
            in_flight -= 1

    @asynccontextmanager
    async def slot() -> Any:
        async with manners.address_slot(HOST), manners.socket_slot():
            yield

    ladder = Ladder(spec(25), spec(587), max_hops=8, wait=0.5, connector=counting, slot=slot)
    trio.run(ladder.run, clock=trio.testing.MockClock(autojump_threshold=0))
    assert peak == 2
    assert max(t for _, t in path.sent) <= 5  # the host is 5 hops away
    trace = Trace(
        "ipv4",
        "mx",
        HOST,
        587,
        distance_of(ladder.control),
        hops_of(ladder.port25, ladder.control, HOST),
    )
    blocker = locate(trace)
    assert blocker is not None and (blocker.how, blocker.hop) == ("drop", 2)


def test_a_block_before_every_host_is_not_the_destination_s() -> None:
    """Port 25 failing at every provider, dropped right before the host: the last hop
    before it, shared by all, not "the receiver refuses you"."""
    trace, _ = trace_of(FakePath(list(PATH), "drop", 4))
    alone = locate(trace)
    shared = locate(trace, everywhere=True)
    assert alone is not None and (alone.where, alone.hop) == ("destination", 5)
    assert shared is not None and (shared.where, shared.how, shared.hop) == (
        "destination",
        "drop",
        4,
    )
    assert any("every provider" in e for e in shared.evidence)
    trace, _ = trace_of(FakePath(list(PATH), "drop", 4), asn=False)
    shared = locate(trace, everywhere=True)
    assert shared is not None and (shared.where, shared.hop) == ("unknown", 4)


def test_receivers_that_drop_at_their_own_door_make_partial_open() -> None:
    from portprobe.companions.path_verdict import theirs
    from portprobe.path.model import Blocker
    from tests.builders import dropped, healthy, open_
    from tests.builders import typed_report_for as report_for

    results = [open_("alpha"), open_("bravo"), dropped("charlie"), dropped("delta")]
    results += [r for p in ("alpha", "bravo", "charlie", "delta") for r in healthy(p)]
    report = report_for(results)
    assert report.verdict.port25 == "partial"
    failing = [r.spec for r in results if r.state == "filtered"]

    def at(where: str) -> dict[tuple[str, str], Blocker]:
        return {
            ("ipv4", s.address or ""): Blocker(where, "drop", 5, s.address, family="ipv4")  # type: ignore[arg-type]
            for s in failing
        }

    mine = theirs(report, at("destination"))
    assert mine.verdict.port25 == "open" and mine.verdict.families["ipv4"] == "open"
    assert "mx.charlie.example, mx.delta.example" in mine.verdict.reasons[-1]
    assert mine.verdict.failure_mode is None
    assert any(a.code == "deliver-directly" for a in mine.verdict.advice)
    assert theirs(report, at("isp")).verdict.port25 == "partial"
    one_missing = dict(list(at("destination").items())[:1])
    assert theirs(report, one_missing).verdict.port25 == "partial"


def _companion(platform: str, path: FakePath, mode: str = "auto") -> Any:
    from portprobe.companions.path import TraceCompanion

    return TraceCompanion(
        mode=mode,
        max_hops=8,
        connect_timeout=1.0,
        dns=FakeDNS(ZONE),
        asn=True,
        connector=path,
        manners=None,
        platform=platform,
    )


def _blocked_results() -> list[Any]:
    from tests.builders import dropped, healthy

    out = []
    for p, n in (("alpha", 10), ("bravo", 20), ("charlie", 30)):
        address = f"203.0.113.{n}"
        out.append(dropped(p, address=address))
        out += [replace(r, spec=replace(r.spec, address=address)) for r in healthy(p, ports=(587,))]
    return out


def _contributed(companion: Any, results: list[Any]) -> Any:
    from tests.builders import typed_report_for

    for r in results:
        companion.observe(r)

    async def main() -> None:
        done = trio.Event()
        done.set()
        await companion.run(done)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return companion.contribute(typed_report_for(results))


def test_the_companion_traces_a_blocked_run_and_advice_follows() -> None:
    path = FakePath(list(PATH), "drop", 2)
    report = _contributed(_companion("linux", path), _blocked_results())
    assert report.verdict.port25 == "blocked"
    assert len(report.path.traces) == 2  # at most two hosts per family
    assert report.path.blocker.where == "isp" and report.path.blocker.hop == 2
    assert report.verdict.advice[0].code == "path-isp-evidence"


def test_the_companion_says_why_nothing_was_traced_off_linux() -> None:
    path = FakePath(list(PATH), "drop", 2)
    report = _contributed(_companion("darwin", path), _blocked_results())
    assert report.path.traces == () and report.path.blocker is None
    assert "needs Linux" in report.path.notes[0]
    assert path.sent == []


def test_the_companion_does_not_trace_an_open_run() -> None:
    from tests.builders import healthy, open_

    path = FakePath(list(PATH))
    results = [r for p in ("alpha", "bravo") for r in (open_(p), *healthy(p))]
    report = _contributed(_companion("linux", path), results)
    assert report.path.traces == () and path.sent == []
    always = FakePath(list(PATH))
    report = _contributed(_companion("linux", always, "always"), results)
    assert len(report.path.traces) == 2 and report.path.blocker is None


class OldKernelPath(FakePath):
    """Linux before 5.8: the time-exceeded ends the connect, with no ICMP details."""

    def _exceeded(self, ttl: int) -> Any:
        import errno

        from portprobe.probe.connect import ConnectFailure, KernelReport

        return ConnectFailure(KernelReport(errno.EHOSTUNREACH))


def test_an_old_kernel_gives_hops_without_addresses_and_a_note() -> None:
    from portprobe.companions.path import OLD_KERNEL_NOTE

    path = OldKernelPath(list(PATH), "drop", 2)
    report = _contributed(_companion("linux", path), _blocked_results())
    assert OLD_KERNEL_NOTE in report.path.notes
    hops = report.path.traces[0].hops
    assert [h.address for h in hops[:-1]] == [None] * (len(hops) - 1)


def test_no_route_at_all_is_not_an_old_kernel() -> None:
    from portprobe.companions.path import OLD_KERNEL_NOTE

    class NoRoute(FakePath):
        async def __call__(self, spec: ProbeSpec, options: Any) -> Any:
            import errno

            from portprobe.probe.connect import ConnectFailure, KernelReport

            raise ConnectFailure(KernelReport(errno.ENETUNREACH))

    report = _contributed(_companion("linux", NoRoute(list(PATH)), "always"), _blocked_results())
    assert OLD_KERNEL_NOTE not in report.path.notes


def test_an_old_kernel_still_places_the_drop_by_its_hop() -> None:
    trace, _ = trace_of(OldKernelPath(list(PATH), "drop", 2))
    blocker = locate(trace)
    assert blocker is not None and (blocker.how, blocker.hop, blocker.address) == ("drop", 2, None)
    assert blocker.where == "unknown"
