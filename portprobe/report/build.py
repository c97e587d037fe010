"""The report of one run, built once: results in, a typed ``portprobe.outcome.Report`` out.

Each probe is annotated once (its own and the cross-probe anomalies, ``genuine``), the
verdict is decided from those annotations, and the per-port summary counts them: the
renderers read this one object, so every format says the same thing. ``Report.to_dict()``
is the JSON report (reports/report.schema.json).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from portprobe.environment.model import Environment
from portprobe.model import Plan, ProbeResult, ProbeSpec
from portprobe.outcome import (
    SCHEMA_VERSION,
    Observed,
    PortCounts,
    PortSummary,
    Report,
    Summary,
    Verdict,
    iso_utc,
)
from portprobe.readiness.model import Readiness
from portprobe.report.annotate import INTERCEPTION, annotate
from portprobe.report.verdict import decide
from portprobe.vocab import MAIL_PORTS

__all__ = ["SCHEMA_VERSION", "build_report", "iso_utc", "port_state", "ports_summary"]

INTERRUPTED_NOTE = "Interrupted: probes that had not finished are missing from this report."


def _tls_attempted(probe: Observed) -> bool:
    r = probe.result
    return (
        r.tls is not None
        or r.state == "tls-error"
        or "starttls-handshake-failed" in probe.anomalies
    )


def port_state(probes: Sequence[Observed]) -> str:
    """One word for how a port fared across hosts (documented in reports/README.md).

    ``open`` if any host greeted genuinely; else ``intercepted`` if a greeting came with
    middlebox evidence; else ``rejected`` if a host greeted with 4xx/5xx; else the probe
    state all the rest ended in, or ``mixed`` when they differ; ``untested`` if none.
    """
    if not probes:
        return "untested"
    if any(p.genuine for p in probes):
        return "open"
    if any(p.result.greeting is not None and INTERCEPTION & set(p.anomalies) for p in probes):
        return "intercepted"
    if any(p.result.state == "rejected" for p in probes):
        return "rejected"
    states = {p.result.state for p in probes}
    return states.pop() if len(states) == 1 else "mixed"


def ports_summary(probes: Sequence[Observed], ports: Sequence[int]) -> dict[int, PortSummary]:
    """Per port: did anything get through? Negative controls are left out (they should fail)."""
    by_port: dict[int, list[Observed]] = {port: [] for port in (*MAIL_PORTS, *ports)}
    for p in probes:  # one pass, grouped by port: linear in the number of probes
        group = by_port.setdefault(p.result.spec.port, [])
        if not p.result.spec.negative:
            group.append(p)
    out: dict[int, PortSummary] = {}
    for port, mine in sorted(by_port.items()):
        reachable = [p for p in mine if p.result.timings.connect is not None]
        greeting_ok = [p for p in mine if p.result.state == "open"]
        genuine = [p for p in mine if p.genuine]
        tls_tried = [p for p in mine if _tls_attempted(p)]
        tls_ok = [p for p in tls_tried if p.result.tls is not None and p.result.tls.verified]
        out[port] = PortSummary(
            tested=bool(mine),
            reachable=bool(reachable),
            greeting_ok=bool(greeting_ok),
            genuine=bool(genuine),
            tls_ok=bool(tls_ok) if tls_tried else None,
            state=port_state(mine),
            counts=PortCounts(
                probes=len(mine),
                reachable=len(reachable),
                greeting_ok=len(greeting_ok),
                genuine=len(genuine),
                tls_ok=len(tls_ok),
            ),
        )
    return out


def unfinished(plan: Plan, results: Sequence[ProbeResult]) -> tuple[ProbeSpec, ...]:
    """The planned probes that have no result: those still running at an interruption."""
    missing = Counter(plan.specs)
    missing.subtract(r.spec for r in results)
    out = []
    for spec in plan.specs:  # in plan order; a spec planned twice is missing twice at most
        if missing[spec] > 0:
            missing[spec] -= 1
            out.append(spec)
    return tuple(out)


def build_report(
    *,
    results: Sequence[ProbeResult],
    plan: Plan,
    parameters: Mapping[str, Any],
    tool_version: str,
    started_at: datetime,
    finished_at: datetime,
    interrupted: bool,
    used_catalog: bool = False,
    warnings: Sequence[str] = (),
    readiness: Readiness | None = None,
    environment: Environment | None = None,
    hostname: str | None = None,
    verdict: Verdict | None = None,
) -> Report:
    """The report of one run; ``verdict`` overrides the decision (tests only)."""
    observed = annotate(results)
    still_running = unfinished(plan, results) if interrupted else ()
    if verdict is None:
        verdict = decide(observed, plan.dns, used_catalog=used_catalog, unfinished=still_running)
    notes = [*plan.notes, *([INTERRUPTED_NOTE] if interrupted else [])]
    anomaly_counts = Counter(code for p in observed for code in p.anomalies)
    return Report(
        tool_version=tool_version,
        started_at=started_at,
        finished_at=finished_at,
        interrupted=interrupted,
        parameters=dict(parameters),
        verdict=verdict,
        ports=ports_summary(observed, sorted({s.port for s in plan.specs})),
        summary=Summary(
            probes=len(observed),
            providers=len({r.spec.provider_key for r in results}),
            states=dict(sorted(Counter(p.result.state for p in observed).items())),
            anomalies=dict(sorted(anomaly_counts.items())),
        ),
        probes=observed,
        dns=tuple(plan.dns),
        notes=tuple(notes),
        warnings=tuple(warnings),
        readiness=readiness,
        environment=environment,
        hostname=hostname,
        unfinished=still_running,
    )
