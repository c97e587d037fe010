"""The path trace as a companion of the probes (spec "Path": ``path`` in the report).

It hears every probe result; when the probes are done it decides, from those results and
the same pure verdict rules the report uses, whether port 25 is stopped (``--trace auto``:
blocked, partial or intercepted in a family), picks at most two hosts per family with a
control port that answered, runs their TTL ladders together, names the hops (PTR, Team
Cymru AS through the run's DNS client) and, in :meth:`contribute`, places the blocker and
makes the advice follow it.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from portprobe.advice import Advice, without_replaced
from portprobe.model import ProbeResult, ProbeSpec
from portprobe.path.model import Blocker, PathReport, Trace, distance_of, hops_of
from portprobe.vocab import FAMILIES, AdviceCode, Family

if TYPE_CHECKING:
    import trio

    from portprobe.model import DnsLookup
    from portprobe.outcome import Report
    from portprobe.path.asn import HopNames
    from portprobe.path.model import HopProbe
    from portprobe.probe.connect import Connector
    from portprobe.probe.runner import Manners

#: Hosts traced per family at most (polite; spec "Path").
HOSTS_PER_FAMILY: Final = 2
#: Control ports in order of preference; 443 when none of them answered on the host.
CONTROL_PORTS: Final = (587, 465, 2525)
FALLBACK_CONTROL: Final = 443
TRACED_WORDS: Final = frozenset({"blocked", "partial", "intercepted"})
_FAILED: Final = frozenset(
    {"filtered", "refused", "unreachable", "no-banner", "not-smtp", "tls-error"}
)
NOT_LINUX_NOTE: Final = (
    "The path was not traced: reading a router's ICMP answer without root needs Linux "
    "(IP_RECVERR, kernel 5.8 or later); on this system the rest of the diagnosis is unchanged."
)
OLD_KERNEL_NOTE: Final = (
    "Routers answered the trace, but the kernel gave no ICMP details (Linux before 5.8): "
    "hops without addresses."
)
#: The advice that asks the ISP (or the platform) to lift a block: wrong when this
#: machine, its local network or the destination stops port 25.
ASKS_THE_ISP: Final[tuple[AdviceCode, ...]] = (
    "lift-port25-block",
    "lift-family-block",
    "platform-unblock-step",
)


@dataclass(frozen=True)
class Planned:
    family: Family
    port25: ProbeSpec
    control: ProbeSpec
    wait: float
    spare: float


@dataclass(frozen=True)
class Ran:
    planned: Planned
    port25: tuple[HopProbe, ...]
    control: tuple[HopProbe, ...]


def choose(
    results: Sequence[ProbeResult],
    families: dict[Family, str],
    *,
    mode: str,
    connect_timeout: float,
) -> list[Planned]:
    """What to trace: per family whose port 25 is stopped (or every family, ``always``),
    up to two port-25 hosts of different providers, failing ones first, each with the
    control port that answered on the same address."""
    out: list[Planned] = []
    for family in FAMILIES:
        if family not in families:
            continue
        if mode == "auto" and families[family] not in TRACED_WORDS:
            continue
        mine = [r for r in results if r.spec.family == family and r.spec.address]
        rtts = [r.timings.connect for r in mine if r.timings.connect is not None]
        spare, wait = silence(max(rtts) / 1000 if rtts else None, connect_timeout)
        candidates = [r for r in mine if r.spec.port == 25 and not r.spec.negative]
        candidates.sort(key=lambda r: (r.state not in _FAILED, r.spec.provider_key))
        seen: set[str] = set()
        for r in candidates:
            if r.spec.address in seen or r.spec.provider_key in {
                p.port25.provider_key for p in out if p.family == family
            }:
                continue
            control = _control(r.spec, mine)
            seen.add(r.spec.address or "")
            port25 = replace(r.spec, negative=False, expect=None)
            out.append(Planned(family, port25, control, wait, spare))
            if sum(1 for p in out if p.family == family) >= HOSTS_PER_FAMILY:
                break
    return out


#: A router's time-exceeded needs no server to wake up: a TTL is silent after a few of
#: the path's slowest round trips (probe/pathwait.py's factors), never under this.
TRACE_FLOOR: Final = 0.10
#: Without any measured round trip in the family: the second SYN, and silence, after these.
UNMEASURED: Final = (0.5, 1.0)


def _addressless_routers(ladder: Sequence[HopProbe]) -> bool:
    """Errors without ICMP details below a TTL that reached the host: routers answered,
    and the kernel did not say who (Linux before 5.8); not a family with no route."""
    reached = [p.ttl for p in ladder if p.outcome in ("answered", "reset")]
    return bool(reached) and any(
        p.outcome == "unreachable" and p.sender is None and p.ttl < min(reached) for p in ladder
    )


def silence(slowest_rtt: float | None, connect_timeout: float) -> tuple[float, float]:
    """(seconds before a TTL's second SYN, seconds after which it is silent)."""
    from portprobe.probe.pathwait import DECIDE_FACTOR, SPARE_FACTOR, SPARE_FLOOR

    if slowest_rtt is None:
        spare, wait = UNMEASURED
    else:
        spare = max(SPARE_FLOOR, SPARE_FACTOR * slowest_rtt)
        wait = max(TRACE_FLOOR, spare + DECIDE_FACTOR * slowest_rtt)
    wait = min(connect_timeout, wait)
    return min(spare, wait), wait


def _control(spec: ProbeSpec, results: Sequence[ProbeResult]) -> ProbeSpec:
    answered = {
        r.spec.port: r.spec
        for r in results
        if r.spec.address == spec.address and r.spec.port != 25 and r.connected
    }
    for port in CONTROL_PORTS:
        if port in answered:
            return replace(answered[port], negative=False, expect=None)
    return replace(spec, port=FALLBACK_CONTROL, connect_port=None, negative=False, expect=None)


WHERE_ADVICE: Final[dict[str, tuple[AdviceCode, str]]] = {
    "this-machine": (
        "path-local-rule",
        "Port 25 is stopped on this machine itself, not by the ISP: look at the local "
        "firewall rules (`nft list ruleset`, `iptables -S OUTPUT`, `ip6tables -S OUTPUT`, "
        "`ufw status`) and any Docker or Kubernetes egress policy for a rule on port 25.",
    ),
    "local-network": (
        "path-local-network",
        "Port 25 is stopped on the local network{at}, before your ISP: ask the admin of "
        "that router or firewall to allow outgoing port 25 from this machine.",
    ),
    "isp": (
        "path-isp-evidence",
        "Quote this evidence to your ISP: port 25 is stopped at hop {hop}{at}, in their "
        "network, while other ports pass.",
    ),
    "transit": (
        "path-transit-report",
        "Port 25 is stopped at hop {hop}{at}, in a transit network between your ISP and "
        "the receiver: report it to your ISP with the path as evidence.",
    ),
    "destination": (
        "path-destination-refuses",
        "The receiver{host} refuses you, not your network: port 25 dies at its own "
        "address; try another receiver or ask its postmaster.",
    ),
}


def path_advice(blocker: Blocker) -> Advice | None:
    """The next step that follows ``where``; it replaces "ask the ISP" when the ISP is
    innocent (this machine, the local network, the destination)."""
    found = WHERE_ADVICE.get(blocker.where)
    if found is None:
        return None
    code, text = found
    at = f" ({blocker.address}" + (f", AS{blocker.asn}" if blocker.asn else "") + ")"
    text = text.format(
        hop=blocker.hop,
        at=at if blocker.address else "",
        host=f" ({blocker.host})" if blocker.host else "",
    )
    innocent = blocker.where in ("this-machine", "local-network", "destination")
    return Advice(code, text, family=blocker.family, replaces=ASKS_THE_ISP if innocent else ())


class TraceCompanion:
    """Traces port 25 when it is stopped, and says who stops it."""

    def __init__(
        self,
        *,
        mode: str,
        max_hops: int,
        connect_timeout: float,
        dns: DnsLookup,
        asn: bool,
        connector: Connector | None,
        manners: Manners | None,
        public_ips: Sequence[str] = (),
        platform: str = sys.platform,
    ) -> None:
        self.mode = mode
        self.max_hops = max_hops
        self.connect_timeout = connect_timeout
        self.dns = dns
        self.asn = asn
        self.connector = connector
        self.manners = manners
        self.public_ips = tuple(public_ips)
        self.platform = platform
        self._results: list[ProbeResult] = []
        self._ran: list[Ran] = []
        self._names: HopNames | None = None
        self._notes: list[str] = []
        self._own_asn: dict[str, int | None] = {}
        self._traced = False

    def observe(self, result: ProbeResult) -> None:
        self._results.append(result)

    def _families(self) -> dict[Family, str]:
        from portprobe.report.annotate import annotate
        from portprobe.report.verdict import decide

        verdict = decide(annotate(self._results), ())
        return dict(verdict.families)

    async def run(self, probes_done: trio.Event) -> None:
        import trio

        await probes_done.wait()
        if self.mode == "never":
            return
        planned = choose(
            self._results,
            self._families(),
            mode=self.mode,
            connect_timeout=self.connect_timeout,
        )
        if not planned:
            return
        if not self.platform.startswith("linux"):
            self._notes.append(NOT_LINUX_NOTE)
            return
        from portprobe.path.asn import HopNames
        from portprobe.probe.trace import Ladder

        self._traced = True
        names = self._names = HopNames(self.dns, asn=self.asn)
        manners = self.manners
        asked: set[str] = set()

        async def name(address: str) -> None:
            # PTR and AS lookups in parallel, and while the ladders still wait on silence.
            async with trio.open_nursery() as both:
                both.start_soon(names.ptr, address)
                both.start_soon(names.as_of, address)

        async def one(p: Planned) -> None:
            slot = None
            if manners is not None:
                address = p.port25.address or ""

                @asynccontextmanager
                async def both() -> AsyncIterator[None]:
                    # Each TTL probe is one connection to this address for the per-address
                    # limit and one socket of the process-wide budget, like any probe.
                    async with manners.address_slot(address), manners.socket_slot():
                        yield

                slot = both
            ladder = Ladder(
                p.port25,
                p.control,
                max_hops=self.max_hops,
                wait=p.wait,
                spare=p.spare,
                connector=self.connector,
                slot=slot,
                heard=heard,
            )
            await ladder.run()
            self._ran.append(Ran(p, ladder.port25, ladder.control))

        async with trio.open_nursery() as naming:

            def heard(address: str) -> None:
                if address not in asked:
                    asked.add(address)
                    naming.start_soon(name, address)

            for address in (*self.public_ips, *(p.port25.address or "" for p in planned)):
                heard(address)
            async with trio.open_nursery() as nursery:
                for p in planned:
                    nursery.start_soon(one, p)
        await self._name_hops()

    async def _name_hops(self) -> None:
        import trio

        names = self._names
        assert names is not None
        addresses = {
            h.sender
            for r in self._ran
            for ladder in (r.port25, r.control)
            for h in ladder
            if h.sender is not None and not h.local
        } | {r.planned.port25.address for r in self._ran if r.planned.port25.address}
        mine = {ip for ip in self.public_ips}

        async def one(address: str) -> None:
            await names.ptr(address)
            await names.as_of(address)

        async with trio.open_nursery() as nursery:
            for address in sorted(addresses | mine):
                nursery.start_soon(one, address)
        for ip in mine:
            family = "ipv6" if ":" in ip else "ipv4"
            self._own_asn.setdefault(family, (await names.as_of(ip)).asn)

    def _traces(self) -> list[Trace]:
        out = []
        names = self._names
        for r in sorted(
            self._ran, key=lambda r: (FAMILIES.index(r.planned.family), r.planned.port25.host)
        ):
            address = r.planned.port25.address or ""
            hops = hops_of(r.port25, r.control, address)
            if names is not None:
                hops = tuple(
                    replace(
                        h,
                        name=names.known_ptr(h.address),
                        asn=names.known_as(h.address).asn,
                        as_name=names.known_as(h.address).as_name,
                    )
                    if h.address is not None and not h.local
                    else h
                    for h in hops
                )
            out.append(
                Trace(
                    family=r.planned.family,
                    host=r.planned.port25.host,
                    address=address,
                    control_port=r.planned.control.port,
                    distance=distance_of(r.control),
                    hops=hops,
                )
            )
        return out

    def contribute(self, report: Report) -> Report:
        from portprobe.companions.path_verdict import theirs
        from portprobe.path.locate import locate

        traces = self._traces()
        blockers: dict[Family, Blocker] = {}
        by_host: dict[tuple[str, str], Blocker] = {}
        for t in traces:
            everywhere = report.verdict.families.get(t.family) == "blocked"
            found = locate(t, own_asn=self._own_asn.get(t.family), everywhere=everywhere)
            if found is not None:
                by_host[(t.family, t.address)] = found
                blockers.setdefault(t.family, found)
        # Failing hosts that each stop port 25 at their own door: their doing, not the path's.
        report = theirs(report, by_host)
        blocker = next((blockers[f] for f in FAMILIES if f in blockers), None)
        notes = list(self._notes)
        if self._traced and not self.asn:
            notes.append("AS numbers were not looked up (--no-asn).")
        if any(_addressless_routers(ladder) for r in self._ran for ladder in (r.port25, r.control)):
            notes.append(OLD_KERNEL_NOTE)
        path = PathReport(tuple(traces), blocker, tuple(notes), blockers)
        report = replace(report, path=path)
        extra = [a for b in blockers.values() if (a := path_advice(b)) is not None]
        if not extra:
            return report
        verdict = report.verdict
        advice = (*extra, *without_replaced(verdict.advice, extra))
        report = replace(report, verdict=replace(verdict, advice=advice))
        if report.environment is not None:
            env = report.environment
            report = replace(
                report, environment=replace(env, advice=without_replaced(env.advice, extra))
            )
        return report
