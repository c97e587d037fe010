"""One address family's port-25 verdict: an ordered list of named rules.

Within a family the rules are tried in order; the first that applies decides. Each rule
reads the family's frozen evidence (``evidence.py``: counted per provider) and returns a
frozen ``Finding`` carrying its own advice hints (``settle``: what would decide an
inconclusive run), or ``None`` to pass. ``verdict.py`` combines the families.

Reasons are sentences built from counts and host names; server text only appears quoted
through ``visible()`` and shortened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from portprobe.model import ProbeResult
from portprobe.report.evidence import (
    FAILURE_MODE_TEXT,
    FamilyEvidence,
    Provider25,
    failure_mode,
    quote,
)
from portprobe.report.refusals import REFUSAL_OF_KIND, refusal_word
from portprobe.vocab import Confidence, FailureMode, Family, Refusal, VerdictWord


@dataclass(frozen=True)
class Finding:
    """One family's decision (or the combined one), with its explanation and advice hints."""

    verdict: VerdictWord
    confidence: Confidence
    reasons: tuple[str, ...]
    failure_mode: FailureMode | None = None
    connected: bool = True
    only_port25: bool = False  # no connection, and no port but 25 was even tried
    settle: tuple[str, ...] = ()  # inconclusive: what would decide it
    refusal: Refusal | None = None  # restricted: why the receivers refuse this client
    split: tuple[Family, Family] | None = None  # partial by family: (blocked, open)


def _names(providers: Sequence[Provider25], limit: int = 4) -> str:
    labels = sorted(p.label for p in providers)
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(labels[:limit]) + more


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _state_counts(results: Sequence[ProbeResult]) -> str:
    counts = Counter(r.state for r in results)
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


# --- the rules, in order ------------------------------------------------------------------
# Each takes the family's evidence and returns a Finding, or None to pass to the next.

Rule = Callable[[FamilyEvidence], Finding | None]


def rule_port25_not_probed(ev: FamilyEvidence) -> Finding | None:
    # Without a port-25 probe there is nothing to judge (e.g. --ports 587).
    if ev.providers:
        return None
    return Finding(
        "inconclusive",
        "low",
        (f"Port 25 was not probed over {ev.name}.",),
        settle=("Include port 25 in --ports.",),
    )


def rule_middlebox_answers_25(ev: FamilyEvidence) -> Finding | None:
    # A middlebox (ASA/PIX ESMTP inspection, transparent proxy, antivirus TLS proxy)
    # answers port 25 in the real server's place. It gives itself away by answering the
    # same for everyone, hiding the banner, eating STARTTLS, or presenting another cert.
    # Strong signs on two providers, or suspicion on most of those that answered, decide;
    # one provider out of many is more likely that destination's own firewall.
    answered = ev.answered()
    suspicious = [p for p in answered if p.strong or p.weak]
    strong = [p for p in answered if p.strong]
    if not suspicious:
        return None
    # A transparent proxy relays the real greeting, so only a port that should be dead
    # answering gives it away: that alone decides.
    dead_port_answered = any("negative-control-answered" in p.strong for p in answered)
    if len(strong) < 2 and len(suspicious) * 2 <= len(answered) and not dead_port_answered:
        return None
    codes = sorted(set().union(*(p.strong | p.weak for p in suspicious)))
    reasons = [
        f"Port 25 over {ev.name}: {len(suspicious)} of {_plural(len(answered), 'provider')} "
        f"that answered show signs of a middlebox ({', '.join(codes)}): {_names(suspicious)}."
    ]
    if "masked-greeting" in codes or "starttls-stripped" in codes:
        reasons.append(
            "A banner blanked to '220 ****' or STARTTLS rewritten to 'XXXXXXXA' is what "
            "Cisco ASA/PIX ESMTP inspection does."
        )
    if "greeting-shared-across-providers" in codes:
        reasons.append("Different providers answered with the very same greeting line.")
    if dead_port_answered:
        reasons.append(
            "A port 25 the catalog documents as closed accepted the connection: something "
            "in the path answers port 25 on the hosts' behalf (a transparent proxy)."
        )
    if "cert-differs-from-587" in codes:
        reasons.append(
            "The TLS certificate on port 25 is not the one the same host presents on 587: "
            "a TLS proxy is re-signing the session."
        )
    confidence: Confidence
    if len(strong) >= 2 or (strong and len(suspicious) == len(answered) >= 2):
        confidence = "high"
    else:
        confidence = "medium" if strong else "low"
    return Finding("intercepted", confidence, tuple(reasons))


