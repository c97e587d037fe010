"""The platform's own next step, and its documented policy held against what was measured.

Pure: reads the environment, the data file's policy, the verdict and the port summaries.
``advise`` fills ``Environment.advice`` and ``Environment.notes``; ``filter_generic_advice``
drops the generic steps (``portprobe.report.advice``) that would be wrong on this platform,
by their fields alone: a step through a port the platform blocks (465 on Hetzner Cloud,
587 on Scaleway), and a step whose code the platform's own step replaces ("ask the cloud
provider to lift the block" where the platform's exact form is given instead).

It sits beside the verdict's advice it filters: ``portprobe.environment`` only says where
this machine runs, and imports nothing of the report.

A fact the data file marks unverified is said with "reportedly".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Final

from portprobe.advice import Advice, unique, without_ports, without_replaced
from portprobe.environment.model import Environment
from portprobe.environment.platforms import PlatformCatalog, PlatformInfo, Policy
from portprobe.outcome import PortSummary, Verdict
from portprobe.vocab import AdviceCode, VerdictWord

#: The ports a relay or submission service can use instead of 25.
RELAY_PORTS: Final = (587, 465, 2525)
#: Verdicts in which port 25 reached at least some receivers.
_REACHED: Final = frozenset({"open", "restricted", "intercepted", "partial"})
#: The generic step the platform's own unblock step replaces, when the platform says how
#: port 25 is unblocked (or that it never is): "ask the ISP (or cloud provider) to lift".
_OWN_STEP_REPLACES: Final[tuple[AdviceCode, ...]] = ("lift-port25-block",)


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


@dataclass(frozen=True)
class _Said:
    """The platform as the advice names it, and the policy that applies to this machine."""

    entry: PlatformInfo
    policy: Policy
    label: str
    maybe: str  # "reportedly " where the data file has no primary source, else ""


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
        return replace(env, advice=_name_the_platform(env, verdict.port25))
    entry, policy = found
    said = _Said(entry, policy, env.label or entry.label, "" if policy.verified else "reportedly ")
    notes = [
        *env.notes,
        *_port25_notes(said, verdict.port25, env.variant),
        *_other_port_notes(said, verdict.port25, ports),
    ]
    return replace(
        env,
        advice=unique(_next_steps(said, verdict.port25)),
        notes=tuple(dict.fromkeys(notes)),
    )


def _name_the_platform(env: Environment, word: VerdictWord) -> tuple[Advice, ...]:
    # Detection could not choose between platforms whose steps differ: ask the user.
    if env.label is None or not env.label.startswith("ambiguous"):
        return ()
    if word not in ("blocked", "partial"):
        return ()
    return (
        Advice(
            "platform-name-it",
            f"The platform is {env.label}: pass --platform NAME (see `portprobe "
            "platforms`) for its own unblock step.",
        ),
    )


def _next_steps(said: _Said, word: VerdictWord) -> list[Advice]:
    """The platform's own step for ``word``: its unblock path, or where else to look."""
    label, maybe, policy, relay = said.label, said.maybe, said.policy, said.entry.relay
    advice = []
    open_ports = [p for p in RELAY_PORTS if p not in policy.blocked]
    if word in ("blocked", "partial", "inconclusive") and 25 in policy.blocked:
        advice.append(
            Advice(
                "platform-unblock-step",
                f"{label} {maybe}blocks outbound {_ports_phrase(policy.blocked)} by default. "
                f"{policy.how}. {_cite(policy)}",
                replaces=_OWN_STEP_REPLACES if policy.unblock != "unknown" else (),
            )
        )
        if open_ports:
            verb = "is" if len(open_ports) == 1 else "are"
            advice.append(
                Advice(
                    "platform-open-ports",
                    f"{_ports_phrase(open_ports).capitalize()} {verb} not blocked on {label}: "
                    "send through your mail provider's submission service or a relay "
                    "(smarthost) there, with authentication.",
                    ports=tuple(open_ports),
                )
            )
        if relay is not None:
            advice.append(Advice("platform-relay", f"{label}'s own way to send mail: {relay}."))
    elif word in ("blocked", "partial") and policy.unblock == "unknown":
        advice.append(Advice("platform-unblock-step", f"{label}: {policy.how}. {_cite(policy)}"))
    elif word in ("blocked", "partial"):
        advice.append(
            Advice(
                "platform-block-elsewhere",
                f"{label} {maybe}does not block port 25 by default, so the block is "
                "elsewhere: the machine's own firewall, a security group or network ACL, or "
                f"the network beyond. {policy.how}. {_cite(policy)}",
            )
        )
    if word == "restricted" and relay is not None:
        advice.append(
            Advice(
                "platform-relay",
                f"Receivers often refuse cloud addresses: send through {relay} instead.",
            )
        )
    return advice


def _port25_notes(said: _Said, word: VerdictWord, variant: str | None) -> list[str]:
    """The platform's documented port-25 policy held against the verdict."""
    label, maybe, policy = said.label, said.maybe, said.policy
    notes = []
    if word in ("blocked", "partial") and 25 not in policy.blocked and policy.unblock != "unknown":
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
            exempt = [v.label for v in said.entry.variants if 25 not in v.policy.blocked]
            also = (
                f", or the subscription type ({', '.join(exempt)}) is not blocked"
                if (exempt and variant is None)
                else ""
            )
            notes.append(
                f"{label} {maybe}blocks port 25 by default, and it answered here: the limit "
                f"was lifted for this account{also} (or the traffic leaves through a VPN "
                "or proxy)."
            )
    if word == "intercepted":
        notes.append(
            f"A middlebox on port 25 is not part of {label}'s documented policy: look for a "
            "proxy, antivirus mail shield or VPN on this machine or its network."
        )
    return notes


def _other_port_notes(
    said: _Said, word: VerdictWord, ports: Mapping[int, PortSummary]
) -> list[str]:
    """Each other port the platform blocks, held against what was measured on it."""
    label, maybe = said.label, said.maybe
    notes = []
    for port in said.policy.blocked:
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
    return notes


def filter_generic_advice(
    advice: tuple[Advice, ...], env: Environment | None, platforms: PlatformCatalog
) -> tuple[Advice, ...]:
    """The generic advice without the steps this platform makes wrong.

    Drops a step through a port other than 25 that the platform blocks (its ``ports``),
    and a step whose code the platform's own advice replaces (``env.advice``, from
    ``advise``: its unblock step replaces "ask the ISP (or cloud provider) to lift").
    """
    if env is None:
        return advice
    found = _entry(env, platforms)
    if found is None:
        return advice
    _, policy = found
    blocked = [p for p in policy.blocked if p != 25]
    return without_replaced(without_ports(advice, blocked), by=env.advice)
