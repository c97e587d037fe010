"""DNSBL queries and answers (pure): RFC 5782 names, each answer decoded from the list's
own table.

RFC 5782 §2.1: an IPv4 address is listed when ``<reversed octets>.<zone>`` has an A
record, §2.4: IPv6 uses the reversed nibbles. An A answer is *not* automatically a
listing: Spamhaus answers 127.255.255.252/254/255 for errors ("must not be used to reject
email", spamhaus.org/news/article/788) and a lapsed domain (SpamCop, 2021-01-30) answered
for every address. So only an answer the list documents as a listing is ``listed``;
documented errors and anything undocumented are ``unknown`` with the reason, and the
published test entries (RFC 5782 §5: 127.0.0.2 listed, 127.0.0.1 not) tell a zone that
answers correctly from one that lies.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from portprobe.model import DnsAnswer
from portprobe.readiness.model import DnsblCheck
from portprobe.readiness.settings import DnsblZone
from portprobe.text import shorten, visible

#: At most this many answers are decoded and kept (a list answers one or a few).
MAX_ANSWERS: Final = 8
_LOOPBACK_NET: Final = ipaddress.IPv4Network("127.0.0.0/8")


def query_name(address: str, zone: str) -> str:
    """RFC 5782 §2.1/§2.4: ``1.2.3.4`` under ``zen.spamhaus.org`` is ``4.3.2.1.zen...``."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        labels = reversed(str(ip).split("."))
    else:
        labels = reversed(ip.exploded.replace(":", ""))
    return ".".join(labels) + "." + zone


def _listing(zone: DnsblZone, answer: str) -> tuple[str | None, str | None]:
    """(meaning if it is a documented listing, reason if it is not one)."""
    if answer in zone.errors:
        return None, zone.errors[answer]
    if zone.listed:
        if answer in zone.listed:
            return zone.listed[answer], None
        return None, f"{zone.label} answered {answer}, which it does not document"
    try:
        ip = ipaddress.IPv4Address(answer)
    except ValueError:
        return None, f"{zone.label} answered {answer}, which is not an IPv4 address"
    if ip in _LOOPBACK_NET:  # RFC 5782 §2.3: listings answer in 127.0.0.0/8
        return f"listed by {zone.label} ({answer})", None
    return None, f"{zone.label} answered {answer}, outside 127.0.0.0/8 (RFC 5782 §2.3)"


def decode(
    zone: DnsblZone,
    address: str,
    answer: DnsAnswer,
    *,
    test_listed: DnsAnswer | None = None,
    test_clean: DnsAnswer | None = None,
) -> DnsblCheck:
    """The status of ``address`` on ``zone``, given its answer and the test entries'."""
    shown = tuple(shorten(visible(a), 60) for a in answer.answers[:MAX_ANSWERS])
    if answer.outcome in ("servfail", "timeout", "error"):
        why = answer.message or answer.outcome
        return DnsblCheck(zone.zone, address, "unknown", shown, reason=f"{zone.label}: {why}")
    meanings: list[str] = []
    errors: list[str] = []
    for value in shown:
        meaning, reason = _listing(zone, value)
        if meaning is not None:
            meanings.append(meaning)
        elif reason is not None:
            errors.append(reason)
    if errors:
        # One error answer makes the whole answer untrustworthy (it is never a listing).
        return DnsblCheck(zone.zone, address, "unknown", shown, tuple(meanings), errors[0])
    lie = _zone_lies(zone, test_listed, test_clean)
    if lie is not None:
        return DnsblCheck(zone.zone, address, "unknown", shown, tuple(meanings), lie)
    if meanings:
        return DnsblCheck(zone.zone, address, "listed", shown, tuple(meanings))
    return DnsblCheck(zone.zone, address, "not-listed")


def _zone_lies(
    zone: DnsblZone, test_listed: DnsAnswer | None, test_clean: DnsAnswer | None
) -> str | None:
    """Why the zone's answers cannot be trusted, judged by its test entries, or None."""
    if test_clean is not None and test_clean.outcome == "ok":
        return (
            f"{zone.label} lists its own clean test entry {zone.test_clean}: it answers "
            "'listed' for everyone (a lapsed or hijacked domain?)"
        )
    if test_listed is not None:
        if test_listed.outcome in ("nxdomain", "nodata"):
            return (
                f"{zone.label} does not list its own test entry {zone.test_listed}: "
                "the zone is not answering as documented"
            )
        if test_listed.outcome != "ok":
            why = test_listed.message or test_listed.outcome
            return f"{zone.label}: its test entry {zone.test_listed} did not answer ({why})"
        for value in test_listed.answers[:MAX_ANSWERS]:
            _, reason = _listing(zone, value)
            if reason is not None:
                return f"{zone.label} test entry {zone.test_listed}: {reason}"
    return None
