"""What one probe result says about the path, in the words the verdict reasons with.

Pure functions over ``ProbeResult``: no I/O. The verdict (``verdict.py``), the report
summary (``build.py``) and the renderers all classify probes through here, so the table,
the JSON ``ports`` summary and the verdict can never disagree about what "answered" means.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, Literal

from portprobe.model import ProbeResult, Reply
from portprobe.protocol.text import shorten, visible

# --- anomaly codes ------------------------------------------------------------------------

#: Anomalies that, on a port-25 probe, say by themselves that a middlebox answered:
#: nothing a genuine MTA does produces them.
STRONG_INTERCEPTION: Final = frozenset(
    {
        "masked-greeting",  # Cisco PIX/ASA "inspect esmtp" blanks the banner to "220 ****"
        "starttls-stripped",  # ...and overwrites STARTTLS with XXXXXXXA
        "starttls-trailing-data",  # bytes injected between "220 Ready" and the handshake
        "greeting-shared-across-providers",  # one box answering for every destination
        "cert-differs-from-587",  # a TLS proxy re-signing: another name/issuer than on 587
        "negative-control-answered",  # a port documented dead accepted the connection
    }
)

#: Anomalies that are suspicious but have innocent explanations (a misconfigured MTA,
#: an out-of-date catalog entry); they decide ``intercepted`` only when most answering
#: providers show them, or when they are all the evidence there is.
WEAK_INTERCEPTION: Final = frozenset(
    {
        "greeting-name-mismatch",
        "starttls-missing-on-25",
        "greeting-unexpected",
        "cert-name-unexpected",
    }
)

INTERCEPTION: Final = STRONG_INTERCEPTION | WEAK_INTERCEPTION

# --- receiver refusals --------------------------------------------------------------------

# Text that names a DNS blocklist or a reputation/policy refusal of the client address.
# Spamhaus ZEN/PBL/SBL/XBL, SpamCop, Barracuda, SORBS, UCEPROTECT are the lists big
# receivers quote; Gmail says "not authorized to send email directly to our servers"
# for addresses its policy treats as end-user ranges.
BLOCKLIST_RE: Final = re.compile(
    r"spamhaus|\bzen\.|\b[psx]bl\b|spamcop|barracuda|sorbs|uceprotect|"
    r"blocked using|black ?list|block ?list|\bdnsbl\b|\brbl\b|"
    r"listed (?:at|on|in|by)|not authori[sz]ed to send|"
    r"dynamic (?:ip|address|range)|residential|dial-?up|reputation",
    re.IGNORECASE,
)

# RFC 5321 §3.8 / §4.2.3: 421 means "service not available, closing transmission channel";
# receivers use it for connection-rate limits and overload. It is about load, not about
# this client's right to send.
RATE_LIMIT_RE: Final = re.compile(
    r"too many (?:connections|concurrent|sessions)|rate.?limit|throttl|try again later|busy",
    re.IGNORECASE,
)

RefusalKind = Literal["blocklisted", "rate-limited", "temporary", "refused"]


def refusal_kind(reply: Reply) -> RefusalKind:
    """Why a 4xx/5xx greeting turned us away, from its code and text."""
    if BLOCKLIST_RE.search(reply.text):
        return "blocklisted"
    if reply.code == 421 or RATE_LIMIT_RE.search(reply.text):
        return "rate-limited"
    if 400 <= reply.code < 500:
        return "temporary"
    return "refused"


def quote(text: str, width: int = 120) -> str:
    """Server text fit to appear in a reason: one line, every control made visible."""
    return shorten(visible(" ".join(text.split())), width)


# --- one probe ----------------------------------------------------------------------------

#: Probe states where the connection never produced an SMTP conversation: the ones a
#: port filter causes. ``dns-error`` and ``error`` say nothing about the path.
PATH_FAILURES: Final = frozenset(
    {"filtered", "refused", "unreachable", "no-banner", "not-smtp", "tls-error"}
)

#: The blocked failure modes, each pointing at a different kind of filter.
FAILURE_MODE: Final[dict[str, str]] = {
    "filtered": "dropped",  # SYNs silently discarded: a stateless ACL / cloud egress rule
    "refused": "reset",  # RST (or ICMP port-unreachable; Linux maps both to ECONNREFUSED)
    "unreachable": "prohibited",  # ICMP administratively prohibited from a router
    "no-banner": "no-greeting",  # something accepts the SYN and then stays silent
    "not-smtp": "no-greeting",  # ...or answers with something that is not SMTP
    "tls-error": "no-greeting",
}

FAILURE_MODE_TEXT: Final[dict[str, str]] = {
    "dropped": "silently dropped, the connection attempts timed out",
    "reset": "refused with a TCP reset or ICMP port-unreachable",
    "prohibited": "rejected with ICMP 'administratively prohibited' / unreachable",
    "no-greeting": "connected but never sent an SMTP greeting",
    "mixed": "failed in different ways",
}


def all_anomalies(result: ProbeResult, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The engine's anomalies followed by the cross-probe ones, without duplicates."""
    seen: dict[str, None] = dict.fromkeys(result.anomalies)
    seen.update(dict.fromkeys(extra))
    return tuple(seen)


def is_intercepted(anomalies: Iterable[str]) -> bool:
    return any(code in INTERCEPTION for code in anomalies)


def is_genuine(result: ProbeResult, anomalies: Iterable[str]) -> bool:
    """A 2xx greeting with nothing suggesting a middlebox produced it."""
    return result.state == "open" and not is_intercepted(anomalies)


def greeted(result: ProbeResult) -> bool:
    """An SMTP greeting arrived, whatever its code."""
    return result.greeting is not None and result.state in ("open", "rejected")


def failure_mode(states: Iterable[str]) -> str | None:
    modes = {FAILURE_MODE[s] for s in states if s in FAILURE_MODE}
    if not modes:
        return None
    return modes.pop() if len(modes) == 1 else "mixed"


# --- names --------------------------------------------------------------------------------

_IP_RE: Final = re.compile(r"^[0-9.]+$|:")


def is_ip_literal(name: str) -> bool:
    return bool(_IP_RE.search(name))


def base_domain(name: str | None) -> str | None:
    """The last two labels, lower-cased: a crude registrable domain, no PSL needed.

    Good enough to tell ``mx.google.com`` (gmail-smtp-in.l.google.com) from
    ``proxy.isp.example``; a false match only makes us miss an anomaly, never invent one.
    """
    if not name or is_ip_literal(name):
        return None
    labels = [part for part in name.lower().rstrip(".").split(".") if part]
    if len(labels) < 2:
        return None
    return ".".join(labels[-2:])


def name_covered(name: str, patterns: Iterable[str]) -> bool:
    """Does a certificate name (``*.example.com`` wildcard allowed) cover ``name``?"""
    name = name.lower().rstrip(".")
    for raw in patterns:
        pattern = raw.lower().rstrip(".")
        if pattern == name:
            return True
        if pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:]:
            return True
    return False
