"""The words of the product contract (shared/spec.md), each spelled once.

Pure and tiny: the CLI reads these for ``--help`` and option checks before anything heavy
is imported, the verdict and the renderers read the same names, and ``exit_codes`` is keyed
by ``VERDICTS``. A word added here is a contract change: update README.md and the schema.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Family = Literal["ipv4", "ipv6"]
FAMILIES: Final[tuple[Family, ...]] = get_args(Family)
#: How a person names a family.
FAMILY_NAME: Final[dict[str, str]] = {"ipv4": "IPv4", "ipv6": "IPv6"}

#: The four ports portprobe knows; 465 is implicit TLS (RFC 8314), the others STARTTLS.
MAIL_PORTS: Final = (25, 465, 587, 2525)

#: The port-25 verdict (spec "Verdict ... and exit codes").
VerdictWord = Literal[
    "open", "blocked", "intercepted", "restricted", "partial", "inconclusive", "offline"
]
VERDICTS: Final[tuple[VerdictWord, ...]] = get_args(VerdictWord)
#: Per family, two more words: nothing connected in it at all, or nothing probed in it.
FamilyVerdictWord = Literal[
    "open",
    "blocked",
    "intercepted",
    "restricted",
    "partial",
    "inconclusive",
    "offline",
    "unavailable",
    "untested",
]
FAMILY_VERDICTS: Final[tuple[FamilyVerdictWord, ...]] = get_args(FamilyVerdictWord)

Confidence = Literal["low", "medium", "high"]
CONFIDENCE: Final[tuple[Confidence, ...]] = get_args(Confidence)

#: How port 25 failed, for ``blocked`` and ``partial``.
FailureMode = Literal["dropped", "reset", "prohibited", "no-greeting", "mixed"]
FAILURE_MODES: Final[tuple[FailureMode, ...]] = get_args(FailureMode)

#: Why the receivers turn this client away, for ``restricted``: their greetings quote a
#: rate limit (Postfix anvil's "421 4.7.0 ... too many connections from ..."), a blocklist,
#: something else, or a mix of these.
Refusal = Literal["rate-limited", "blocklisted", "mixed", "other"]
REFUSALS: Final[tuple[Refusal, ...]] = get_args(Refusal)

#: Output formats of ``diagnose`` (``--format``).
Format = Literal["table", "json", "markdown", "junit", "openmetrics", "nagios"]
FORMATS: Final[tuple[Format, ...]] = get_args(Format)

#: How one DNS query ended (the report's ``dns[].outcome``). ``nxdomain`` and ``nodata``
#: are answers ("no such name", "no such record"); ``null-mx`` is the planner's reading of
#: an MX answer of a lone ``0 .`` (RFC 7505); the last three mean the lookup broke.
DnsOutcome = Literal["ok", "nxdomain", "nodata", "null-mx", "servfail", "timeout", "error"]
DNS_OUTCOMES: Final[tuple[DnsOutcome, ...]] = get_args(DnsOutcome)
#: The lookup itself broke (RFC 7001 §2.7's temporary errors), as opposed to an answer.
DNS_FAILED: Final[frozenset[DnsOutcome]] = frozenset({"servfail", "timeout", "error"})

#: Mail readiness (spec "Mail readiness").
Ready = Literal["yes", "no", "unknown"]
#: RFC 7001 §3 / RFC 8601 ``iprev`` result words.
Iprev = Literal["pass", "fail", "temperror", "permerror"]

#: What one piece of advice asks for (``portprobe.advice.Advice.code``). Sources replace
#: or suppress each other's advice by these words, never by its text; the JSON report
#: carries only the text, so a code is not part of the output contract.
AdviceCode = Literal[
    # the port-25 verdict (report/advice.py), and what would settle an inconclusive one
    "deliver-directly",
    "use-submission",
    "relay-2525",
    "lift-port25-block",
    "lift-family-block",
    "family-only",
    "relay-all-destinations",
    "avoid-intercepted-starttls",
    "disable-smtp-inspection",
    "slow-down",
    "mta-rate-manners",
    "blocklist-delist",
    "policy-listing-relay",
    "gmail-relay",
    "static-address",
    "include-port25",
    "let-probes-finish",
    "check-probe-errors",
    "probe-control-port",
    "probe-more-providers",
    "check-names",
    "check-captive-portal",
    "use-catalog",
    "check-network",
    "try-nameserver",
    # who stops port 25, from the path trace (companions/path.py)
    "path-local-rule",
    "path-local-network",
    "path-isp-evidence",
    "path-transit-report",
    "path-destination-refuses",
    # the platform's own policy (report/platform_advice.py)
    "platform-name-it",
    "platform-unblock-step",
    "platform-open-ports",
    "platform-relay",
    "platform-block-elsewhere",
    # mail readiness (readiness/assess.py)
    "state-public-ip",
    "ptr-missing",
    "ptr-generic",
    "dnsbl-listed",
    "dnsbl-own-resolver",
    "relay-smarthost",
    "readiness-moot",
    "pbl-relay",
    "fix-or-relay",
    "ready-direct",
    # the local mail server (companions/mta_advice.py): each the exact line for the MTA found
    "mta-ipv4-only",
    "mta-relayhost",
    "mta-helo-name",
    "mta-inet-protocols",
]
ADVICE_CODES: Final[tuple[AdviceCode, ...]] = get_args(AdviceCode)

#: What an ICMP error that stopped a SYN means (spec "Path", ``probes[].icmp.meaning``).
IcmpMeaning = Literal[
    "admin-prohibited",
    "host-prohibited",
    "net-prohibited",
    "host-unreachable",
    "net-unreachable",
    "port-unreachable",
    "time-exceeded",
    "other",
]

#: The local mail server (spec "The local mail server"): which one, how to look for it,
#: and why one of its deliveries was deferred (from the text the MTA logged).
MtaKind = Literal["postfix", "exim"]
MTA_KINDS: Final[tuple[MtaKind, ...]] = get_args(MtaKind)
MtaMode = Literal["auto", "none", "postfix", "exim"]
MTA_MODES: Final[tuple[MtaMode, ...]] = get_args(MtaMode)
MtaReason = Literal[
    "path-timeout",
    "path-refused",
    "network-unreachable",
    "no-ptr",
    "blocklisted",
    "rate-limited",
    "tls",
    "dns",
    "other",
]
MTA_REASONS: Final[tuple[MtaReason, ...]] = get_args(MtaReason)
