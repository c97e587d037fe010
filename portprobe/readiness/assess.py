"""From lookups to a readiness answer (pure): iprev words, then ``ready`` with reasons.

``ready`` (spec "Mail readiness") is ``yes`` only when every check passed (iprev
``pass``, name not generic, not listed), ``no`` when any failed, else ``unknown``. The
reasons are built from our own words and from values already made visible; the advice
(``advise.py``) reads the checks with the port-25 path verdict.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Final

from portprobe.advice import unique
from portprobe.model import DnsAnswer
from portprobe.readiness.advise import advise
from portprobe.readiness.model import (
    AddressSighting,
    DnsblCheck,
    EhloNameCheck,
    GenericNameCheck,
    PtrCheck,
    Readiness,
)
from portprobe.text import shorten, visible
from portprobe.vocab import DNS_FAILED as FAILED
from portprobe.vocab import FAMILY_NAME, Family, Ready, VerdictWord

#: PTR names forward-checked per address: one is normal, a few are seen, 50 is an attack.
MAX_PTR_NAMES: Final = 4
#: Addresses that no receiver on the internet sees as ours: an echo of one of these means
#: a NAT or a proxy in between, not a public address to check.
_NOT_PUBLIC: Final = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def checkable(address: str) -> bool:
    """Is ``address`` one a receiver could see us as (so worth a PTR and DNSBL check)?"""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return False
    return not any(ip in net for net in _NOT_PUBLIC if net.version == ip.version)


def _shown(text: str) -> str:
    return shorten(visible(text), 80)


def decide_iprev(address: str, ptr: DnsAnswer, forwards: Mapping[str, DnsAnswer]) -> PtrCheck:
    """RFC 7001 §3 ``iprev`` from the PTR answer and each PTR name's A/AAAA answer.

    pass: some PTR name resolves back to the address; permerror: no PTR published;
    temperror: the PTR lookup (or, with no pass, a forward lookup) failed temporarily;
    fail: the PTR names resolve, but never back to the address.
    """
    names = tuple(_shown(n) for n in ptr.values[:MAX_PTR_NAMES])
    if ptr.outcome in ("nxdomain", "nodata") or (ptr.outcome == "ok" and not names):
        return PtrCheck(address, (), "permerror", message=f"{address} has no PTR record")
    if ptr.outcome != "ok":
        why = _shown(ptr.message or ptr.outcome)
        return PtrCheck(address, (), "temperror", message=f"PTR lookup failed: {why}")
    extra = ""
    if ptr.truncated or len(ptr.values) > MAX_PTR_NAMES:
        extra = f" (the PTR answer had more names; checked the first {MAX_PTR_NAMES})"
    target = ipaddress.ip_address(address)
    failed: list[str] = []
    for name, raw in zip(names, ptr.values, strict=False):
        forward = forwards.get(raw)
        if forward is None or forward.outcome in FAILED:
            failed.append(name)
            continue
        for value in forward.values:
            try:
                if ipaddress.ip_address(value) == target:
                    message = f"{name} resolves back to {address}{extra}" if extra else None
                    return PtrCheck(address, names, "pass", name, message)
            except ValueError:
                continue
    if failed:
        message = f"forward lookup of {', '.join(failed)} did not finish or failed{extra}"
        return PtrCheck(address, names, "temperror", message=message)
    message = f"no PTR name ({', '.join(names)}) resolves back to {address}{extra}"
    return PtrCheck(address, names, "fail", message=message)


def check_ehlo_name(
    name: str, answers: Sequence[DnsAnswer], public: Sequence[str], ptr_names: Sequence[str]
) -> EhloNameCheck:
    """Does the EHLO name resolve to a public address, and is it the PTR name?"""
    shown = _shown(name)
    bare = name.rstrip(".").lower()
    if bare.startswith("[") and bare.endswith("]"):
        literal = bare[1:-1].removeprefix("ipv6:")
        addresses: tuple[str, ...] = (literal,)
        failed = False
    else:
        addresses = tuple(_shown(v) for a in answers for v in a.values[:8])
        failed = any(a.outcome in FAILED for a in answers) and not addresses
    if failed:
        return EhloNameCheck(shown, (), None, None, f"could not resolve {shown}")
    known = {str(ipaddress.ip_address(p)) for p in public}
    resolves = bool(known) and any(_same(a, known) for a in addresses)
    matches = bare in {n.rstrip(".").lower() for n in ptr_names} if ptr_names else None
    message = None
    if not addresses:
        message = f"{shown} has no A/AAAA record"
    elif known and not resolves:
        message = f"{shown} resolves to {', '.join(addresses)}, not to the public address"
    return EhloNameCheck(shown, addresses, resolves if known else None, matches, message)


def _same(value: str, known: set[str]) -> bool:
    try:
        return str(ipaddress.ip_address(value)) in known
    except ValueError:
        return False


def _disagreements(sightings: Sequence[AddressSighting]) -> list[str]:
    reasons = []
    for family in ("ipv4", "ipv6"):
        seen = [s for s in sightings if s.family == family and s.address]
        if len({s.address for s in seen}) > 1:
            said = "; ".join(
                f"{s.method}{' via ' + s.source if s.source else ''}: {s.address}" for s in seen
            )
            reasons.append(
                f"{FAMILY_NAME[family]}: the methods disagree about the public address "
                f"({said}) — split routing, a VPN or carrier-grade NAT; mail leaves from "
                "the address the SMTP server saw"
            )
    return reasons


def assess(
    public_addresses: Mapping[Family, tuple[str, ...]],
    sightings: Sequence[AddressSighting] = (),
    ptr: Sequence[PtrCheck] = (),
    generic_name: Sequence[GenericNameCheck] = (),
    ehlo_name: EhloNameCheck | None = None,
    dnsbl: Sequence[DnsblCheck] = (),
    *,
    port25: VerdictWord | None = None,
) -> Readiness:
    """``ready`` with reasons (the evidence) and advice (the next step)."""
    failed: list[str] = []  # a receiver would refuse or spam-folder us for this
    unsure: list[str] = []  # a check that could not give an answer
    notes: list[str] = []  # worth knowing, does not decide
    addresses = [a for addrs in public_addresses.values() for a in addrs]
    if not addresses:
        errors = sorted({_shown(s.error) for s in sightings if s.error})[:3]
        why = f" ({'; '.join(errors)})" if errors else ""
        unsure.append(f"the public address could not be learned{why}")
    notes += _disagreements(sightings)
    for s in sightings:
        if s.address and s.method != "stated" and not checkable(s.address):
            notes.append(
                f"{s.source or s.method} saw us as {s.address}, a private address: "
                "a NAT or proxy sits between here and there"
            )
    by_address = {p.address: p for p in ptr}
    for address in addresses:
        check = by_address.get(address)
        if check is None:
            unsure.append(f"reverse DNS of {address} was not checked (not finished)")
        elif check.iprev == "permerror":
            failed.append(f"{address} has no reverse DNS (PTR): iprev permerror")
        elif check.iprev == "fail":
            failed.append(f"{check.message or 'PTR not confirmed'}: iprev fail")
        elif check.iprev == "temperror":
            unsure.append(f"reverse DNS of {address}: {check.message or 'temporary error'}")
    for g in generic_name:
        if g.generic:
            failed.append(
                f"the PTR name {g.name} looks generic ({g.rule}: {g.matched!r}); receivers "
                "such as Outlook.com refuse dynamic-looking senders"
            )
    for d in dnsbl:
        if d.status == "listed":
            failed.append(f"{d.address} is listed on {d.zone}: {'; '.join(d.meanings)}")
        elif d.status == "unknown":
            unsure.append(f"{d.zone} for {d.address}: {d.reason or 'no usable answer'}")
    if ehlo_name is not None:
        if ehlo_name.message:
            notes.append(f"EHLO name: {ehlo_name.message}")
        if ehlo_name.matches_ptr is False:
            notes.append(
                f"EHLO name {ehlo_name.name} is not the PTR name: some receivers score it "
                "(RFC 5321 §4.1.4: not a reason to refuse on its own)"
            )
    ready: Ready = "no" if failed else ("unknown" if unsure else "yes")
    reasons = failed + unsure + notes
    if ready == "yes":
        reasons.insert(
            0,
            "reverse DNS is forward-confirmed, the name is not generic, and "
            "no DNSBL lists the address",
        )
    return Readiness(
        ready=ready,
        public_addresses=dict(public_addresses),
        sightings=tuple(sightings),
        ptr=tuple(ptr),
        generic_name=tuple(generic_name),
        ehlo_name=ehlo_name,
        dnsbl=tuple(dnsbl),
        reasons=tuple(dict.fromkeys(reasons)),
        advice=unique(advise(bool(addresses), ptr, generic_name, dnsbl, ready, port25)),
    )