_REFUSAL_TEXT: Final[dict[Refusal, str]] = {
    "rate-limited": "rate-limited: too many connections or too much mail from this address",
    "blocklisted": "blocklisted",
    "other": "refused without naming a blocklist or a rate limit",
}


def rule_receivers_refuse_client(ev: FamilyEvidence) -> Finding | None:
    # The path works (the real server greeted) but it turns this client away: a 5xx/4xx
    # greeting, often quoting a blocklist (Spamhaus PBL for end-user ranges). A rate limit
    # (Postfix anvil's "421 4.7.0 <host> Error: too many connections from <ip>") from one
    # receiver among several that greet is that receiver's load, not this client's fate;
    # from every receiver it is: nothing can be delivered from here until the limits clear.
    # None of these is a port-25 block: the port works.
    answered = ev.answered()
    listed = [p for p in answered if "blocklisted" in p.kinds]
    refusing = [
        p
        for p in answered
        if p not in listed and not p.genuine and p.kinds & {"refused", "temporary"}
    ]
    limited = [
        p
        for p in answered
        if p not in listed and p not in refusing and not p.genuine and "rate-limited" in p.kinds
    ]
    genuine = [p for p in answered if p.genuine and p not in listed]
    counted = listed + refusing + limited
    every_one_refuses = bool(answered) and len(counted) == len(answered)
    refused_enough = bool(refusing) and len(refusing) >= len(genuine)
    refused_enough = refused_enough and (len(refusing) >= 2 or not genuine)
    if not (listed or refused_enough or (limited and every_one_refuses)):
        return None
    word_of: dict[str, Refusal] = {p.key: "blocklisted" for p in listed}
    word_of |= {p.key: "other" for p in refusing}
    word_of |= {p.key: "rate-limited" for p in limited}
    refusal = refusal_word(word_of.values())
    assert refusal is not None
    if refusal == "mixed":
        tally = Counter(word_of.values())
        what = ", ".join(f"{n} {_REFUSAL_TEXT[w].split(':')[0]}" for w, n in sorted(tally.items()))
    else:
        what = _REFUSAL_TEXT[refusal]
    reasons = [
        f"Port 25 over {ev.name} reaches the receivers, but "
        f"{len(counted)} of {_plural(len(answered), 'provider')} refused "
        f"this client in the greeting ({what})."
    ]
    if limited:
        reasons.append(
            f"The rate limit at {_names(limited)} counts this client's connections (Postfix "
            "answers 421 'too many connections from <ip>'): not a port-25 block, but no mail "
            "is delivered from here while the limits hold."
        )
    for p in counted[:3]:
        wanted = {w for w in REFUSAL_OF_KIND if REFUSAL_OF_KIND[w] == word_of[p.key]}
        r = next(r for kind, r in p.refusals if kind in wanted)
        assert r.greeting is not None
        reasons.append(f"{r.spec.host} said {r.greeting.code} '{quote(r.greeting.text)}'.")
    confidence: Confidence
    if len(listed) >= 2 or (listed and not genuine and len(answered) >= 2):
        confidence = "high"
    elif listed or len(refusing) + len(limited) >= 2:
        confidence = "medium"
    else:
        confidence = "low"
    return Finding("restricted", confidence, tuple(reasons), refusal=refusal)


def _timing_reasons(ev: FamilyEvidence, failing: Sequence[tuple[int, ProbeResult]]) -> list[str]:
    timed = [(ev.timings[i], r) for i, r in failing if i in ev.timings]
    out = [
        f"The refusal on port 25 from {r.spec.host} arrived in {t.refusal_ms:.1f} ms, "
        f"{t.control_ms / max(t.refusal_ms, 0.01):.0f}x faster than the {t.control_ms:.1f} ms "
        f"handshake with the same host on port {t.control_port}: it was sent by something "
        "in between (most likely the ISP), not by the host."
        for t, r in timed
        if t.from_path
    ][:2]
    if timed and not out and all(t.from_host for t, _ in timed):
        out.append(
            "The refusals took about one round trip to the hosts (compared with their "
            "handshake on other ports), so they may come from the hosts or a filter near them."
        )
    return out


