"""``--redact``: the report with this machine's public addresses and PTR names hidden.

For pasting a report into a forum or an issue. What is hidden is what readiness learned
about *us* (``Readiness.redaction_terms()``: the public addresses, the PTR names, the
addresses servers echoed) plus ``--public-ip`` and this machine's host name; the servers
we probed stay visible, since they are the evidence. Every string anywhere in the report
is rewritten (greeting and EHLO text included, where a server echoes ``[our address]``),
so no renderer can leak one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeVar

from portprobe.outcome import Report

T = TypeVar("T")


def redaction_terms(report: Report) -> tuple[str, ...]:
    terms = list(report.parameters.get("public_ips") or ())
    if report.hostname:
        terms.append(report.hostname)
    if report.readiness is not None:
        terms += report.readiness.redaction_terms()
    # Longest first, so a name is replaced before an address that happens to be inside it.
    return tuple(sorted({t for t in terms if t}, key=len, reverse=True))


def _labels(terms: tuple[str, ...]) -> dict[str, str]:
    labels: dict[str, str] = {}
    counts = {"address": 0, "name": 0}
    for term in sorted(terms):
        kind = "address" if (":" in term or term.replace(".", "").isdigit()) else "name"
        counts[kind] += 1
        labels[term.lower()] = f"<redacted-{kind}-{counts[kind]}>"
    return labels


def redact_report(report: Report) -> Report:
    """A copy of ``report`` in which every redaction term is replaced by a stable label."""
    terms = redaction_terms(report)
    if not terms:
        return report
    labels = _labels(terms)
    pattern = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)

    def text(value: str) -> str:
        return pattern.sub(lambda m: labels[m.group(0).lower()], value)

    def walk(value: T) -> T:
        if isinstance(value, str):
            return text(value)  # type: ignore[return-value]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {f.name: walk(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return dataclasses.replace(value, **changes)
        if isinstance(value, tuple):
            return tuple(walk(v) for v in value)  # type: ignore[return-value]
        if isinstance(value, list):
            return [walk(v) for v in value]  # type: ignore[return-value]
        if isinstance(value, Mapping):
            out = {walk(k): walk(v) for k, v in value.items()}
            return MappingProxyType(out) if isinstance(value, MappingProxyType) else out  # type: ignore[return-value]
        return value

    return walk(report)
