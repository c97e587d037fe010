"""Why a receiver turned this client away: one home for what refusal greetings say.

A 4xx/5xx greeting (RFC 5321 §3.1, §4.2.3: 554 "no SMTP service here", 421 "service not
available, closing transmission channel") from the real receiver is about *this client*,
not the path. The text tells the kind: a DNS blocklist or reputation listing, a rate or
connection limit, or a refusal that names neither. The anomaly labels (``anomalies.py``),
the restricted rule (``family.py``) and the advice (``advice.py``) all read it from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, Literal

from portprobe.model import Reply
from portprobe.vocab import Refusal

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
# receivers use it for connection-rate limits and overload. The texts quoted are Postfix
# anvil's (smtpd_client_connection_count_limit / _rate_limit / _message_rate_limit):
# "421 4.7.0 <host> Error: too many connections from <ip>", "... too much mail from <ip>",
# "... too many new TLS sessions from <ip>"; Exim's "Too many concurrent SMTP connections";
# Gmail's "421-4.7.0 ... unusual rate of unsolicited mail ... temporarily rate limited".
RATE_LIMIT_RE: Final = re.compile(
    r"too many (?:connections|concurrent|sessions|new tls sessions)|too much mail|"
    r"unusual rate|rate.?limit|throttl|try again later|busy",
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


#: A refusal kind in the verdict's words (``Verdict.refusal``).
REFUSAL_OF_KIND: Final[dict[RefusalKind, Refusal]] = {
    "blocklisted": "blocklisted",
    "rate-limited": "rate-limited",
    "temporary": "other",
    "refused": "other",
}


def refusal_word(kinds: Iterable[Refusal]) -> Refusal | None:
    """One word for several refusals: the one they share, or ``mixed``."""
    words = set(kinds)
    if not words:
        return None
    return words.pop() if len(words) == 1 else "mixed"


# --- which list -------------------------------------------------------------------------

#: Lowercase key in the text -> the list's name as its operator writes it.
BLOCKLIST_NAMES: Final = (
    ("spamhaus", "Spamhaus"),
    ("spamcop", "SpamCop"),
    ("barracuda", "Barracuda"),
    ("sorbs", "SORBS"),
    ("uceprotect", "UCEPROTECT"),
)
GMAIL_POLICY_RE: Final = re.compile(r"not authori[sz]ed to send e-?mail directly", re.I)
#: Spamhaus PBL: the ISP's own "end-user range, not meant to send mail directly" listing.
POLICY_LISTING_RE: Final = re.compile(r"\bpbl\b", re.I)
GENERIC_BLOCKLIST: Final = "a DNS blocklist"


def blocklists_named(text: str) -> tuple[str, ...]:
    """The blocklists a refusal names; ``a DNS blocklist`` when it names none (not Gmail's)."""
    lowered = text.lower()
    named = tuple(name for key, name in BLOCKLIST_NAMES if key in lowered)
    if named or GMAIL_POLICY_RE.search(text):
        return named
    return (GENERIC_BLOCKLIST,)