_MODE_EXPLAINED: Final = {
    "dropped": "Silent drops are what ISP and cloud egress filters on port 25 do.",
    "prohibited": "An ICMP 'administratively prohibited' comes from a router's filter, "
    "not from a mail server.",
    "no-greeting": "Something accepts the connection but never speaks SMTP: a filter or "
    "transparent proxy holding port 25.",
}


def rule_port25_fails_everywhere(ev: FamilyEvidence) -> Finding | None:
    # Port 25 fails at every provider while other ports reach the same providers: the
    # hosts are up and routable, so the filter sits on the path and matches port 25.
    # Without such controls a failure could as well be the hosts being down.
    answered, failed = ev.answered(), ev.failed()
    if answered or not failed:
        return None
    failing = [f for p in failed for f in p.failures]
    mode = failure_mode(r.state for _, r in failing)
    assert mode is not None
    controlled = [p for p in failed if ev.control_ports(p)]
    reasons = [
        f"Port 25 failed at {'all ' if len(failed) > 1 else ''}"
        f"{_plural(len(failed), 'provider')} tried over {ev.name} ({_names(failed)}): "
        f"{FAILURE_MODE_TEXT[mode]} ({_state_counts([r for _, r in failing])})."
    ]
    timing = _timing_reasons(ev, failing)
    from_path = any(ev.timings[i].from_path for i, _ in failing if i in ev.timings)
    if not controlled:
        reasons.append(
            f"No other port reached the same {'host' if len(failed) == 1 else 'providers'}, so "
            "a port-25 block cannot be told apart from the hosts being down."
        )
        return Finding(
            "inconclusive",
            "low",
            tuple(reasons + timing),
            mode,
            settle=(
                "Probe the same hosts on 587 too (--ports 25,587), or add --target of a host "
                "that answers on 587.",
            ),
        )
    ports = sorted(set().union(*(ev.control_ports(p) for p in controlled)))
    reasons.append(
        f"{'Port' if len(ports) == 1 else 'Ports'} {'/'.join(map(str, ports))} reached "
        + (f"{len(controlled)} of these {len(failed)} providers" if len(failed) > 1 else "it")
        + ", so the path to them works."
    )
    reasons += timing
    if mode in _MODE_EXPLAINED:
        reasons.append(_MODE_EXPLAINED[mode])
    if len(failed) == 1 and mode == "reset" and not from_path:
        # One host refusing 25 with a RST at normal round-trip time may simply not run
        # an MTA on 25 (a submission-only host): not enough to blame the network.
        reasons.append(f"{failed[0].label} may simply not accept connections on port 25.")
        return Finding(
            "inconclusive",
            "low",
            tuple(reasons),
            mode,
            settle=(
                "Probe a domain's MX hosts (--domain) or use the built-in catalog, so several "
                "independent providers are tried on port 25.",
            ),
        )
    confidence: Confidence
    if len(failed) >= 3 and len(controlled) >= 2:
        confidence = "high"
    elif len(failed) >= 2 or from_path:
        confidence = "medium"
    else:
        confidence = "low"
    return Finding("blocked", confidence, tuple(reasons), mode)


def rule_some_destinations_fail(ev: FamilyEvidence) -> Finding | None:
    # Port 25 works towards some providers and fails towards several others: a filter
    # that allows some destinations (the ISP's own relay, an allow-list) or receivers
    # that drop this client's range.
    answered, failed = ev.answered(), ev.failed()
    if not answered or len(failed) < 2:
        return None
    failing = [f for p in failed for f in p.failures]
    mode = failure_mode(r.state for _, r in failing)
    reasons = [
        f"Port 25 over {ev.name} answered at {_plural(len(answered), 'provider')} "
        f"({_names(answered)}) but failed at {len(failed)} ({_names(failed)}: "
        f"{FAILURE_MODE_TEXT[mode or 'mixed']}): the path stops port 25 towards some "
        "destinations and not others."
    ]
    reasons += _timing_reasons(ev, failing)
    confidence: Confidence = "medium" if len(answered) >= 2 and len(failed) >= 2 else "low"
    return Finding("partial", confidence, tuple(reasons), mode)


