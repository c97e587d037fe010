"""A rule's decision: one frozen ``Finding``, and the few phrasing helpers rules share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from portprobe.advice import Advice
from portprobe.model import ProbeResult
from portprobe.report.evidence import Provider25
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
    settle: tuple[Advice, ...] = ()  # inconclusive: what would decide it
    refusal: Refusal | None = None  # restricted: why the receivers refuse this client
    split: tuple[Family, Family] | None = None  # partial by family: (blocked, open)
    interrupted: bool = False  # no connection yet when the run was interrupted


def names(providers: Sequence[Provider25], limit: int = 4) -> str:
    labels = sorted(p.label for p in providers)
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(labels[:limit]) + more


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def state_counts(results: Sequence[ProbeResult]) -> str:
    counts = Counter(r.state for r in results)
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
