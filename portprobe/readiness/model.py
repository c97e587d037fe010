"""Readiness results (spec "Mail readiness"): pure, frozen, one ``to_dict`` each.

Words: ``iprev`` is RFC 7001 §3's (pass / fail / temperror / permerror); a DNSBL status
is ``listed`` only for an answer the list documents as a listing, ``unknown`` for its
error codes and anything undocumented.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from portprobe.advice import Advice, texts
from portprobe.vocab import Family, Iprev, Ready

WhoamiMethod = Literal["opendns", "google", "ehlo-echo", "stated"]
DnsblStatus = Literal["listed", "not-listed", "unknown"]

#: Spamhaus's return codes for the PBL (https://www.spamhaus.org/faqs/dnsbl-usage/):
#: 127.0.0.10 the ISP's own, 127.0.0.11 Spamhaus's "end-user range, not meant to send mail
#: directly" listing. A policy about the range, not a misdeed of this address: there is no
#: cause to stop, and delisting rarely sticks.
POLICY_LISTING_ANSWERS: Final = frozenset({"127.0.0.10", "127.0.0.11"})
#: Spamhaus's answer to a query that came through a public resolver, which it refuses
#: (its error range 127.255.255.0/24, https://www.spamhaus.org/news/article/788/; the
#: catalog's ``[dnsbl.errors]`` says the same).
PUBLIC_RESOLVER_REFUSED: Final = "127.255.255.254"


@dataclass(frozen=True)
class AddressSighting:
    """What one method said our public address is (``address`` None when it failed)."""

    method: WhoamiMethod
    family: Family
    address: str | None
    source: str | None = None  # the server asked, or the host whose EHLO echoed it
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "family": self.family,
            "address": self.address,
            "source": self.source,
            "error": self.error,
        }


@dataclass(frozen=True)
class PtrCheck:
    """Reverse DNS of one public address, forward-confirmed (FCrDNS)."""

    address: str
    names: tuple[str, ...]
    iprev: Iprev
    confirmed_name: str | None = None  # the PTR name whose A/AAAA gave the address back
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "names": list(self.names),
            "iprev": self.iprev,
            "confirmed_name": self.confirmed_name,
            "message": self.message,
        }


@dataclass(frozen=True)
class GenericNameCheck:
    name: str
    generic: bool
    matched: str | None = None  # the part of the name that looks dynamic
    rule: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "generic": self.generic,
            "matched": self.matched,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class EhloNameCheck:
    name: str
    addresses: tuple[str, ...]
    resolves_to_public: bool | None
    matches_ptr: bool | None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "addresses": list(self.addresses),
            "resolves_to_public": self.resolves_to_public,
            "matches_ptr": self.matches_ptr,
            "message": self.message,
        }


@dataclass(frozen=True)
class DnsblCheck:
    zone: str
    address: str
    status: DnsblStatus
    answers: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "address": self.address,
            "status": self.status,
            "answers": list(self.answers),
            "meanings": list(self.meanings),
            "reason": self.reason,
        }

    @property
    def policy_listing(self) -> bool:
        """Listed only as an end-user range (Spamhaus PBL), by its answer codes."""
        return self.status == "listed" and bool(POLICY_LISTING_ANSWERS.intersection(self.answers))

    @property
    def refused_public_resolver(self) -> bool:
        """The list refused to answer because the query came through a public resolver."""
        return self.status == "unknown" and PUBLIC_RESOLVER_REFUSED in self.answers


@dataclass(frozen=True)
class Readiness:
    ready: Ready
    public_addresses: Mapping[Family, tuple[str, ...]]
    sightings: tuple[AddressSighting, ...] = ()
    ptr: tuple[PtrCheck, ...] = ()
    generic_name: tuple[GenericNameCheck, ...] = ()
    ehlo_name: EhloNameCheck | None = None
    dnsbl: tuple[DnsblCheck, ...] = ()
    reasons: tuple[str, ...] = ()
    advice: tuple[Advice, ...] = ()

    def ptr_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for p in self.ptr for n in p.names))

    def redaction_terms(self) -> tuple[str, ...]:
        """What ``--redact`` hides: every public address and PTR name we learned."""
        seen = [a for addrs in self.public_addresses.values() for a in addrs]
        seen += [s.address for s in self.sightings if s.address]
        seen += [p.address for p in self.ptr]
        seen += list(self.ptr_names())
        return tuple(dict.fromkeys(seen))

    def checks(self) -> tuple[tuple[str, bool | None, str], ...]:
        """One ``(name, passed, detail)`` per check, for renderers that list checks (a
        JUnit testcase each): ``passed`` None means the check gave no answer."""
        rows: list[tuple[str, bool | None, str]] = []
        for p in self.ptr:
            ok = {"pass": True, "fail": False, "permerror": False}.get(p.iprev)
            rows.append((f"ptr {p.address}", ok, p.message or f"iprev {p.iprev}"))
        for g in self.generic_name:
            detail = f"{g.rule}: {g.matched}" if g.matched else "not generic"
            rows.append((f"generic-name {g.name}", not g.generic, detail))
        if self.ehlo_name is not None:
            e = self.ehlo_name
            ok = e.resolves_to_public if e.matches_ptr is not False else False
            rows.append((f"ehlo-name {e.name}", ok, e.message or "resolves to the public address"))
        for d in self.dnsbl:
            ok = {"listed": False, "not-listed": True}.get(d.status)
            detail = "; ".join(d.meanings) or d.reason or d.status
            rows.append((f"dnsbl {d.zone} {d.address}", ok, detail))
        return tuple(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "public_addresses": {f: list(a) for f, a in self.public_addresses.items()},
            "sightings": [s.to_dict() for s in self.sightings],
            "ptr": [p.to_dict() for p in self.ptr],
            "generic_name": [g.to_dict() for g in self.generic_name],
            "ehlo_name": self.ehlo_name.to_dict() if self.ehlo_name else None,
            "dnsbl": [d.to_dict() for d in self.dnsbl],
            "reasons": list(self.reasons),
            "advice": list(texts(self.advice)),
        }
