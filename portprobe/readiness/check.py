"""Mail readiness I/O: whoami, PTR and forward confirmation, DNSBLs, concurrently (trio).

Every lookup goes through the one DNS seam (:class:`~portprobe.model.DnsLookup`, by
default a :class:`~portprobe.probe.dnsclient.DnsClient`), is bounded by the DNS
timeout, and never raises: a failure is an answer (``timeout``, ``servfail``) that ends
as ``temperror`` or ``unknown``. Answers are bounded before anything reads them (values
per answer, characters per value) and made visible before they go into a message, so a
whoami server answering garbage, a TXT set of 1,000 strings or a PTR set of 50 names
costs a few lines of ``unknown``, never a raw dump or a long run.

The whoami servers' own addresses come from the configured resolver: only their host
names are in the catalog. Nothing is sent when readiness is disabled, and stated
addresses (``--public-ip``) skip the whoami queries.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Final

import dns.exception
import dns.reversename
import trio

from portprobe.model import DnsAnswer, DnsLookup, ProbeResult
from portprobe.readiness.assess import (
    MAX_PTR_NAMES,
    assess,
    check_ehlo_name,
    checkable,
    decide_iprev,
)
from portprobe.readiness.dnsbl import decode, query_name
from portprobe.readiness.model import (
    AddressSighting,
    DnsblCheck,
    GenericNameCheck,
    PtrCheck,
    Readiness,
)
from portprobe.readiness.names import echoed_address, generic_name
from portprobe.readiness.settings import DnsblZone, ReadinessSettings, WhoamiMethod
from portprobe.text import one_line, shorten, visible
from portprobe.vocab import DNS_FAILED as FAILED
from portprobe.vocab import Family, VerdictWord

#: Values kept from one answer: a whoami or DNSBL answers one, a PTR set one or two.
MAX_VALUES: Final = 16
#: Characters kept from one value (a TXT record may hold 64 KiB of 255-byte strings).
MAX_VALUE_CHARS: Final = 255
#: Addresses checked per run (stated + whoami + echoed, all families): more is a loop.
MAX_ADDRESSES: Final = 6
#: Echo sightings kept (one per family and address is all the report needs).
MAX_ECHOES: Final = 8
_ADDRESS_TYPE: Final[dict[Family, str]] = {"ipv4": "A", "ipv6": "AAAA"}


def _one_line(text: str) -> str:
    return shorten(visible(one_line(text)), 160)


def _bounded(answer: DnsAnswer) -> DnsAnswer:
    """``answer`` cut to what a readiness check reads: a few values, each of a few
    hundred characters, and a visible one-line message (a whoami server's TXT set of
    1,000 strings or a PTR set of 50 names costs no more than this)."""
    values = tuple(value[:MAX_VALUE_CHARS] for value in answer.values[:MAX_VALUES])
    return dataclasses.replace(
        answer,
        values=values,
        truncated=answer.truncated or len(answer.values) > MAX_VALUES,
        message=_one_line(answer.message) if answer.message else None,
    )


class ReadinessCheck:
    """One run's readiness: start ``run`` next to the probes, ``observe`` each probe,
    read ``result`` at the end (whatever is known; ``unknown`` where not finished)."""

    def __init__(self, settings: ReadinessSettings, *, lookup: DnsLookup | None = None) -> None:
        self.settings = settings
        self._lookup = lookup
        self._sightings: list[AddressSighting] = []
        self._echoes: list[AddressSighting] = []
        self._addresses: list[str] = []  # checked (or being checked), in order learned
        self._ptr: dict[str, PtrCheck] = {}
        self._generic: dict[str, GenericNameCheck] = {}
        self._dnsbl: dict[tuple[str, str], DnsblCheck] = {}
        self._tests: dict[str, tuple[DnsAnswer | None, DnsAnswer | None]] = {}
        self._tests_done: dict[str, trio.Event] = {}
        self._ehlo_answers: list[DnsAnswer] | None = None
        self._nursery: trio.Nursery | None = None

    # -- the lead's side ---------------------------------------------------------------

    def observe(self, result: ProbeResult) -> None:
        """Keep the address a probed server echoed (sync, cheap, never raises)."""
        found = echoed_address(result)
        if found is None or len(self._echoes) >= MAX_ECHOES:
            return
        family, address = found
        if any(e.address == address and e.family == family for e in self._echoes):
            return
        self._echoes.append(AddressSighting("ehlo-echo", family, address, result.spec.host))

    async def run(self, probes_done: trio.Event) -> None:
        """All lookups, concurrently; echoes are folded in once ``probes_done`` is set
        (or ``echo_wait`` has passed). Never raises for the network."""
        settings = self.settings
        if not settings.enabled:
            return
        if self._lookup is None:
            from portprobe.probe.dnsclient import DnsClient

            self._lookup = DnsClient(
                settings.nameservers, settings.dns_timeout, settings.resolv_conf
            )
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for zone in settings.dnsbl:
                self._tests_done[zone.zone] = trio.Event()
                nursery.start_soon(self._zone_tests, zone)
            if settings.ehlo_name and not settings.ehlo_name.startswith("["):
                nursery.start_soon(self._ehlo_lookups, settings.ehlo_name)
            if settings.public_ips:
                for ip in settings.public_ips:
                    version = ipaddress.ip_address(ip).version
                    family: Family = "ipv4" if version == 4 else "ipv6"
                    self._sightings.append(AddressSighting("stated", family, ip, "--public-ip"))
                    self._start(ip, stated=True)  # the user knows best
            else:
                for method in settings.whoami:
                    for family in settings.families:
                        nursery.start_soon(self._whoami, method, family)
            nursery.start_soon(self._fold_echoes, probes_done)
        self._nursery = None

    def result(self, port25: VerdictWord | None = None) -> Readiness:
        """Whatever is known now, assessed; checks not finished are ``unknown``."""
        public: dict[Family, tuple[str, ...]] = {}
        for address in self._addresses:
            family: Family = "ipv4" if ipaddress.ip_address(address).version == 4 else "ipv6"
            public[family] = (*public.get(family, ()), address)
        ptr = [self._ptr[a] for a in self._addresses if a in self._ptr]
        generic = [self._generic[a] for a in self._addresses if a in self._generic]
        dnsbl = []
        for address in self._addresses:
            for zone in self.settings.dnsbl:
                dnsbl.append(
                    self._dnsbl.get(
                        (zone.zone, address),
                        DnsblCheck(zone.zone, address, "unknown", reason="not finished"),
                    )
                )
        ehlo = None
        if self.settings.ehlo_name:
            ptr_names = [p.confirmed_name or n for p in ptr for n in p.names[:1]]
            ehlo = check_ehlo_name(
                self.settings.ehlo_name, self._ehlo_answers or [], self._addresses, ptr_names
            )
        return assess(
            public,
            [*self._sightings, *self._echoes],
            ptr,
            generic,
            ehlo,
            dnsbl,
            port25=port25,
        )

    # -- the lookups -------------------------------------------------------------------

    def _start(self, address: str, *, stated: bool = False) -> None:
        if address in self._addresses or len(self._addresses) >= MAX_ADDRESSES:
            return
        if not (stated or checkable(address)) or self._nursery is None:
            return
        self._addresses.append(address)
        self._nursery.start_soon(self._check_ptr, address)
        for zone in self.settings.dnsbl:
            self._nursery.start_soon(self._check_dnsbl, zone, address)

    async def _query(
        self, name: str, rdtype: str, server: tuple[str, int] | None = None
    ) -> DnsAnswer:
        assert self._lookup is not None
        try:
            return _bounded(await self._lookup.query(name, rdtype, server))
        except (OSError, ValueError, dns.exception.DNSException) as exc:  # a seam that leaks
            return DnsAnswer("error", message=_one_line(f"{type(exc).__name__}: {exc}"))

    async def _whoami(self, method: WhoamiMethod, family: Family) -> None:
        def sighting(address: str | None, error: str | None = None) -> None:
            self._sightings.append(
                AddressSighting(method.style, family, address, method.server, error)
            )

        servers = await self._query(method.server, _ADDRESS_TYPE[family])
        if servers.outcome != "ok":
            why = servers.message or servers.outcome
            sighting(None, f"cannot resolve {method.server}: {_one_line(why)}")
            return
        rdtype = _ADDRESS_TYPE[family] if method.style == "opendns" else "TXT"
        # A second address of the server gets a try when the first does not answer.
        for server in servers.values[:2]:
            answer = await self._query(method.query, rdtype, (server, method.port))
            if answer.outcome not in FAILED:
                break
        if answer.outcome != "ok":
            sighting(None, f"{method.query}: {_one_line(answer.message or answer.outcome)}")
            return
        for value in answer.values[:4]:
            candidate = value.split()[0] if value.split() else value
            try:
                ip = ipaddress.ip_address(candidate)
            except ValueError:
                continue
            if (ip.version == 4) == (family == "ipv4"):
                sighting(str(ip))
                self._start(str(ip))
                return
        shown = shorten(visible(answer.values[0]), 40)
        sighting(None, f"{method.query}: the answer {shown!r} is not an {family} address")

    async def _fold_echoes(self, probes_done: trio.Event) -> None:
        with trio.move_on_after(self.settings.echo_wait):
            await probes_done.wait()
        for echo in self._echoes:
            if echo.address:
                self._start(echo.address)

    async def _check_ptr(self, address: str) -> None:
        family: Family = "ipv4" if ipaddress.ip_address(address).version == 4 else "ipv6"
        reverse = dns.reversename.from_address(address).to_text(omit_final_dot=True)
        ptr = await self._query(reverse, "PTR")
        forwards: dict[str, DnsAnswer] = {}
        if ptr.outcome == "ok":
            names = ptr.values[:MAX_PTR_NAMES]

            async def forward(name: str) -> None:
                forwards[name] = await self._query(name, _ADDRESS_TYPE[family])

            async with trio.open_nursery() as nursery:
                for name in dict.fromkeys(names):
                    nursery.start_soon(forward, name)
        check = decide_iprev(address, ptr, forwards)
        self._ptr[address] = check
        judged = check.confirmed_name or (check.names[0] if check.names else None)
        if judged is not None:
            self._generic[address] = generic_name(judged, address)

    async def _zone_tests(self, zone: DnsblZone) -> None:
        results: dict[str, DnsAnswer | None] = {"listed": None, "clean": None}
        try:

            async def one(key: str, test: str) -> None:
                results[key] = await self._query(query_name(test, zone.zone), "A")

            async with trio.open_nursery() as nursery:
                if zone.test_listed:
                    nursery.start_soon(one, "listed", zone.test_listed)
                if zone.test_clean:
                    nursery.start_soon(one, "clean", zone.test_clean)
        finally:
            self._tests[zone.zone] = (results["listed"], results["clean"])
            self._tests_done[zone.zone].set()

    async def _check_dnsbl(self, zone: DnsblZone, address: str) -> None:
        answer = await self._query(query_name(address, zone.zone), "A")
        await self._tests_done[zone.zone].wait()  # bounded: the tests' lookups are
        listed, clean = self._tests.get(zone.zone, (None, None))
        if answer.outcome in FAILED:
            listed = clean = None
        self._dnsbl[(zone.zone, address)] = decode(
            zone, address, answer, test_listed=listed, test_clean=clean
        )

    async def _ehlo_lookups(self, name: str) -> None:
        answers: list[DnsAnswer] = []

        async def one(rdtype: str) -> None:
            answers.append(await self._query(name, rdtype))

        async with trio.open_nursery() as nursery:
            for rdtype in ("A", "AAAA"):
                nursery.start_soon(one, rdtype)
        self._ehlo_answers = answers
