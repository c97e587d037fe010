"""The JSON report (spec "JSON report"; schema in reports/report.schema.json) and exit codes.

One dict, built once, from which every output format is rendered: the table, Markdown
and JUnit renderers read this dict, never the results, so they cannot disagree with JSON.
Every key is always present; a step never reached is ``null``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from portprobe import exit_codes
from portprobe.model import MAIL_PORTS, Plan, ProbeResult
from portprobe.outcome import Verdict
from portprobe.protocol.smtp import greeting_domain
from portprobe.report.annotate import INTERCEPTION, all_anomalies, annotate, is_genuine

SCHEMA_VERSION: Final = 1
TOOL_NAME: Final = "portprobe"

EXIT_CODES: Final = exit_codes.VERDICT
EXIT_ASSERTION: Final = exit_codes.ASSERTION
EXIT_INTERRUPTED: Final = exit_codes.INTERRUPTED


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the millisecond; a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def probe_dict(result: ProbeResult, extra_anomalies: Sequence[str] = ()) -> dict[str, Any]:
    """``ProbeResult.to_dict()`` plus the cross-probe anomalies and two derived fields."""
    codes = all_anomalies(result, extra_anomalies)
    out = result.to_dict()
    out["anomalies"] = list(codes)
    if out["greeting"] is not None and result.greeting is not None:
        out["greeting"]["domain"] = greeting_domain(result.greeting)
    out["genuine"] = is_genuine(result, codes)
    return out


def _tls_attempted(probe: dict[str, Any]) -> bool:
    return (
        probe["tls"] is not None
        or probe["state"] == "tls-error"
        or "starttls-handshake-failed" in probe["anomalies"]
    )


def port_state(probes: Sequence[dict[str, Any]]) -> str:
    """One word for how a port fared across hosts (documented in reports/README.md).

    ``open`` if any host greeted genuinely; else ``intercepted`` if a greeting came with
    middlebox evidence; else ``rejected`` if a host greeted with 4xx/5xx; else the probe
    state all the rest ended in, or ``mixed`` when they differ; ``untested`` if none.
    """
    if not probes:
        return "untested"
    if any(p["genuine"] for p in probes):
        return "open"
    if any(p["greeting"] is not None and INTERCEPTION & set(p["anomalies"]) for p in probes):
        return "intercepted"
    if any(p["state"] == "rejected" for p in probes):
        return "rejected"
    states = {p["state"] for p in probes}
    return states.pop() if len(states) == 1 else "mixed"


def ports_summary(probes: Sequence[dict[str, Any]], ports: Sequence[int]) -> dict[str, Any]:
    """Per port: did anything get through? Negative controls are left out (they should fail)."""
    out: dict[str, Any] = {}
    for port in sorted({*MAIL_PORTS, *ports, *(p["port"] for p in probes)}):
        mine = [p for p in probes if p["port"] == port and not p["negative_control"]]
        reachable = [p for p in mine if p["timings_ms"]["connect"] is not None]
        greeting_ok = [p for p in mine if p["state"] == "open"]
        genuine = [p for p in mine if p["genuine"]]
        tls_tried = [p for p in mine if _tls_attempted(p)]
        tls_ok = [p for p in tls_tried if p["tls"] is not None and p["tls"]["verified"]]
        out[str(port)] = {
            "tested": bool(mine),
            "reachable": bool(reachable),
            "greeting_ok": bool(greeting_ok),
            "genuine": bool(genuine),
            "tls_ok": bool(tls_ok) if tls_tried else None,
            "state": port_state(mine),
            "counts": {
                "probes": len(mine),
                "reachable": len(reachable),
                "greeting_ok": len(greeting_ok),
                "genuine": len(genuine),
                "tls_ok": len(tls_ok),
            },
        }
    return out


def build_report(
    *,
    results: Sequence[ProbeResult],
    plan: Plan,
    verdict: Verdict,
    parameters: dict[str, Any],
    tool_version: str,
    started_at: datetime,
    finished_at: datetime,
    interrupted: bool,
) -> dict[str, Any]:
    """The spec's JSON report for one run."""
    probes = [probe_dict(o.result, o.anomalies) for o in annotate(results)]
    duration = max(0.0, (finished_at - started_at).total_seconds() * 1000)
    notes = list(plan.notes)
    if interrupted:
        notes.append("Interrupted: probes that had not finished are missing from this report.")
    anomaly_counts = Counter(code for p in probes for code in p["anomalies"])
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": tool_version},
        "started_at": iso_utc(started_at),
        "finished_at": iso_utc(finished_at),
        "duration_ms": round(duration, 1),
        "interrupted": interrupted,
        "parameters": dict(parameters),
        "verdict": verdict.to_dict(),
        "ports": ports_summary(probes, sorted({s.port for s in plan.specs})),
        "summary": {
            "probes": len(probes),
            "providers": len({r.spec.provider_key for r in results}),
            "states": dict(sorted(Counter(p["state"] for p in probes).items())),
            "anomalies": dict(sorted(anomaly_counts.items())),
        },
        "probes": probes,
        "dns": [q.to_dict() for q in plan.dns],
        "notes": notes,
        "warnings": [],
    }


def check_assertions(
    report: dict[str, Any], *, expect: Sequence[str] = (), require_ports: Sequence[int] = ()
) -> str | None:
    """``None`` when every ``--expect`` / ``--require-port`` holds, else one line saying why."""
    failed = []
    port25 = report["verdict"]["port25"]
    if expect and port25 not in expect:
        failed.append(f"port-25 verdict is {port25}, expected {' or '.join(expect)}")
    for port in dict.fromkeys(require_ports):
        entry = report["ports"].get(str(port))
        if entry is None or not entry["tested"]:
            failed.append(f"port {port} was not probed")
        elif not entry["greeting_ok"]:
            failed.append(f"port {port} gave no SMTP greeting on any host ({entry['state']})")
    return "; ".join(failed) if failed else None


def exit_code(
    report: dict[str, Any], assertion_failure: str | None, *, expect_given: bool = False
) -> int:
    """The spec's exit code: 130 if interrupted, 9 if an assertion failed, 0 when a given
    ``--expect`` holds (the CI job asked for exactly that verdict), else the verdict's code.
    """
    if report["interrupted"]:
        return EXIT_INTERRUPTED
    if assertion_failure is not None:
        return EXIT_ASSERTION
    if expect_given:
        return 0
    return EXIT_CODES[report["verdict"]["port25"]]
