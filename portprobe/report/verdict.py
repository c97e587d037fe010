"""The port-25 verdict: a pure function from annotated probes (and DNS evidence) to a decision.

``decide`` reads probes annotated once by ``annotate.annotate`` (their own and cross-probe
anomalies, ``genuine``), digests each address family into frozen evidence, decides per
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

An interrupted run passes the probes still running (``unfinished``): port 25 among them is
"still being probed", never "not probed", and a family or run where nothing had connected
yet is ``inconclusive``, never ``unavailable`` or ``offline`` (unless the resolver failed).

Each finding carries its own advice hints; the advice facts are read off the evidence once
(``AdviceFacts.from_evidence``), so advice never depends on which rules happened to run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from portprobe.model import DNSQuery, ProbeSpec
from portprobe.outcome import Observed, Verdict
from portprobe.report.advice import AdviceFacts, advice_for
from portprobe.report.anomalies import refusal_timings
from portprobe.report.evidence import digest
from portprobe.report.family import decide_family
from portprobe.report.finding import Finding
from portprobe.report.refusals import refusal_word
from portprobe.report.settle import (
    CHECK_CAPTIVE_PORTAL,
    CHECK_NAMES,
    DROP_TARGETS_FOR_CATALOG,
    PROBE_A_CONTROL,
    STILL_RUNNING_SETTLE,
)
from portprobe.vocab import (
    CONFIDENCE,
    FAILURE_MODES,
    FAMILIES,
    FAMILY_NAME,
    FAMILY_VERDICTS,
    VERDICTS,
    Confidence,
    Family,
    FamilyVerdictWord,
)

__all__ = [
    "CONFIDENCE",
    "DNS_FAILED",
    "FAILURE_MODES",
    "FAMILIES",
    "FAMILY_VERDICTS",
    "VERDICTS",
    "Verdict",
    "decide",
]

#: DNS outcomes that mean the resolver did not answer (as opposed to "no such name").
DNS_FAILED: Final = frozenset({"timeout", "servfail", "error"})


def _count(items: Sequence[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(Counter(items).items()))


def _lower(a: Confidence, b: Confidence) -> Confidence:
    return min(a, b, key=CONFIDENCE.index)


def _higher(a: Confidence, b: Confidence) -> Confidence:
    return max(a, b, key=CONFIDENCE.index)


Families = dict[Family, FamilyVerdictWord]


def combine(findings: dict[Family, Finding]) -> tuple[Finding, Families]:
    """Overall finding from the per-family ones, at least one of which connected."""
    families: Families = {}
    live: dict[Family, Finding] = {}
    reasons: list[str] = []
    for fam, found in findings.items():
        if found.connected:
            families[fam] = found.verdict
            live[fam] = found
        elif found.interrupted:
            # Interrupted before anything connected in this family: not evidence of a
            # missing route, only of a run cut short.
            families[fam] = "inconclusive"
            reasons.append(f"{found.reasons[0]} It is left out of the verdict.")
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
        return replace(only, reasons=only.reasons + tuple(reasons)), families
    v4, v6 = live["ipv4"], live["ipv6"]
    both = v4.reasons + v6.reasons
    if v4.verdict == v6.verdict:
        mode = (
            v4.failure_mode
            if v4.failure_mode == v6.failure_mode
            else (v4.failure_mode and v6.failure_mode and "mixed")
        )
        refusal = refusal_word(w for w in (v4.refusal, v6.refusal) if w is not None)
        merged = Finding(
            v4.verdict,
            _higher(v4.confidence, v6.confidence),
            both,
            mode,
            settle=v4.settle + v6.settle,
            refusal=refusal,
        )
        return merged, families
    by_verdict = {v4.verdict: v4, v6.verdict: v6}
    if "intercepted" in by_verdict:
        # A middlebox on either path sees (and may alter) the mail sent over it.
        found = by_verdict["intercepted"]
        return Finding("intercepted", found.confidence, both), families
    blocked = next((f for f in FAMILIES if live[f].verdict == "blocked"), None)
    other: Family = "ipv6" if blocked == "ipv4" else "ipv4"
    if blocked and live[other].verdict in ("open", "restricted"):
        # One family's path filters port 25, the other's does not: an MTA that can use
        # both will deliver to some receivers and stall on others.
        lead = (
            f"Port 25 is blocked over {FAMILY_NAME[blocked]} but reaches the receivers over "
            f"{FAMILY_NAME[other]}."
        )
        conf = _lower(live[blocked].confidence, live[other].confidence)
        partial = Finding(
            "partial", conf, (lead, *both), live[blocked].failure_mode, split=(blocked, other)
        )
        return partial, families
    for verdict in ("partial", "restricted", "blocked", "open"):
        if verdict in by_verdict:
            found = by_verdict[verdict]
            rest = [f for f in FAMILIES if live[f] is not found]
            note = tuple(f"{FAMILY_NAME[f]}: {live[f].verdict}." for f in rest)
            conf = found.confidence if verdict != "open" else _lower(found.confidence, "medium")
            return replace(found, confidence=conf, reasons=both + note), families
    return Finding("inconclusive", "low", both, settle=v4.settle + v6.settle), families


def decide_without_connectivity(
    observed: Sequence[Observed],
    dns: Sequence[DNSQuery],
    findings: dict[Family, Finding],
    unfinished: Sequence[ProbeSpec] = (),
) -> Finding:
    """Nothing connected anywhere (or nothing was probed): offline, or too thin to say.

    ``unfinished``: probes still running when the run was interrupted; with any, nothing
    having connected yet proves no outage (unless the resolver itself failed).
    """
    results = [o.result for o in observed]
    reasons = [r for found in findings.values() for r in found.reasons]
    probed = [r for r in results if r.spec.family is not None]
    dns_failed = [q for q in dns if q.outcome in DNS_FAILED]
    dns_answered = [q for q in dns if q.outcome not in DNS_FAILED]
    if dns_failed:
        reasons.append(
            f"DNS failed: {len(dns_failed)} of {len(dns)} queries got no answer "
            f"({_count([q.outcome for q in dns_failed])})."
        )
    if unfinished and not (dns_failed and not dns_answered):
        if not probed:
            reasons.append("No probe had finished when the run was interrupted.")
        return Finding(
            "inconclusive",
            "low",
            tuple(dict.fromkeys(reasons)),
            connected=False,
            settle=(STILL_RUNNING_SETTLE,),
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
            return Finding("offline", "medium", tuple(reasons), connected=False)
        return Finding(
            "inconclusive",
            "low",
            tuple(reasons or ["Nothing was probed."]),
            connected=False,
            settle=(CHECK_NAMES,),
        )
    ports = {r.spec.port for r in probed}
    if ports == {25} and not dns_failed:
        # A filter dropping port 25 and a dead network look the same without a control.
        reasons.append("Only port 25 was probed, so a port-25 block looks the same as no network.")
        return Finding(
            "inconclusive",
            "low",
            tuple(reasons),
            connected=False,
            settle=(PROBE_A_CONTROL,),
        )
    if dns_answered and not dns_failed:
        # DNS works, so there is a network; yet no mail port connected anywhere: a strict
        # firewall or captive portal filtering every mail port, or a resolver on this host.
        reasons.append(
            f"DNS answered ({len(dns_answered)} queries), yet no mail port connected at any "
            "host: every mail port may be filtered (a strict firewall or a captive portal)."
        )
        return Finding(
            "inconclusive",
            "low",
            tuple(reasons),
            connected=False,
            settle=(CHECK_CAPTIVE_PORTAL,),
        )
    providers = {r.spec.provider_key for r in probed}
    confidence: Confidence = (
        "high" if len(providers) >= 2 and len(ports) >= 2 and dns_failed else "medium"
    )
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
    return Finding("offline", confidence, tuple(reasons), connected=False)


def decide(
    observed: Sequence[Observed],
    dns: Sequence[DNSQuery] = (),
    *,
    used_catalog: bool = False,
    unfinished: Sequence[ProbeSpec] = (),
) -> Verdict:
    """The port-25 verdict for ``observed`` (from ``annotate``); ``dns`` is the plan's DNS.

    ``unfinished``: the planned probes still running when the run was interrupted; they
    are named as such ("still being probed"), never as "not probed".
    """
    timings = refusal_timings([o.result for o in observed])
    present = {o.result.spec.family for o in observed} | {s.family for s in unfinished}
    tested = [f for f in FAMILIES if f in present]
    findings = {f: decide_family(digest(f, observed, timings, unfinished)) for f in tested}
    families: Families
    if any(found.connected for found in findings.values()):
        final, families = combine(findings)
    else:
        final = decide_without_connectivity(observed, dns, findings, unfinished)
        families = {f: findings[f].verdict for f in findings}
        if final.verdict == "inconclusive":
            families = dict.fromkeys(families, "inconclusive")
    for fam in FAMILIES:
        families.setdefault(fam, "untested")
    dns_failed = [q for q in dns if q.outcome in DNS_FAILED]
    reasons = final.reasons
    if dns_failed and final.connected:
        reasons += (
            f"{len(dns_failed)} of {len(dns)} DNS queries failed "
            f"({_count([q.outcome for q in dns_failed])}); "
            "the hosts they were for were not probed.",
        )
    if unfinished:
        on_25 = sum(1 for spec in unfinished if spec.port == 25)
        reasons += (
            f"{len(unfinished)} {'probe was' if len(unfinished) == 1 else 'probes were'} "
            f"still running when the run was interrupted ({on_25} on port 25); the verdict "
            "reads only the finished ones.",
        )
    settle = final.settle
    if final.verdict == "inconclusive" and not used_catalog and not settle:
        settle = (DROP_TARGETS_FOR_CATALOG,)
    return Verdict(
        port25=final.verdict,
        families={fam: families[fam] for fam in FAMILIES},
        confidence=final.confidence,
        reasons=tuple(dict.fromkeys(reasons)),
        advice=advice_for(
            final.verdict,
            AdviceFacts.from_evidence(observed),
            settle=settle,
            split=final.split,
            refusal=final.refusal,
        ),
        failure_mode=final.failure_mode if final.verdict in ("blocked", "partial") else None,
        refusal=final.refusal if final.verdict == "restricted" else None,
    )
