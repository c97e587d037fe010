"""Names and addresses as receivers read them (pure).

Generic ("dynamic pool") PTR names follow SpamAssassin's ``rules/20_dynrdns.cf``: the
address embedded in the name (dashed, dotted, zero-padded, reversed or hex), or a label
saying what kind of access line it is (``dyn``, ``dhcp``, ``dsl``, ``cable``, ``pool``,
``ppp``, ``client`` ...). A name that says ``static`` or ``fix`` is exempt, as there
(``__RDNS_STATIC``). Outlook.com documents that "connections from dynamic IP space may
not be accepted"; a provider's default name (``ec2-1-2-3-4.compute-1.amazonaws.com``)
embeds the address and counts.

EHLO echoes: servers tell the client the address they saw, ``250-mx.google.com at your
service, [203.0.113.5]``, Exim ``250-host Hello name [203.0.113.5]``, Office 365
``Hello [203.0.113.5]``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from portprobe.model import ProbeResult
from portprobe.readiness.model import GenericNameCheck
from portprobe.vocab import Family

# __RDNS_STATIC: "fix|static|fixip" anywhere; we require it to start a label part, so
# "prefix" does not exempt a name.
_STATIC: Final = re.compile(r"(?:^|[.\-_])((?:static|fixip|fixed|fix)[a-z0-9]*)", re.IGNORECASE)
# __RDNS_INDICATOR_DYN / _TYPE / _RES / _TYPE2 and __RDNS_DYNAMIC_DHCP, as whole label
# parts, optionally followed by digits ("dhcp024", "pool7", "ppp-").
_KEYWORD: Final = re.compile(
    r"(?:^|[.\-_])((?:dyn|dynamic|dynip|dhcp|dsl|adsl|vdsl|xdsl|sdsl|cable|catv|docsis|cm"
    r"|cpe|node|pool|ppp|pppoe|dial|dialup|dialin|modem|isdn|dip|client|clients|res|resnet"
    r"|broadband|bb|customer|cust|user|host|wireless|wifi|mobile|3g|4g|lte)\d*)(?=$|[.\-_])",
    re.IGNORECASE,
)
# Labels that alone say too little ("host", "user", "node", "mobile" ...): generic only
# together with digits in the same name.
_WEAK: Final = frozenset({"host", "user", "node", "bb", "cust", "customer", "mobile", "cm"})
# __RDNS_DYNAMIC_IPADDR: four digit groups separated by non-digits, then >= 2 labels.
_FOUR_GROUPS: Final = re.compile(
    r"(?<!\d)(\d{1,3})[.\-_](\d{1,3})[.\-_](\d{1,3})[.\-_](\d{1,3})(?![.\-_]?\d)"
)
# __RDNS_DYNAMIC_HEXIP
_HEX_IP: Final = re.compile(r"(?:^|[.\-_])(?:0x)?([0-9a-f]{8})(?=$|[.\-_])", re.IGNORECASE)
_MAX_NAME: Final = 253


def generic_name(name: str, address: str | None = None) -> GenericNameCheck:
    """Does ``name`` look assigned to a dynamic pool? ``matched`` is the evidence."""
    name = name.rstrip(".")[:_MAX_NAME]
    host = name.lower()
    static = _STATIC.search(host)
    if static:
        return GenericNameCheck(name, False, static.group(1), "static-exempt")
    # The part of the name left of the registered domain: "mail.example.com" and a
    # provider's own domain labels are not evidence.
    labels = host.split(".")
    local = ".".join(labels[:-2]) if len(labels) > 2 else ""
    if address is not None:
        embedded = _embedded_address(local, address)
        if embedded:
            return GenericNameCheck(name, True, embedded, "address-in-name")
    four = _FOUR_GROUPS.search(local)
    if four and all(0 <= int(g) <= 255 for g in four.groups()):
        return GenericNameCheck(name, True, four.group(0), "address-in-name")
    hexip = _HEX_IP.search(local)
    if hexip and address is not None and _hex_of(address) == hexip.group(1).lower():
        return GenericNameCheck(name, True, hexip.group(0).strip(".-_"), "hex-address-in-name")
    if hexip and hexip.group(0).strip(".-_").startswith("0x"):
        return GenericNameCheck(name, True, hexip.group(0).strip(".-_"), "hex-address-in-name")
    has_digits = any(ch.isdigit() for ch in local)
    for match in _KEYWORD.finditer(local):
        word = match.group(1)
        base = word.rstrip("0123456789")
        if base in _WEAK and not has_digits:
            continue
        return GenericNameCheck(name, True, word, "dynamic-label")
    return GenericNameCheck(name, False)


def _hex_of(address: str) -> str | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return ip.packed.hex() if ip.version == 4 else None


def _embedded_address(local: str, address: str) -> str | None:
    """The part of ``local`` that spells ``address`` (either order, any separator,
    zero-padded or not; for IPv6 the last four groups or the whole hex run)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 4:
        octets = str(ip).split(".")
        for order in (octets, octets[::-1]):
            spaced = r"[.\-_]".join(rf"0{{0,2}}{o}" for o in order)
            padded = "".join(o.zfill(3) for o in order)  # "024210034053"
            for pattern in (spaced, padded):
                found = re.search(rf"(?<!\d){pattern}(?![.\-_]?\d)", local)
                if found:
                    return found.group(0)
        return None
    groups = ip.exploded.split(":")
    tail = "[.\\-_:]?".join(rf"0{{0,3}}{g.lstrip('0') or '0'}" for g in groups[-4:])
    found = re.search(tail, local)
    if found and len(found.group(0)) >= 8:
        return found.group(0)
    run = ip.exploded.replace(":", "")
    return run if run in local.replace("-", "").replace(".", "") else None


# --- EHLO echoes -------------------------------------------------------------------------

_BRACKETED: Final = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]{2,45})\]", re.IGNORECASE)
_ECHO_LINES: Final = 4  # only the first lines of a reply name the client
_ECHO_CHARS: Final = 512


def echoed_in(lines: tuple[str, ...]) -> tuple[Family, str] | None:
    """The first bracketed address literal in ``lines`` that ``ipaddress`` accepts."""
    for line in lines[:_ECHO_LINES]:
        for match in _BRACKETED.finditer(line[:_ECHO_CHARS]):
            try:
                ip = ipaddress.ip_address(match.group(1))
            except ValueError:
                continue
            return ("ipv4" if ip.version == 4 else "ipv6"), str(ip)
    return None


def echoed_address(result: ProbeResult) -> tuple[Family, str] | None:
    """The client address a probed server echoed: EHLO first line first, then greeting."""
    if result.ehlo_hello is not None:
        found = echoed_in((result.ehlo_hello,))
        if found is not None:
            return found
    if result.greeting is not None:
        return echoed_in(result.greeting.lines)
    return None