def _open_confidence(genuine: int) -> Confidence:
    return "high" if genuine >= 3 else "medium" if genuine == 2 else "low"


def rule_port25_answers(ev: FamilyEvidence) -> Finding | None:
    # The real servers greeted on port 25. One provider failing on its own while the
    # rest answer is that destination's problem, named in the reasons, not the path's.
    answered, failed = ev.answered(), ev.failed()
    if not answered:
        return None
    genuine = [p for p in answered if p.genuine]
    examples = [
        o.result
        for _, o in ev.results
        if o.result.spec.port == 25
        and o.result.greeting is not None
        and not o.result.spec.negative
        and o.genuine
    ]
    greeted = (
        f"{len(genuine)} greeted genuinely ({_names(genuine)})"
        if genuine
        else "none greeted with a 2xx code"
    )
    reasons = [f"Port 25 over {ev.name} reached {_plural(len(answered), 'provider')}; {greeted}."]
    if examples:
        g = examples[0].greeting
        assert g is not None
        reasons.append(f"For example {examples[0].spec.host} said {g.code} '{quote(g.text, 80)}'.")
    limited = [p for p in answered if not p.genuine and "rate-limited" in p.kinds]
    if limited:
        reasons.append(
            f"{', '.join(p.described for p in limited[:4])} answered 421 (rate limiting: too "
            "many connections); that is load at one receiver, not a block, since the others "
            "accept."
        )
    refusing = [
        (p, r) for p in answered if not p.genuine for k, r in p.refusals if k != "rate-limited"
    ]
    for p, r in refusing[:2]:
        assert r.greeting is not None
        reasons.append(
            f"{p.described} refused this client: {r.greeting.code} '{quote(r.greeting.text)}'; "
            "one receiver's policy, since the others accept."
        )
    odd = [p for p in answered if p.strong or p.weak]
    if odd:
        codes = sorted(set().union(*(p.strong | p.weak for p in odd)))
        reasons.append(
            f"{_names(odd)} showed {', '.join(codes)} on port 25 while the others did not: "
            "most likely that destination's own firewall, not your network."
        )
    confidence = _open_confidence(len(genuine))
    if failed:
        p = failed[0]
        mode = failure_mode(r.state for _, r in p.failures) or "mixed"
        reasons.append(
            f"Only {p.described} failed on port 25 ({FAILURE_MODE_TEXT[mode]}): that destination "
            "is down or refusing by itself, since the others answer."
        )
        confidence = "medium" if confidence == "high" else confidence
    return Finding("open", confidence, tuple(reasons))


def rule_nothing_usable(ev: FamilyEvidence) -> Finding | None:
    # Only local errors or unresolved names on port 25: no evidence about the path.
    port25 = [o.result for _, o in ev.results if o.result.spec.port == 25]
    return Finding(
        "inconclusive",
        "low",
        (f"No port-25 probe over {ev.name} produced a usable result ({_state_counts(port25)}).",),
        settle=("Check the probe errors in the table, then run again.",),
    )


RULES: Final[tuple[Rule, ...]] = (
    rule_port25_not_probed,
    rule_middlebox_answers_25,
    rule_receivers_refuse_client,
    rule_port25_fails_everywhere,
    rule_some_destinations_fail,
    rule_port25_answers,
    rule_nothing_usable,
)


def decide_family(ev: FamilyEvidence) -> Finding:
    if not ev.connected:
        states = _state_counts([o.result for _, o in ev.results])
        return Finding(
            "offline",
            "medium",
            (f"No connection succeeded over {ev.name} on any port ({states}).",),
            connected=False,
            only_port25=ev.ports <= {25},
        )
    for rule in RULES:
        found = rule(ev)
        if found is not None:
            return found
    raise AssertionError("rule_nothing_usable always decides")  # pragma: no cover
