"""The platform's own next step, and its documented policy held against what was measured.

Pure: reads the environment, the data file's policy, the verdict and the port summaries.
``advise`` fills ``Environment.advice`` and ``Environment.notes``; ``filter_generic_advice``
drops the generic lines (``portprobe.report.advice``) that would be wrong on this platform:
suggesting 465 on Hetzner Cloud, 587 on Scaleway, or "ask the cloud provider to lift the
block" where the platform's exact step is given instead.

A fact the data file marks unverified is said with "reportedly".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Final

from portprobe.environment.model import Environment
from portprobe.environment.platforms import PlatformCatalog, PlatformInfo, Policy
from portprobe.outcome import PortSummary, Verdict

#: The ports a relay or submission service can use instead of 25.
RELAY_PORTS: Final = (587, 465, 2525)
#: Verdicts in which port 25 reached at least some receivers.
_REACHED: Final = frozenset({"open", "restricted", "intercepted", "partial"})
#: The generic advice line the platform's own unblock step replaces (report/advice.py,
#: verdict "blocked"); tests/test_environment.py pins it against that module's text.
_GENERIC_LIFT: Final = re.compile(r"ask the ISP \(or cloud provider\) to lift", re.IGNORECASE)


def _ports_phrase(ports: Iterable[int]) -> str:
    listed = [str(p) for p in ports]
    if len(listed) == 1:
        return f"port {listed[0]}"
    return "ports " + ", ".join(listed[:-1]) + " and " + listed[-1]


def _cite(policy: Policy) -> str:
    return f"(source: {policy.source}, read {policy.read.isoformat()})"


def _entry(env: Environment, platforms: PlatformCatalog) -> tuple[PlatformInfo, Policy] | None:
    entry = platforms.get(env.profile)
    if entry is None:
        return None
    return entry, entry.policy_for(env.variant)


def advise(
    env: Environment,
    platforms: PlatformCatalog,
    *,
    verdict: Verdict,
    ports: Mapping[int, PortSummary],
) -> Environment:
    """``env`` with ``advice`` (this platform's next step) and ``notes`` filled."""
    found = _entry(env, platforms)
    if found is None:
        advice: list[str] = []
        if (
            env.label is not None
            and env.label.startswith("ambiguous")
            and verdict.port25
            in (
                "blocked",
                "partial",
            )
        ):
            advice.append(
                f"The platform is {env.label}: pass --platform NAME (see `portprobe "
                "platforms`) for its own unblock step."
            )
        return replace(env, advice=tuple(advice))
    entry, policy = found
    label = env.label or entry.label
    maybe = "" if policy.verified else "reportedly "
    word = verdict.port25
    advice = []
    notes = list(env.notes)
    open_ports = [p for p in RELAY_PORTS if p not in policy.blocked]

    if word in ("blocked", "partial", "inconclusive") and 25 in policy.blocked:
        advice.append(
            f"{label} {maybe}blocks outbound {_ports_phrase(policy.blocked)} by default. "
            f"{policy.how}. {_cite(policy)}"
        )
        if open_ports:
            verb = "is" if len(open_ports) == 1 else "are"
            advice.append(
                f"{_ports_phrase(open_ports).capitalize()} {verb} not blocked on {label}: "
                "send through your mail provider's submission service or a relay "
                "(smarthost) there, with authentication."
            )
        if entry.relay is not None:
            advice.append(f"{label}'s own way to send mail: {entry.relay}.")
    elif word in ("blocked", "partial") and policy.unblock == "unknown":
        advice.append(f"{label}: {policy.how}. {_cite(policy)}")
    elif word in ("blocked", "partial"):
        advice.append(
            f"{label} {maybe}does not block port 25 by default, so the block is elsewhere: "
            "the machine's own firewall, a security group or network ACL, or the network "
            f"beyond. {policy.how}. {_cite(policy)}"
        )
        notes.append(
            f"Unexpected: {label} {maybe}documents no default port-25 block, yet port 25 is "
            "blocked here."
        )

    if word in _REACHED and 25 in policy.blocked:
        if policy.unblock == "never":
            notes.append(
                f"Unexpected: {label} {maybe}never lifts its port-25 block, yet port 25 "
                "reached receivers here: a VPN, proxy or tunnel may carry the traffic off "
                "the platform (compare the public address with this machine's)."
            )
        else:
            exempt = [v.label for v in entry.variants if 25 not in v.policy.blocked]
            also = (
                f", or the subscription type ({', '.join(exempt)}) is not blocked"
                if (exempt and env.variant is None)
                else ""
            )
            notes.append(
                f"{label} {maybe}blocks port 25 by default, and it answered here: the limit "
                f"was lifted for this account{also} (or the traffic leaves through a VPN "
                "or proxy)."
            )
    if word == "restricted" and entry.relay is not None:
        advice.append(
            f"Receivers often refuse cloud addresses: send through {entry.relay} instead."
        )
    if word == "intercepted":
        notes.append(
            f"A middlebox on port 25 is not part of {label}'s documented policy: look for a "
            "proxy, antivirus mail shield or VPN on this machine or its network."
        )

    for port in policy.blocked:
        summary = ports.get(port)
        if port == 25 or summary is None or not summary.tested:
            continue
        if summary.state == "dns-error" or word == "offline":
            continue  # nothing was dialled: a failure here says nothing about the policy
        if summary.reachable:
            notes.append(f"Unexpected: {label} {maybe}blocks port {port}, yet it answered here.")
        else:
            says = f"{label}'s policy says" + (" (reportedly)" if maybe else "")
            notes.append(f"Port {port} failed too, as {says}.")
    return replace(env, advice=tuple(dict.fromkeys(advice)), notes=tuple(dict.fromkeys(notes)))


def filter_generic_advice(
    advice: tuple[str, ...], env: Environment | None, platforms: PlatformCatalog
) -> tuple[str, ...]:
    """The generic advice without the lines this platform makes wrong.

    Drops a line that suggests a port other than 25 which the platform blocks, and the
    generic "ask the ISP (or cloud provider) to lift" line where the platform's own step
    for port 25 is known (``advise`` gives it instead).
    """
    if env is None:
        return advice
    found = _entry(env, platforms)
    if found is None:
        return advice
    _, policy = found
    blocked = [p for p in policy.blocked if p != 25]
    mentions = [re.compile(rf"(?<![\d-]){p}(?!\d)") for p in blocked]
    own_step = 25 in policy.blocked and policy.unblock != "unknown"
    kept = []
    for line in advice:
        if any(m.search(line) for m in mentions):
            continue
        if own_step and _GENERIC_LIFT.search(line):
            continue
        kept.append(line)
    return tuple(kept)
