"""JUnit XML: one test case per probed port, and one per mail-readiness check.

A port's case fails when no host gave a genuine SMTP greeting on it; a readiness case fails
when the check failed (no PTR, PTR not confirmed, a generic name, a DNSBL listing) and is
skipped when it could not be decided (``temperror``, a DNSBL error code). The verdict and
the environment (platform, CI) go in the suite's properties, the reasons in system-out.

XML 1.0 forbids most C0 controls outright (a parser rejects the whole file), so every
string goes through ``visible()`` first; ElementTree then escapes ``&``, ``<`` and quotes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from portprobe.outcome import iso_utc
from portprobe.text import shorten, visible

if TYPE_CHECKING:
    from portprobe.model import ProbeResult
    from portprobe.mta.model import MtaView
    from portprobe.outcome import Observed, Report
    from portprobe.readiness.model import Readiness


def _text(value: object) -> str:
    return visible("" if value is None else str(value), keep_newlines=True)


def _one(value: object, width: int | None = None) -> str:
    text = visible("" if value is None else str(value))
    return shorten(text, width) if width else text


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _greeting(r: ProbeResult) -> str:
    if r.greeting is None:
        if r.error is not None and r.state not in ("open", "rejected"):
            return _one(f"({r.error.errno or r.error.kind})")
        return "-"
    first = r.greeting.lines[0] if r.greeting.lines else ""
    return _one(f"{r.greeting.code} {first}".rstrip())


def _tls(o: Observed) -> str:
    r = o.result
    if r.tls is None:
        if r.state == "tls-error" or "starttls-handshake-failed" in o.anomalies:
            return "failed"
        return "stripped" if r.starttls == "stripped" else "-"
    version = _one(r.tls.version or "TLS")
    if r.tls.verified:
        return f"{version} verified"
    return _one(f"{version} not verified: {r.tls.verify_error or 'unknown reason'}", 60)


def _probe_line(o: Observed) -> str:
    s = o.result.spec
    anomalies = ", ".join(_one(a) for a in o.anomalies)
    return (
        f"{_one(s.host)} [{_one(s.address or '-')}] {_one(s.family or '-')}: "
        f"{_one(o.result.state)}; greeting {_greeting(o.result)}; TLS {_tls(o)}; "
        f"{_ms(o.result.timings.total)} ms" + (f"; anomalies: {anomalies}" if anomalies else "")
    )


@dataclass(frozen=True)
class Check:
    """One readiness check as a test case: ``failure`` / ``skipped`` say why it did not pass."""

    name: str
    detail: str
    failure: str | None = None
    skipped: str | None = None
    kind: str = "readiness"  # or "mta": the local mail server's queue


def readiness_checks(readiness: Readiness) -> Iterator[Check]:
    """Every readiness check the report holds, in the spec's order."""
    for fam, addresses in sorted(readiness.public_addresses.items()):
        if addresses:
            yield Check(f"public address {fam}", ", ".join(addresses))
    if not any(readiness.public_addresses.values()):
        yield Check("public address", "", skipped="no method found the public address")
    for p in readiness.ptr:
        detail = f"{p.address}: PTR {', '.join(p.names) or 'none'}; iprev {p.iprev}"
        if p.message:
            detail += f"; {p.message}"
        if p.iprev == "pass":
            yield Check(f"ptr {p.address}", detail)
        elif p.iprev == "temperror":
            yield Check(f"ptr {p.address}", detail, skipped=f"iprev {p.iprev}")
        else:
            yield Check(f"ptr {p.address}", detail, failure=f"iprev {p.iprev}")
    for g in readiness.generic_name:
        detail = f"{g.name}: " + (f"looks dynamic ({g.matched})" if g.generic else "not generic")
        yield Check(f"generic name {g.name}", detail, failure="generic name" if g.generic else None)
    e = readiness.ehlo_name
    if e is not None:
        detail = (
            f"{e.name} -> {', '.join(e.addresses) or 'no address'}; resolves to the public "
            f"address: {e.resolves_to_public}; matches PTR: {e.matches_ptr}"
        )
        bad = e.resolves_to_public is False or e.matches_ptr is False
        unknown = e.resolves_to_public is None and e.matches_ptr is None
        yield Check(
            f"ehlo name {e.name}",
            detail,
            failure=(e.message or "EHLO name does not match") if bad else None,
            skipped=(e.message or "could not be checked") if unknown and not bad else None,
        )
    for d in readiness.dnsbl:
        detail = f"{d.address} in {d.zone}: {d.status}"
        if d.meanings:
            detail += f" ({', '.join(d.meanings)})"
        if d.reason:
            detail += f"; {d.reason}"
        name = f"dnsbl {d.zone} {d.address}"
        if d.status == "listed":
            yield Check(name, detail, failure="listed")
        elif d.status == "unknown":
            yield Check(name, detail, skipped=d.reason or "unknown")
        else:
            yield Check(name, detail)


