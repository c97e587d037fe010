"""JUnit XML: one test case per probed port, so CI dashboards show which port failed.

A port's case fails when no host gave a genuine SMTP greeting on it; the verdict goes in
the suite's properties and system-out. XML 1.0 forbids most C0 controls outright (a
parser rejects the whole file), so every string goes through ``visible()`` first;
ElementTree then escapes ``&``, ``<`` and quotes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from portprobe.protocol.text import visible
from portprobe.render.dict_cells import greeting_cell, ms_cell, safe, tls_cell, verdict_line


def _text(value: object) -> str:
    return visible("" if value is None else str(value), keep_newlines=True)


def _probe_line(probe: dict[str, Any]) -> str:
    anomalies = ", ".join(safe(a) for a in probe.get("anomalies") or [])
    return (
        f"{safe(probe.get('host'))} [{safe(probe.get('address') or '-')}] "
        f"{safe(probe.get('family') or '-')}: {safe(probe.get('state'))}; "
        f"greeting {greeting_cell(probe)}; TLS {tls_cell(probe)}; "
        f"{ms_cell((probe.get('timings_ms') or {}).get('total'))} ms"
        + (f"; anomalies: {anomalies}" if anomalies else "")
    )


def render_junit(report: dict[str, Any]) -> str:
    v = report["verdict"]
    probes = [p for p in report.get("probes") or [] if not p.get("negative_control")]
    ports = report.get("ports") or {}
    tested = sorted((int(k), s) for k, s in ports.items() if s.get("tested"))
    failures = sum(1 for _, s in tested if s.get("state") != "open")
    seconds = f"{float(report.get('duration_ms') or 0) / 1000:.3f}"
    root = ET.Element(
        "testsuites",
        name="portprobe",
        tests=str(len(tested)),
        failures=str(failures),
        errors="0",
        time=seconds,
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name="portprobe.ports",
        tests=str(len(tested)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=seconds,
        timestamp=_text(report.get("started_at")),
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict.port25", v.get("port25")),
        ("verdict.confidence", v.get("confidence")),
        ("verdict.failure_mode", v.get("failure_mode")),
        *((f"verdict.{f}", s) for f, s in (v.get("families") or {}).items()),
        ("tool.version", (report.get("tool") or {}).get("version")),
        ("interrupted", str(bool(report.get("interrupted"))).lower()),
    ):
        ET.SubElement(props, "property", name=_text(name), value=_text(value if value else "-"))
    for port, summary in tested:
        mine = [p for p in probes if p.get("port") == port]
        slowest = max(
            (float((p.get("timings_ms") or {}).get("total") or 0) for p in mine), default=0.0
        )
        case = ET.SubElement(
            suite,
            "testcase",
            classname="portprobe.port",
            name=f"port {port}",
            time=f"{slowest / 1000:.3f}",
        )
        lines = "\n".join(_probe_line(p) for p in mine)
        if summary.get("state") != "open":
            failure = ET.SubElement(
                case,
                "failure",
                type=_text(summary.get("state")),
                message=_text(
                    f"port {port}: no genuine SMTP greeting on any host ({summary.get('state')})"
                ),
            )
            failure.text = lines
        ET.SubElement(case, "system-out").text = lines
    out = [verdict_line(report), "Reasons:"]
    out += [f"- {safe(r)}" for r in v.get("reasons") or []]
    out += ["Advice:"] + [f"- {safe(a)}" for a in v.get("advice") or []]
    ET.SubElement(suite, "system-out").text = "\n".join(out)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
