"""What to do about a verdict: concrete steps, matched to the evidence that led to it.

Advice reads two things: ``AdviceFacts``, derived once from the annotated probes (which
submission ports greeted, which blocklists the refusals name), and the ``Hints`` the
deciding finding carries (``settle``, the family split, the refusal word). No rule writes
either. ``ADVICE`` maps each verdict to one small function, in the style of ``RULES``
(family.py); each step is a typed ``Advice`` whose code and ports let the platform's own
advice (``platform_advice.py``) replace or drop it without reading its text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from portprobe.advice import Advice, unique
from portprobe.outcome import Observed
from portprobe.report.refusals import (
    GMAIL_POLICY_RE,
    POLICY_LISTING_RE,
    blocklists_named,
    refusal_kind,
)
from portprobe.report.settle import USE_CATALOG
from portprobe.vocab import FAMILY_NAME, Family, Refusal, VerdictWord


@dataclass(frozen=True)
class AdviceFacts:
    """The few facts advice depends on, read off the evidence."""

    submission_ports: frozenset[int] = frozenset()  # 465/587/2525 that greeted genuinely
    blocklists: frozenset[str] = frozenset()  # e.g. {"Spamhaus"}, from port-25 refusals
    gmail_policy: bool = False  # "not authorized to send email directly"
    policy_listing: bool = False  # Spamhaus PBL: the ISP's own "end-user range" listing

    @classmethod
    def from_evidence(cls, observed: Sequence[Observed]) -> AdviceFacts:
        submission = set()
        listings: list[str] = []
        for o in observed:
            r = o.result
            if r.spec.family is None or r.spec.negative:
                continue
            if r.spec.port != 25:
                if o.genuine:
                    submission.add(r.spec.port)
                continue
            reply = r.greeting
            if r.state == "rejected" and reply is not None and refusal_kind(reply) == "blocklisted":
                listings.append(reply.text)
        return cls(
            submission_ports=frozenset(submission),
            blocklists=frozenset(name for text in listings for name in blocklists_named(text)),
            gmail_policy=any(GMAIL_POLICY_RE.search(text) for text in listings),
            policy_listing=any(POLICY_LISTING_RE.search(text) for text in listings),
        )


def _ports_text(ports: Iterable[int]) -> str:
    return "/".join(str(p) for p in sorted(ports))


@dataclass(frozen=True)
class Hints:
    """What the deciding finding says beyond its verdict word."""

    settle: Sequence[Advice] = ()  # inconclusive: what would decide it
    split: tuple[Family, Family] | None = None  # partial by family: (blocked, open)
    refusal: Refusal | None = None  # restricted: why the receivers refuse


def _submission(facts: AdviceFacts) -> Advice:
    reached = facts.submission_ports & {465, 587}
    where = (
        f" ({'port' if len(reached) == 1 else 'ports'} {_ports_text(reached)} answered from here)"
        if reached
        else " (neither 587 nor 465 answered here; check that too)"
    )
    return Advice(
        "use-submission",
        "Send through your mail provider's submission service on port 587 (STARTTLS) or "
        f"465 (implicit TLS) with authentication{where}; configure your MTA to use it as "
        "a smarthost (relayhost).",
        ports=(465, 587),
    )


def _relay_2525(facts: AdviceFacts) -> Advice:
    if 2525 in facts.submission_ports:
        text = "A relay service listening on port 2525 is reachable from here, too."
    else:
        text = "Or use a relay service (smarthost) that also listens on port 2525."
    return Advice("relay-2525", text, ports=(2525,))


def _rate_limited() -> list[Advice]:
    return [
        Advice(
            "slow-down",
            "The receivers are rate-limiting this address: wait a few minutes before the "
            "next run, and probe with fewer parallel connections (--concurrency 4 "
            "--per-host 1).",
        ),
        Advice(
            "mta-rate-manners",
            "An MTA here must do the same: few connections per destination, and retry later "
            "on 421 rather than reconnecting at once. If the limits persist when idle, the "
            "address may be shared (carrier-grade NAT) or have a poor reputation: relay "
            "through your provider instead.",
        ),
    ]


# --- one function per verdict -------------------------------------------------------------
# Each takes the evidence's facts and the finding's hints and returns the steps, in order.

AdviceRule = Callable[[AdviceFacts, Hints], list[Advice]]


def advise_open(facts: AdviceFacts, hints: Hints) -> list[Advice]:
    # The path works; what remains is the receivers' judgement of the sending address
    # (RFC 8601 iprev, SPF, DKIM, DMARC), which no port can fix.
    return [
        Advice(
            "deliver-directly",
            "Port 25 works: a mail server here can deliver directly. Receivers still judge "
            "the sending address: give it a reverse DNS (PTR) name matching the EHLO name, "
            "and publish SPF, DKIM and DMARC.",
        )
    ]


def advise_blocked(facts: AdviceFacts, hints: Hints) -> list[Advice]:
    # Port 25 is filtered on the path while other ports pass: submission (RFC 6409, RFC
    # 8314) to a smarthost goes round it; only whoever runs the filter can lift it.
    return [
        _submission(facts),
        _relay_2525(facts),
        Advice(
            "lift-port25-block",
            "To deliver directly, ask the ISP (or cloud provider) to lift the outbound "
            "port-25 block; many only do so on business plans, with a static IP address "
            "and a reverse DNS (PTR) name.",
        ),
    ]


def advise_intercepted(facts: AdviceFacts, hints: Hints) -> list[Advice]:
    # A middlebox answers port 25 and can strip STARTTLS (RFC 3207 has no downgrade
    # protection); implicit TLS on 465 (RFC 8314) with a verified certificate cannot be.
    return [
        Advice(
            "avoid-intercepted-starttls",
            "Something between you and the receivers answers on port 25: do not trust "
            "STARTTLS on port 25 from this network. Submit mail on 465 (implicit TLS) or "
            "587 and verify the server certificate.",
            ports=(465, 587),
        ),
        Advice(
            "disable-smtp-inspection",
            "If the middlebox is yours (Cisco ASA/PIX 'inspect esmtp', an antivirus mail "
            "shield, a corporate TLS proxy), turn SMTP inspection off for outbound mail; "
            "otherwise ask the network operator why port 25 is proxied.",
        ),
    ]


def advise_restricted(facts: AdviceFacts, hints: Hints) -> list[Advice]:
    # The path works but the receivers turn this address away: a rate limit passes with
    # time and manners; a blocklist needs delisting, or a relay whose address they accept.
    out = _rate_limited() if hints.refusal in ("rate-limited", "mixed") else []
    if hints.refusal == "rate-limited":
        return [*out, _submission(facts)]
    if facts.blocklists:
        names = ", ".join(sorted(facts.blocklists))
        out.append(
            Advice(
                "blocklist-delist",
                f"Look up this machine's public IP address on the blocklist named ({names}; "
                "e.g. https://check.spamhaus.org/) and follow its delisting procedure.",
            )
        )
    if facts.policy_listing:
        out.append(
            Advice(
                "policy-listing-relay",
                "A policy listing such as Spamhaus PBL means the ISP declares the range "
                "as not meant to send mail directly: delisting rarely sticks, so relay "
                "through your provider instead.",
            )
        )
    if facts.gmail_policy:
        out.append(
            Advice(
                "gmail-relay",
                "Gmail refuses direct mail from this address range: send through your "
                "provider's relay (smarthost) instead.",
            )
        )
    out.append(_submission(facts))
    out.append(
        Advice(
            "static-address",
            "If you must deliver directly, ask the ISP for a static IP address with a "
            "reverse DNS (PTR) name and a clean reputation.",
        )
    )
    return out


def advise_partial(facts: AdviceFacts, hints: Hints) -> list[Advice]:
    # Some destinations are reached and others not (one family filtered, or some
    # networks): an MTA queues the rest until it gives up, so relay everything.
    if hints.split is None:
        return [
            Advice(
                "relay-all-destinations",
                "Port 25 reaches some destinations and not others: mail to the failing "
                "ones will stall. Relay outgoing mail through a smarthost so every "
                "destination is reached.",
            ),
            _submission(facts),
        ]
    blocked, works = hints.split
    fam_bad, fam_ok = FAMILY_NAME[blocked], FAMILY_NAME[works]
    return [
        Advice(
            "family-only",
            f"Port 25 works over {fam_ok} only: an MTA can deliver over {fam_ok} to "
            f"receivers that have {fam_ok} MX addresses, but mail to the rest will "
            f"stall on {fam_bad}.",
            family=works,
        ),
        Advice(
            "lift-family-block",
            f"Ask the ISP to lift the port-25 block on {fam_bad}, or relay all mail "
            "through a smarthost.",
            family=blocked,
        ),
        _submission(facts),
    ]


def advise_inconclusive(facts: AdviceFacts, hints: Hints) -> list[Advice]:
    # The evidence could not tell a block from an outage: say what would.
    return list(hints.settle) or [USE_CATALOG]


def advise_offline(facts: AdviceFacts, hints: Hints) -> list[Advice]:
    # Nothing connected on any port: the machine's own network, not a port-25 filter.
    return [
        Advice(
            "check-network",
            "Check the network connection (link, default route, DNS resolver) and run "
            "again; this is not a port-25 block.",
        ),
        Advice(
            "try-nameserver",
            "If only DNS is broken, try --nameserver with a resolver you can reach.",
        ),
    ]


ADVICE: Final[Mapping[VerdictWord, AdviceRule]] = {
    "open": advise_open,
    "blocked": advise_blocked,
    "intercepted": advise_intercepted,
    "restricted": advise_restricted,
    "partial": advise_partial,
    "inconclusive": advise_inconclusive,
    "offline": advise_offline,
}


def advice_for(
    verdict: VerdictWord,
    facts: AdviceFacts,
    *,
    settle: Sequence[Advice] = (),
    split: tuple[Family, Family] | None = None,
    refusal: Refusal | None = None,
) -> tuple[Advice, ...]:
    """Advice for ``verdict``: ``settle`` is what would decide an inconclusive run, ``split``
    the (blocked, open) families of a partial one, ``refusal`` why receivers refuse.
    """
    return unique(ADVICE[verdict](facts, Hints(settle, split, refusal)))
