"""A fake for the one DNS seam (``DnsLookup``): a dict of records, no sockets, no dnspython.

Zone entries are ``{name: {rdtype: records}}``; records are a list of addresses (A/AAAA),
a list of ``(preference, exchange)`` (MX; ``""`` is the root, a null MX), or an outcome
string ("servfail", "timeout", "error") for a lookup that breaks. A name absent from the
zone is NXDOMAIN; a type absent from a present name is NODATA.

``hold(name, rdtype)`` returns an event the lookup waits for: tests decide the order in
which answers arrive without any timing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

import trio

from portprobe.model import DnsAnswer

Records = Sequence[str] | Sequence[tuple[int, str]] | str
Zone = Mapping[str, Mapping[str, Records]]

NAMESERVER = "fake"


#: Every case the planner must handle, named like the loopback zone of tests/dns_server.py.
ZONE: Zone = {
    # Handed over out of preference order on purpose: the planner sorts by preference.
    "good.test": {"MX": [(20, "mx2.good.test"), (10, "mx1.good.test"), (20, "mx0.good.test")]},
    "mx1.good.test": {"A": ["192.0.2.10"], "AAAA": ["2001:db8::10"]},
    "mx2.good.test": {"A": ["192.0.2.20"]},
    "mx0.good.test": {"AAAA": ["2001:db8::30"]},
    "nullmx.test": {"MX": [(0, "")]},
    "nomx.test": {"A": ["198.51.100.5"], "AAAA": ["2001:db8::5"]},
    "empty.test": {"TXT": ["nothing here"]},
    "many.test": {"A": [f"192.0.2.{n}" for n in (6, 2, 4, 1, 5, 3)]},
    "manymx.test": {"MX": [(10 * n, f"m{n}.manymx.test") for n in (1, 2, 3, 4)]},
    **{f"m{n}.manymx.test": {"A": [f"198.51.100.{n}"]} for n in (1, 2, 3, 4)},
    "mxbroken.test": {"MX": [(10, "missing.test"), (20, "broken.test"), (30, "mx1.good.test")]},
    "broken.test": {"A": "servfail", "AAAA": "servfail"},
    "halfbroken.test": {"A": ["192.0.2.7"], "AAAA": "timeout"},
    "servfail.test": {"MX": "servfail"},
    "badmx.test": {"MX": [(10, "bad_name.test"), (20, "mx2.good.test")]},
}


def answer(rdtype: str, records: Records | None) -> DnsAnswer:
    """The answer a real DNS client would give for these records (None: NXDOMAIN)."""
    if records is None:
        return DnsAnswer("nxdomain", (), "NXDOMAIN", nameserver=NAMESERVER, elapsed_ms=0.0)
    if isinstance(records, str):
        outcome = records
        assert outcome in ("servfail", "timeout", "error"), outcome
        return DnsAnswer(outcome, (), outcome, nameserver=NAMESERVER, elapsed_ms=0.0)  # type: ignore[arg-type]
    if not records:
        return DnsAnswer("nodata", (), "NODATA", nameserver=NAMESERVER, elapsed_ms=0.0)
    if rdtype == "MX":
        text = tuple(f"{p} {x}." if x else f"{p} ." for p, x in records)  # type: ignore[misc]
        return DnsAnswer("ok", text, nameserver=NAMESERVER, elapsed_ms=0.0)
    addresses = tuple(str(a) for a in records)
    return DnsAnswer("ok", addresses, nameserver=NAMESERVER, elapsed_ms=0.0)


class FakeDNS:
    """A :class:`~portprobe.model.DnsLookup` over a dict zone, recording what was asked.

    ``delay(name, rdtype)``, when given, is awaited before each answer (tests that decide
    how late each answer comes, on trio's mock clock).
    """

    def __init__(
        self,
        zone: Zone,
        delay: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.zone = zone
        self.delay = delay
        self.asked: list[tuple[str, str]] = []
        self.answered: list[tuple[str, str]] = []
        self._holds: dict[tuple[str, str], trio.Event] = {}

    def hold(self, name: str, rdtype: str) -> trio.Event:
        """The lookup of (name, rdtype) answers only once the returned event is set."""
        return self._holds.setdefault((name, rdtype), trio.Event())

    async def query(
        self, name: str, rdtype: str, server: tuple[str, int] | None = None
    ) -> DnsAnswer:
        if self.delay is not None:
            await self.delay(name, rdtype)
        self.asked.append((name, rdtype))
        held = self._holds.get((name, rdtype))
        if held is not None:
            await held.wait()
        self.answered.append((name, rdtype))
        records = self.zone.get(name)
        if records is None:
            return answer(rdtype, None)
        return answer(rdtype, records.get(rdtype, ()))
