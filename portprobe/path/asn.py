"""AS numbers and names from Team Cymru's DNS zones, and PTR names, for the hops of a trace.

``<d>.<c>.<b>.<a>.origin.asn.cymru.com TXT`` → ``"ASN | prefix | CC | registry | date"``
(IPv6: nibble-reversed under ``origin6.asn.cymru.com``); ``AS<n>.asn.cymru.com TXT`` →
``"ASN | CC | registry | date | AS name"``. Asked through the run's DNS client (its
resolver, its timeout); answers are parsed defensively: anything that is not the expected
shape is ``None``, names are made printable and short, never shown raw.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from portprobe.text import shorten, visible

if TYPE_CHECKING:
    from portprobe.model import DnsLookup

ORIGIN4: Final = "origin.asn.cymru.com"
ORIGIN6: Final = "origin6.asn.cymru.com"
NAMES: Final = "asn.cymru.com"
#: TXT answers read at most (a junk zone may return a thousand).
MAX_VALUES: Final = 4
MAX_NAME: Final = 64
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*$"
)
#: Addresses that are nobody's on the internet: no AS to ask about.
_LOCAL_NETS: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "127.0.0.0/8",
        "100.64.0.0/10",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)
_HOME_NETS: Final = tuple(n for n in _LOCAL_NETS if str(n) != "100.64.0.0/10")


def is_private(address: str) -> bool:
    """A home or office address (RFC 1918, link-local, ULA): behind the first public hop.

    Not Python's ``is_private``, which also counts documentation and benchmarking space
    (RFC 5737, RFC 2544) that labs and examples route as public. Carrier-grade NAT space
    (RFC 6598) is the ISP's, so not private here."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in _HOME_NETS if n.version == ip.version)


def has_no_as(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    return any(ip in n for n in _LOCAL_NETS if n.version == ip.version)


def origin_name(address: str) -> str | None:
    """The Cymru origin query name for ``address``; None for one that has no AS."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if has_no_as(address):
        return None
    if ip.version == 4:
        return ".".join(reversed(str(ip).split("."))) + "." + ORIGIN4
    nibbles = ip.exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + "." + ORIGIN6


def _fields(value: str, count: int) -> list[str] | None:
    parts = [p.strip() for p in value.split("|")]
    return parts if len(parts) >= count else None


def _asn(field: str) -> int | None:
    first = field.split()[0] if field.split() else ""
    if not first.isdigit() or len(first) > 10:
        return None
    number = int(first)
    return number if 0 < number < 2**32 else None


def parse_origin(values: Iterable[str]) -> int | None:
    """The AS number of an origin answer (the first of several origins); None for junk."""
    for value in list(values)[:MAX_VALUES]:
        fields = _fields(value, 3)
        if fields is not None and (asn := _asn(fields[0])) is not None:
            return asn
    return None


def parse_as_name(values: Iterable[str], asn: int) -> str | None:
    """The AS name of an ``AS<n>.asn.cymru.com`` answer for ``asn``; None for junk."""
    for value in list(values)[:MAX_VALUES]:
        fields = _fields(value, 5)
        if fields is None or _asn(fields[0]) != asn:
            continue
        name = " ".join(visible("|".join(fields[4:])).split())
        return shorten(name, MAX_NAME) or None
    return None


def clean_ptr(values: Iterable[str]) -> str | None:
    """The first PTR answer that is a host name, without the final dot; else None."""
    for value in list(values)[:MAX_VALUES]:
        name = value.rstrip(".")
        if _HOSTNAME.match(name):
            return name.lower()
    return None


@dataclass(frozen=True)
class AsInfo:
    asn: int | None = None
    as_name: str | None = None


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return True


class HopNames:
    """PTR names and AS data of addresses, each asked once per run (bounded, no raises)."""

    def __init__(self, dns: DnsLookup, *, asn: bool = True) -> None:
        self.dns = dns
        self.asn = asn
        self._as: dict[str, AsInfo] = {}
        self._names: dict[int, str | None] = {}
        self._ptr: dict[str, str | None] = {}

    def known_ptr(self, address: str) -> str | None:
        return self._ptr.get(address)

    def known_as(self, address: str) -> AsInfo:
        return self._as.get(address, AsInfo())

    async def ptr(self, address: str) -> str | None:
        if _is_loopback(address):
            return None  # this machine: nothing any resolver should be asked
        if address not in self._ptr:
            import dns.reversename

            try:
                name = dns.reversename.from_address(address).to_text(omit_final_dot=True)
            except (ValueError, SyntaxError):
                self._ptr[address] = None
                return None
            answer = await self.dns.query(name, "PTR")
            self._ptr[address] = clean_ptr(answer.values) if answer.outcome == "ok" else None
        return self._ptr[address]

    async def as_of(self, address: str) -> AsInfo:
        if not self.asn:
            return AsInfo()
        if address not in self._as:
            info = AsInfo()
            name = origin_name(address)
            if name is not None:
                answer = await self.dns.query(name, "TXT")
                number = parse_origin(answer.values) if answer.outcome == "ok" else None
                if number is not None:
                    info = AsInfo(number, await self._as_name(number))
            self._as[address] = info
        return self._as[address]

    async def _as_name(self, asn: int) -> str | None:
        if asn not in self._names:
            answer = await self.dns.query(f"AS{asn}.{NAMES}", "TXT")
            ok = answer.outcome == "ok"
            self._names[asn] = parse_as_name(answer.values, asn) if ok else None
        return self._names[asn]
