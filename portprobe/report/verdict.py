"""The port-25 verdict: a pure function from probe results (and DNS evidence) to a decision.

``decide`` first computes the cross-probe anomalies (``anomalies.py``), then decides per
address family (``family.py``: IPv4 and IPv6 take different paths — a separate ISP
filter, a tunnel, no IPv6 at all), then combines the families:

1. ``untested``    — no probe in that family (``-4``/``-6``, or no address of it resolved);
2. ``unavailable`` — nothing connected on any port in that family while the other family
   connected: no route, the usual IPv6 case at home; the overall verdict is the other's.
   (If that family tried nothing but port 25, it is ``inconclusive`` instead: a block and
   a missing route look the same without a control.)
3. both families decided — equal verdicts stand; otherwise ``intercepted`` wins (a
   middlebox on either path is what the user must know), then blocked-on-one and
   open/restricted-on-the-other is ``partial`` (naming the families), then ``partial``,
   ``restricted``, ``blocked``, ``open`` in that order;
4. nothing connected anywhere — ``offline`` when the network is plainly absent (no
   connection on any port and DNS, if used, failed too); ``inconclusive`` when DNS
   answered (something works: maybe every mail port is filtered) or only port 25 was
   probed (a block and an outage look the same without a control).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from portprobe.model import DNSQuery, ProbeResult
from portprobe.report.advice import FAMILY_NAME, AdviceFacts, advice_for
from portprobe.report.anomalies import cross_probe_anomalies
from portprobe.report.family import Finding, decide_family, digest

VERDICTS: Final = (
    "open",
    "blocked",
    "intercepted",
    "restricted",
    "partial",
    "inconclusive",
    "offline",
)
FAMILY_VERDICTS: Final = (*VERDICTS, "unavailable", "untested")
FAMILIES: Final = ("ipv4", "ipv6")
CONFIDENCE: Final = ("low", "medium", "high")
FAILURE_MODES: Final = ("dropped", "reset", "prohibited", "no-greeting", "mixed")
#: DNS outcomes that mean the resolver did not answer (as opposed to "no such name").
DNS_FAILED: Final = frozenset({"timeout", "servfail", "error"})


@dataclass(frozen=True)
class Verdict:
    port25: str  # one of VERDICTS
    families: dict[str, str]  # "ipv4"/"ipv6" -> one of FAMILY_VERDICTS
    confidence: str  # one of CONFIDENCE
    reasons: tuple[str, ...]
    advice: tuple[str, ...]
    failure_mode: str | None  # blocked / partial: one of FAILURE_MODES
    anomalies: dict[int, tuple[str, ...]]  # result index -> cross-probe anomaly codes

    def to_dict(self) -> dict[str, Any]:
        return {
            "port25": self.port25,
            "families": dict(self.families),
            "confidence": self.confidence,
            "reasons": list(self.reasons),
            "advice": list(self.advice),
            "failure_mode": self.failure_mode,
        }


def _count(items: Sequence[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(Counter(items).items()))


def _lower(a: str, b: str) -> str:
    return min(a, b, key=CONFIDENCE.index)


def _higher(a: str, b: str) -> str:
    return max(a, b, key=CONFIDENCE.index)


def combine(findings: dict[str, Finding], facts: AdviceFacts) -> tuple[Finding, dict[str, str]]:
    """Overall finding from the per-family ones, at least one of which connected."""
    families: dict[str, str] = {}
    live: dict[str, Finding] = {}
    reasons: list[str] = []
    for fam, found in findings.items():
        if found.connected:
            families[fam] = found.verdict
            live[fam] = found
        elif found.only_port25:
            # Only port 25 was tried in this family and it failed: a port-25 block and a
            # missing route look the same without a control port.
            families[fam] = "inconclusive"
            reasons.append(
                f"Over {FAMILY_NAME[fam]} only port 25 was probed and it never connected: "
                "a block and a missing route look the same without a control port."
            )
        else:
            # Nothing connected in this family while the other did: no route (typically
            # no IPv6 at home). Not evidence about port 25, so it drops out of the verdict.
            families[fam] = "unavailable"
            reasons.append(
                f"{FAMILY_NAME[fam]} is unavailable here: {found.reasons[0][0].lower()}"
                f"{found.reasons[0][1:]} It is left out of the verdict."
            )
    if len(live) == 1:
        (only,) = live.values()
        return Finding(
            only.verdict, only.confidence, only.reasons + reasons, only.failure_mode
        ), families
    v4, v6 = live["ipv4"], live["ipv6"]
    both = v4.reasons + v6.reasons
    if v4.verdict == v6.verdict:
        mode = (
            v4.failure_mode
            if v4.failure_mode == v6.failure_mode
            else (v4.failure_mode and v6.failure_mode and "mixed")
        )
        return Finding(v4.verdict, _higher(v4.confidence, v6.confidence), both, mode), families
    by_verdict = {v4.verdict: v4, v6.verdict: v6}
    if "intercepted" in by_verdict:
        # A middlebox on either path sees (and may alter) the mail sent over it.
        found = by_verdict["intercepted"]
        return Finding("intercepted", found.confidence, both), families
    blocked = next((f for f in FAMILIES if live[f].verdict == "blocked"), None)
    other = "ipv6" if blocked == "ipv4" else "ipv4"
    if blocked and live[other].verdict in ("open", "restricted"):
        # One family's path filters port 25, the other's does not: an MTA that can use
        # both will deliver to some receivers and stall on others.
        facts.blocked_family, facts.open_family = blocked, other
        lead = (
            f"Port 25 is blocked over {FAMILY_NAME[blocked]} but reaches the receivers over "
            f"{FAMILY_NAME[other]}."
        )
        conf = _lower(live[blocked].confidence, live[other].confidence)
        return Finding("partial", conf, [lead, *both], live[blocked].failure_mode), families
    for verdict in ("partial", "restricted", "blocked", "open"):
        if verdict in by_verdict:
            found = by_verdict[verdict]
            rest = [f for f in FAMILIES if live[f] is not found]
            note = [f"{FAMILY_NAME[f]}: {live[f].verdict}." for f in rest]
            conf = found.confidence if verdict != "open" else _lower(found.confidence, "medium")
            return Finding(verdict, conf, both + note, found.failure_mode), families
    return Finding("inconclusive", "low", both), families


def decide_without_connectivity(
    results: Sequence[ProbeResult],
    dns: Sequence[DNSQuery],
    findings: dict[str, Finding],
    facts: AdviceFacts,
) -> Finding:
    """Nothing connected anywhere (or nothing was probed): offline, or too thin to say."""
    reasons = [r for found in findings.values() for r in found.reasons]
    probed = [r for r in results if r.spec.family is not None]
    dns_failed = [q for q in dns if q.outcome in DNS_FAILED]
    dns_answered = [q for q in dns if q.outcome not in DNS_FAILED]
    if dns_failed:
        reasons.append(
            f"DNS failed: {len(dns_failed)} of {len(dns)} queries got no answer "
            f"({_count([q.outcome for q in dns_failed])})."
        )
    if not probed:
        unresolved = [r for r in results if r.state == "dns-error"]
        if unresolved:
            names = {r.spec.host for r in unresolved}
            what = "1 host name" if len(names) == 1 else f"{len(names)} host names"
            reasons.append(f"{what} could not be resolved; nothing was probed.")
        if dns_failed and not dns_answered:
            # The resolver itself is unreachable: no network (or no DNS), not a port block.
            reasons.append("Without a network (or a resolver) no port can be judged.")
            return Finding("offline", "medium", reasons, connected=False)
        facts.settle.append(
            "Check the host and domain names (no address was found to probe), or use --target "
            "with an IP address."
        )
        return Finding("inconclusive", "low", reasons or ["Nothing was probed."], connected=False)
    ports = {r.spec.port for r in probed}
    if ports == {25} and not dns_failed:
        # A filter dropping port 25 and a dead network look the same without a control.
        facts.settle.append("Probe a control port as well (--ports 25,587).")
        reasons.append("Only port 25 was probed, so a port-25 block looks the same as no network.")
        return Finding("inconclusive", "low", reasons, connected=False)
    if dns_answered and not dns_failed:
        # DNS works, so there is a network; yet no mail port connected anywhere: a strict
        # firewall or captive portal filtering every mail port, or a resolver on this host.
        reasons.append(
            f"DNS answered ({len(dns_answered)} queries), yet no mail port connected at any "
            "host: every mail port may be filtered (a strict firewall or a captive portal)."
        )
        facts.settle.append(
            "Check whether this network needs a login (captive portal) or allows only web "
            "traffic; then add --target of a host you know answers on 587 or 2525."
        )
        return Finding("inconclusive", "low", reasons, connected=False)
    providers = {r.spec.provider_key for r in probed}
    confidence = "high" if len(providers) >= 2 and len(ports) >= 2 and dns_failed else "medium"
    where = (
        f"{len(probed)} probes to {len(providers)} "
        f"{'provider' if len(providers) == 1 else 'providers'} on ports "
        f"{'/'.join(map(str, sorted(ports)))}"
    )
    if all(r.state == "refused" for r in probed):
        # Resets from everywhere on every port: something answers, but it is a firewall
        # rejecting all outbound mail ports (or, on one machine, nothing listening).
        reasons.append(
            f"Every connection was refused: {where}. Something answers with resets, but no "
            "mail port gets through: a firewall that rejects all of them, not a port-25 block."
        )
    else:
        reasons.append(
            f"Nothing reached anything: {where} all failed to connect. That is no network, "
            "not a port-25 block."
        )
    return Finding("offline", confidence, reasons, connected=False)


def decide(
    results: Sequence[ProbeResult], dns: Sequence[DNSQuery] = (), *, used_catalog: bool = False
) -> Verdict:
    """The port-25 verdict for ``results``; ``dns`` is the DNS evidence of the plan."""
    anomalies = cross_probe_anomalies(results)
    facts = AdviceFacts()
    tested = [f for f in FAMILIES if any(r.spec.family == f for r in results)]
    findings = {f: decide_family(digest(f, results, anomalies, facts)) for f in tested}
    if any(found.connected for found in findings.values()):
        final, families = combine(findings, facts)
    else:
        final = decide_without_connectivity(results, dns, findings, facts)
        families = {f: findings[f].verdict for f in findings}
        if final.verdict == "inconclusive":
            families = dict.fromkeys(families, "inconclusive")
    for fam in FAMILIES:
        families.setdefault(fam, "untested")
    dns_failed = [q for q in dns if q.outcome in DNS_FAILED]
    if dns_failed and final.connected:
        final.reasons.append(
            f"{len(dns_failed)} of {len(dns)} DNS queries failed "
            f"({_count([q.outcome for q in dns_failed])}); the hosts they were for were not probed."
        )
    if final.verdict == "inconclusive" and not used_catalog and not facts.settle:
        facts.settle.append(
            "Run without --target/--domain to use the built-in catalog of providers and controls."
        )
    return Verdict(
        port25=final.verdict,
        families={fam: families[fam] for fam in FAMILIES},
        confidence=final.confidence,
        reasons=tuple(dict.fromkeys(final.reasons)),
        advice=advice_for(final.verdict, facts),
        failure_mode=final.failure_mode if final.verdict in ("blocked", "partial") else None,
        anomalies=anomalies,
    )
