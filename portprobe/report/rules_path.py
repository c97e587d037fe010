"""Rules for port 25 failing on the path: everywhere (``blocked``) or towards some (``partial``).

A failure only blames the network when other ports reach the same providers (the hosts are
up and routable); refusal timing tells a RST sent by the ISP's edge from one sent by the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from portprobe.model import ProbeResult
from portprobe.report.evidence import FAILURE_MODE_TEXT, FamilyEvidence, failure_mode
from portprobe.report.finding import Finding, names, plural, state_counts
from portprobe.report.settle import PROBE_MORE_PROVIDERS, PROBE_THE_SAME_HOSTS_ON_587
from portprobe.vocab import Confidence


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


#: How a reason says what an ICMP error meant.
ICMP_WORDS: Final = {
    "admin-prohibited": "administratively prohibited",
    "host-prohibited": "host prohibited",
    "net-prohibited": "network prohibited",
    "host-unreachable": "host unreachable",
    "net-unreachable": "network unreachable",
    "port-unreachable": "port unreachable",
    "time-exceeded": "time exceeded",
    "other": "an ICMP error",
}


def icmp_reasons(failing: Sequence[tuple[int, ProbeResult]], limit: int = 2) -> list[str]:
    """Reasons that cite the ICMP error the kernel reported (type/code and its sender).

    One line per distinct (meaning, sender), at most ``limit``; a RST that came without an
    ICMP error stays a RST (nothing is said here)."""
    out: list[str] = []
    seen: set[tuple[str, str | None, bool]] = set()
    for _, r in failing:
        icmp = r.error.icmp if r.error is not None else None
        if icmp is None or (icmp.meaning, icmp.sender, icmp.local) in seen:
            continue
        seen.add((icmp.meaning, icmp.sender, icmp.local))
        words = ICMP_WORDS[icmp.meaning]
        target = f"Port 25 to {r.spec.host}"
        if r.spec.address and r.spec.address != r.spec.host:
            target += f" ({r.spec.address})"
        if icmp.local:
            out.append(
                f"{target}: {words} (ICMP {icmp.type}/{icmp.code}) sent by this machine "
                f"itself ({icmp.sender}): a local firewall rule, not the network."
            )
        else:
            sender = icmp.sender or "an unnamed router"
            out.append(f"{target}: {words} (ICMP {icmp.type}/{icmp.code}) by {sender}.")
        if len(out) >= limit:
            break
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
        f"{plural(len(failed), 'provider')} tried over {ev.name} ({names(failed)}): "
        f"{FAILURE_MODE_TEXT[mode]} ({state_counts([r for _, r in failing])})."
    ]
    timing = _timing_reasons(ev, failing) + icmp_reasons(failing)
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
            settle=(PROBE_THE_SAME_HOSTS_ON_587,),
        )
    ports = sorted(set().union(*(ev.control_ports(p) for p in controlled)))
    reasons.append(
        f"{'Port' if len(ports) == 1 else 'Ports'} {'/'.join(map(str, ports))} reached "
        + (f"{len(controlled)} of these {len(failed)} providers" if len(failed) > 1 else "it")
        + f", so the path to {'it' if len(failed) == 1 else 'them'} works."
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
            settle=(PROBE_MORE_PROVIDERS,),
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
        f"Port 25 over {ev.name} answered at {plural(len(answered), 'provider')} "
        f"({names(answered)}) but failed at {len(failed)} ({names(failed)}: "
        f"{FAILURE_MODE_TEXT[mode or 'mixed']}): the path stops port 25 towards some "
        "destinations and not others."
    ]
    reasons += _timing_reasons(ev, failing) + icmp_reasons(failing)
    confidence: Confidence = "medium" if len(answered) >= 2 and len(failed) >= 2 else "low"
    return Finding("partial", confidence, tuple(reasons), mode)
