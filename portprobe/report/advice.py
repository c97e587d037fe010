"""What to do about a verdict: concrete steps, matched to the evidence that led to it.

Advice reads two things: ``AdviceFacts``, derived once from the annotated probes (which
submission ports greeted, which blocklists the refusals name), and the hints the deciding
finding carries (``settle``, the family split, the refusal word). No rule writes either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from portprobe.outcome import Observed
from portprobe.report.refusals import (
    GMAIL_POLICY_RE,
    POLICY_LISTING_RE,
    blocklists_named,
    refusal_kind,
)
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


def _submission(facts: AdviceFacts) -> list[str]:
    reached = facts.submission_ports & {465, 587}
    where = (
        f" ({'port' if len(reached) == 1 else 'ports'} {_ports_text(reached)} answered from here)"
        if reached
        else " (neither 587 nor 465 answered here; check that too)"
    )
    out = [
        "Send through your mail provider's submission service on port 587 (STARTTLS) or "
        f"465 (implicit TLS) with authentication{where}; configure your MTA to use it as "
        "a smarthost (relayhost)."
    ]
    if 2525 in facts.submission_ports:
        out.append("A relay service listening on port 2525 is reachable from here, too.")
    else:
        out.append("Or use a relay service (smarthost) that also listens on port 2525.")
    return out


def _rate_limited() -> list[str]:
    return [
        "The receivers are rate-limiting this address: wait a few minutes before the next "
        "run, and probe with fewer parallel connections (--concurrency 4 --per-host 1).",
        "An MTA here must do the same: few connections per destination, and retry later on "
        "421 rather than reconnecting at once. If the limits persist when idle, the address "
        "may be shared (carrier-grade NAT) or have a poor reputation: relay through your "
        "provider instead.",
    ]


def advice_for(
    verdict: VerdictWord,
    facts: AdviceFacts,
    *,
    settle: Sequence[str] = (),
    split: tuple[Family, Family] | None = None,
    refusal: Refusal | None = None,
) -> tuple[str, ...]:
    """Advice for ``verdict``: ``settle`` is what would decide an inconclusive run, ``split``
    the (blocked, open) families of a partial one, ``refusal`` why receivers refuse.
    """
    out: list[str] = []
    if verdict == "open":
        out.append(
            "Port 25 works: a mail server here can deliver directly. Receivers still judge "
            "the sending address: give it a reverse DNS (PTR) name matching the EHLO name, "
            "and publish SPF, DKIM and DMARC."
        )
    elif verdict == "blocked":
        out += _submission(facts)
        out.append(
            "To deliver directly, ask the ISP (or cloud provider) to lift the outbound "
            "port-25 block; many only do so on business plans, with a static IP address "
            "and a reverse DNS (PTR) name."
        )
    elif verdict == "intercepted":
        out.append(
            "Something between you and the receivers answers on port 25: do not trust "
            "STARTTLS on port 25 from this network. Submit mail on 465 (implicit TLS) or "
            "587 and verify the server certificate."
        )
        out.append(
            "If the middlebox is yours (Cisco ASA/PIX 'inspect esmtp', an antivirus mail "
            "shield, a corporate TLS proxy), turn SMTP inspection off for outbound mail; "
            "otherwise ask the network operator why port 25 is proxied."
        )
    elif verdict == "restricted":
        if refusal in ("rate-limited", "mixed"):
            out += _rate_limited()
        if refusal == "rate-limited":
            out += _submission(facts)[:1]
            return tuple(dict.fromkeys(out))
        if facts.blocklists:
            names = ", ".join(sorted(facts.blocklists))
            out.append(
                f"Look up this machine's public IP address on the blocklist named ({names}; "
                "e.g. https://check.spamhaus.org/) and follow its delisting procedure."
            )
        if facts.policy_listing:
            out.append(
                "A policy listing such as Spamhaus PBL means the ISP declares the range "
                "as not meant to send mail directly: delisting rarely sticks, so relay "
                "through your provider instead."
            )
        if facts.gmail_policy:
            out.append(
                "Gmail refuses direct mail from this address range: send through your "
                "provider's relay (smarthost) instead."
            )
        out += _submission(facts)[:1]
        out.append(
            "If you must deliver directly, ask the ISP for a static IP address with a "
            "reverse DNS (PTR) name and a clean reputation."
        )
    elif verdict == "partial":
        if split is not None:
            fam_bad, fam_ok = FAMILY_NAME[split[0]], FAMILY_NAME[split[1]]
            out.append(
                f"Port 25 works over {fam_ok} only: an MTA can deliver over {fam_ok} to "
                f"receivers that have {fam_ok} MX addresses, but mail to the rest will "
                f"stall on {fam_bad}."
            )
            out.append(
                f"Ask the ISP to lift the port-25 block on {fam_bad}, or relay all mail "
                "through a smarthost."
            )
        else:
            out.append(
                "Port 25 reaches some destinations and not others: mail to the failing "
                "ones will stall. Relay outgoing mail through a smarthost so every "
                "destination is reached."
            )
        out += _submission(facts)[:1]
    elif verdict == "inconclusive":
        out += settle or [
            "Run again without --target to use the built-in catalog, which includes "
            "control hosts on ports 465, 587 and 2525."
        ]
    elif verdict == "offline":
        out.append(
            "Check the network connection (link, default route, DNS resolver) and run "
            "again; this is not a port-25 block."
        )
        out.append("If only DNS is broken, try --nameserver with a resolver you can reach.")
    return tuple(dict.fromkeys(out))
