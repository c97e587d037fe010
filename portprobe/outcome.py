"""What a diagnosis produced: the typed, frozen ``Report`` and its parts.

This is the floor the report logic (``portprobe.report``) builds on and the renderers
(``portprobe.render``) read from; neither imports the other. ``Report.to_dict()`` is the one
path to the JSON report (pinned by ``reports/report.schema.json``): every key always
present, ``null`` for a step never reached, so the shape is fixed for ``jq``.

Pure data: no trio, socket, ssl, dns or typer (tests/test_layers.py holds that line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from portprobe.advice import Advice, texts
from portprobe.environment.model import Environment
from portprobe.model import DNSQuery, ProbeResult, ProbeSpec
from portprobe.mta.model import MtaView
from portprobe.path.model import PathReport
from portprobe.readiness.model import Readiness
from portprobe.vocab import (
    Confidence,
    FailureMode,
    Family,
    FamilyVerdictWord,
    Refusal,
    VerdictWord,
)

SCHEMA_VERSION: Final = 1
TOOL_NAME: Final = "portprobe"


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the millisecond; a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Verdict:
    """The port-25 decision: overall, per family, with its evidence and what to do."""

    port25: VerdictWord
    families: Mapping[Family, FamilyVerdictWord]
    confidence: Confidence
    reasons: tuple[str, ...]
    advice: tuple[Advice, ...]
    failure_mode: FailureMode | None = None  # only for blocked / partial
    refusal: Refusal | None = None  # only for restricted: why the receivers refuse

    def to_dict(self) -> dict[str, Any]:
        return {
            "port25": self.port25,
            "families": dict(self.families),
            "confidence": self.confidence,
            "reasons": list(self.reasons),
            "advice": list(texts(self.advice)),
            "failure_mode": self.failure_mode,
            "refusal": self.refusal,
        }


@dataclass(frozen=True)
class Observed:
    """One probe as the report sees it: the engine's result, annotated once.

    ``anomalies`` holds the probe's own codes and the cross-probe ones (a greeting shared by
    two providers, a certificate unlike port 587's), ordered and without repeats;
    ``genuine`` is "a real server of this host greeted with 2xx, with no middlebox sign".
    """

    result: ProbeResult
    anomalies: tuple[str, ...]
    genuine: bool
    greeting_domain: str | None

    @property
    def spec(self) -> ProbeSpec:
        return self.result.spec

    def to_dict(self) -> dict[str, Any]:
        out = self.result.to_dict()
        out["anomalies"] = list(self.anomalies)
        if out["greeting"] is not None:
            out["greeting"]["domain"] = self.greeting_domain
        out["genuine"] = self.genuine
        return out


@dataclass(frozen=True)
class PortCounts:
    probes: int = 0
    reachable: int = 0
    greeting_ok: int = 0
    genuine: int = 0
    tls_ok: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "probes": self.probes,
            "reachable": self.reachable,
            "greeting_ok": self.greeting_ok,
            "genuine": self.genuine,
            "tls_ok": self.tls_ok,
        }


@dataclass(frozen=True)
class PortSummary:
    """How one port fared across hosts; negative controls are left out (they should fail)."""

    tested: bool
    reachable: bool
    greeting_ok: bool
    genuine: bool
    tls_ok: bool | None  # None: no TLS was attempted on this port
    state: str  # see reports/README.md "ports[].state"
    counts: PortCounts = field(default_factory=PortCounts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tested": self.tested,
            "reachable": self.reachable,
            "greeting_ok": self.greeting_ok,
            "genuine": self.genuine,
            "tls_ok": self.tls_ok,
            "state": self.state,
            "counts": self.counts.to_dict(),
        }


@dataclass(frozen=True)
class Summary:
    probes: int
    providers: int
    states: Mapping[str, int]
    anomalies: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "probes": self.probes,
            "providers": self.providers,
            "states": dict(self.states),
            "anomalies": dict(self.anomalies),
        }


@dataclass(frozen=True)
class Report:
    """One run of ``diagnose``: built once by ``portprobe.report.build_report``."""

    tool_version: str
    started_at: datetime
    finished_at: datetime
    interrupted: bool
    parameters: Mapping[str, Any]  # DiagnoseRequest.to_dict()
    verdict: Verdict
    ports: Mapping[int, PortSummary]
    summary: Summary
    probes: tuple[Observed, ...]
    dns: tuple[DNSQuery, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    readiness: Readiness | None = None  # None: --no-readiness
    environment: Environment | None = None
    hostname: str | None = None  # the vantage point: this machine's own name
    path: PathReport | None = None  # None: no trace was considered (spec "Path")
    mta: MtaView | None = None  # None: no local mail server found, or --mta none
    #: Planned probes that were still running when the run was interrupted (none when it
    #: was not): the views show them as such, never as "not probed".
    unfinished: tuple[ProbeSpec, ...] = ()

    def vantage(self) -> dict[str, Any]:
        """Where the report was taken: what ``portprobe merge`` names each row by."""
        public = self.readiness.public_addresses if self.readiness is not None else {}
        env = self.environment
        return {
            "hostname": self.hostname,
            "public_addresses": {family: list(a) for family, a in public.items()},
            "platform": env.platform if env is not None else None,
            "ci": env.ci if env is not None else None,
        }

    @property
    def duration_ms(self) -> float:
        return round(max(0.0, (self.finished_at - self.started_at).total_seconds() * 1000), 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": TOOL_NAME, "version": self.tool_version},
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "duration_ms": self.duration_ms,
            "interrupted": self.interrupted,
            "parameters": dict(self.parameters),
            "verdict": self.verdict.to_dict(),
            "ports": {str(port): s.to_dict() for port, s in sorted(self.ports.items())},
            "summary": self.summary.to_dict(),
            "probes": [p.to_dict() for p in self.probes],
            "dns": [q.to_dict() for q in self.dns],
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "readiness": self.readiness.to_dict() if self.readiness is not None else None,
            "environment": self.environment.to_dict() if self.environment is not None else None,
            "vantage": self.vantage(),
            "mta": self.mta.to_dict() if self.mta is not None else None,
            "path": (self.path or PathReport()).to_dict(),
        }
