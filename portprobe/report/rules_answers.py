"""Rules for port 25 answering: who answered, and in whose name.

A middlebox answering in the receivers' place (``intercepted``), receivers that turn this
client away (``restricted``: blocklisted, rate-limited or refused), and real servers greeting
(``open``). Each rule opens with the network story that justifies it.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from portprobe.report.anomalies import starttls_only_on_587
from portprobe.report.evidence import FAILURE_MODE_TEXT, FamilyEvidence, failure_mode, quote
from portprobe.report.finding import Finding, names, plural
from portprobe.report.refusals import REFUSAL_OF_KIND, refusal_word
from portprobe.vocab import Confidence, Refusal


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
        f"Port 25 over {ev.name}: {len(suspicious)} of {plural(len(answered), 'provider')} "
        f"that answered show signs of a middlebox ({', '.join(codes)}): {names(suspicious)}."
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
    # Each provider in one group at most, decided by its own refusals: no list is searched
    # per provider, so thousands of refusing providers stay linear.
    listed = [p for p in answered if "blocklisted" in p.kinds]
    refusing = [
        p
        for p in answered
        if "blocklisted" not in p.kinds and not p.genuine and p.kinds & {"refused", "temporary"}
    ]
    limited = [
        p
        for p in answered
        if not p.kinds & {"blocklisted", "refused", "temporary"}
        and not p.genuine
        and "rate-limited" in p.kinds
    ]
    genuine = [p for p in answered if p.genuine and "blocklisted" not in p.kinds]
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
        f"{len(counted)} of {plural(len(answered), 'provider')} refused "
        f"this client in the greeting ({what})."
    ]
    if limited:
        reasons.append(
            f"The rate limit at {names(limited)} counts this client's connections (Postfix "
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
        f"{len(genuine)} greeted genuinely ({names(genuine)})"
        if genuine
        else "none greeted with a 2xx code"
    )
    reasons = [f"Port 25 over {ev.name} reached {plural(len(answered), 'provider')}; {greeted}."]
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
            f"{names(odd)} showed {', '.join(codes)} on port 25 while the others did not: "
            "most likely that destination's own firewall, not your network."
        )
    genuine_ids = {id(o.result) for _, o in ev.results if o.genuine}
    own_config = [r for r in starttls_only_on_587(o.result for _, o in ev.results)]
    for r in [r for r in own_config if id(r) in genuine_ids][:2]:
        reasons.append(
            f"{r.spec.host} did not offer STARTTLS on port 25 while its provider's port 587 "
            "did: most likely that server's own configuration (a middlebox removing STARTTLS "
            "would show at a second provider too)."
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