def _mta_check(view: MtaView) -> Check:
    from portprobe.render.mta import mta_headline

    detail = "\n".join([mta_headline(view), *view.findings, *(a.text for a in view.advice)])
    failure = None
    if view.queue.readable and view.queue.deferred:
        failure = mta_headline(view)
    skipped = None if view.queue.readable else "the mail queue could not be read"
    return Check(f"mail server ({view.label})", detail, failure, skipped, kind="mta")


def render_junit(report: Report) -> str:
    from portprobe.render.cells import verdict_line
    from portprobe.render.path import where_line

    v = report.verdict
    tested = sorted((port, s) for port, s in report.ports.items() if s.tested)
    checks = list(readiness_checks(report.readiness)) if report.readiness is not None else []
    failures = sum(1 for _, s in tested if s.state != "open")
    mta = report.mta
    if mta is not None:  # one more case: the local mail server's queue holds no deferral
        checks.append(_mta_check(mta))
    failures += sum(1 for c in checks if c.failure is not None)
    skipped = sum(1 for c in checks if c.skipped is not None and c.failure is None)
    total = str(len(tested) + len(checks))
    seconds = f"{report.duration_ms / 1000:.3f}"
    root = ET.Element(
        "testsuites",
        name="portprobe",
        tests=total,
        failures=str(failures),
        errors="0",
        time=seconds,
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name="portprobe.ports",
        tests=total,
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=seconds,
        timestamp=_text(iso_utc(report.started_at)),
    )
    env = report.environment
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict.port25", v.port25),
        ("verdict.confidence", v.confidence),
        ("verdict.failure_mode", v.failure_mode),
        *((f"verdict.{f}", s) for f, s in v.families.items()),
        ("tool.version", report.tool_version),
        ("interrupted", str(report.interrupted).lower()),
        ("environment.platform", env.platform if env is not None else None),
        ("environment.ci", env.ci if env is not None else None),
        ("readiness.ready", report.readiness.ready if report.readiness is not None else None),
        ("mta.kind", mta.kind if mta is not None else None),
    ):
        ET.SubElement(props, "property", name=_text(name), value=_text(value if value else "-"))
    blocker = report.path.blocker if report.path is not None else None
    if blocker is not None:
        for name, value in (
            ("path.where", blocker.where),
            ("path.how", blocker.how),
            ("path.hop", str(blocker.hop)),
        ):
            ET.SubElement(props, "property", name=name, value=_text(value))
    probes = [o for o in report.probes if not o.result.spec.negative]
    for port, summary in tested:
        mine = [o for o in probes if o.result.spec.port == port]
        slowest = max((o.result.timings.total or 0.0 for o in mine), default=0.0)
        case = ET.SubElement(
            suite,
            "testcase",
            classname="portprobe.port",
            name=f"port {port}",
            time=f"{slowest / 1000:.3f}",
        )
        lines = "\n".join(_probe_line(o) for o in mine)
        if summary.state != "open":
            failure = ET.SubElement(
                case,
                "failure",
                type=_text(summary.state),
                message=_text(
                    f"port {port}: no genuine SMTP greeting on any host ({summary.state})"
                ),
            )
            failure.text = lines
        ET.SubElement(case, "system-out").text = lines
    for check in checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"portprobe.{check.kind}", name=_one(check.name), time="0"
        )
        if check.failure is not None:
            failure = ET.SubElement(
                case, "failure", type=check.kind, message=_one(check.failure, 200)
            )
            failure.text = _text(check.detail)
        elif check.skipped is not None:
            ET.SubElement(case, "skipped", message=_one(check.skipped, 200))
        ET.SubElement(case, "system-out").text = _text(check.detail)
    out = [_one(verdict_line(report))]
    if (where := where_line(report)) is not None:
        out.append(_one(where))
    out.append("Reasons:")
    out += [f"- {_one(r)}" for r in v.reasons]
    out += ["Advice:"] + [f"- {_one(a.text)}" for a in v.advice]
    if report.readiness is not None:
        out += [f"Mail readiness: {_one(report.readiness.ready)}"]
        out += [f"- {_one(r)}" for r in report.readiness.reasons]
    ET.SubElement(suite, "system-out").text = "\n".join(out)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
