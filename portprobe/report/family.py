"""One address family's port-25 verdict: an ordered list of named rules.

Within a family the rules are tried in order; the first that applies decides. Each rule
reads the family's frozen evidence (``evidence.py``: counted per provider) and returns a
frozen ``Finding`` carrying its own advice hints (``settle``: what would decide an
inconclusive run), or ``None`` to pass. The rules live by group: ``rules_answers.py`` (who
answered port 25: a middlebox, refusing receivers, real servers) and ``rules_path.py``
(port 25 failing on the path). ``verdict.py`` combines the families.

Reasons are sentences built from counts and host names; server text only appears quoted
through ``visible()`` and shortened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from portprobe.report.evidence import FamilyEvidence
from portprobe.report.finding import Finding, state_counts
from portprobe.report.rules_answers import (
    rule_middlebox_answers_25,
    rule_port25_answers,
    rule_receivers_refuse_client,
)
from portprobe.report.rules_path import rule_port25_fails_everywhere, rule_some_destinations_fail
from portprobe.report.settle import CHECK_PROBE_ERRORS, INCLUDE_PORT25, STILL_RUNNING_SETTLE

__all__ = ["RULES", "STILL_RUNNING_SETTLE", "Finding", "Rule", "decide_family"]

# --- the rules, in order ------------------------------------------------------------------
# Each takes the family's evidence and returns a Finding, or None to pass to the next.

Rule = Callable[[FamilyEvidence], Finding | None]


def rule_port25_not_probed(ev: FamilyEvidence) -> Finding | None:
    # Without a port-25 probe there is nothing to judge (e.g. --ports 587), or nothing yet
    # when the run was interrupted while port 25 was still being probed.
    if ev.providers:
        return None
    if 25 in ev.unfinished:
        return Finding(
            "inconclusive",
            "low",
            (f"Port 25 was still being probed over {ev.name} when the run was interrupted.",),
            settle=(STILL_RUNNING_SETTLE,),
        )
    return Finding(
        "inconclusive",
        "low",
        (f"Port 25 was not probed over {ev.name}.",),
        settle=(INCLUDE_PORT25,),
    )


def rule_nothing_usable(ev: FamilyEvidence) -> Finding | None:
    # Only local errors or unresolved names on port 25: no evidence about the path.
    port25 = [o.result for _, o in ev.results if o.result.spec.port == 25]
    return Finding(
        "inconclusive",
        "low",
        (f"No port-25 probe over {ev.name} produced a usable result ({state_counts(port25)}).",),
        settle=(CHECK_PROBE_ERRORS,),
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
    if not ev.connected and ev.unfinished:
        # Interrupted before anything connected here: too early to call it offline or
        # unavailable, since the probes still running might have connected.
        states = state_counts([o.result for _, o in ev.results]) or "none finished"
        return Finding(
            "inconclusive",
            "low",
            (
                f"No connection over {ev.name} had succeeded when the run was interrupted "
                f"({states}; probes on {'ports' if len(ev.unfinished) > 1 else 'port'} "
                f"{'/'.join(map(str, sorted(ev.unfinished)))} still running).",
            ),
            connected=False,
            settle=(STILL_RUNNING_SETTLE,),
            interrupted=True,
        )
    if not ev.connected:
        states = state_counts([o.result for _, o in ev.results])
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
