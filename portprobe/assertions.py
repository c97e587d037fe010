"""CI assertions over a finished report (``--expect``, ``--require-port``, ``--require-ready``).

Pure, beside ``outcome``: the exit code and the Nagios state both need it, and the
renderers may not import the report logic.
"""

from __future__ import annotations

from collections.abc import Sequence

from portprobe.outcome import Report


def check_assertions(
    report: Report,
    *,
    expect: Sequence[str] = (),
    require_ports: Sequence[int] = (),
    require_ready: bool = False,
) -> str | None:
    """``None`` when every assertion holds, else one line saying which failed and why."""
    failed = []
    port25 = report.verdict.port25
    if expect and port25 not in expect:
        failed.append(f"port-25 verdict is {port25}, expected {' or '.join(expect)}")
    for port in dict.fromkeys(require_ports):
        entry = report.ports.get(port)
        if entry is None or not entry.tested:
            failed.append(f"port {port} was not probed")
        elif not entry.greeting_ok:
            failed.append(f"port {port} gave no SMTP greeting on any host ({entry.state})")
    if require_ready:
        ready = report.readiness.ready if report.readiness is not None else None
        if ready is None:
            failed.append("mail readiness was not checked (--no-readiness)")
        elif ready != "yes":
            failed.append(f"mail readiness is {ready}, expected yes")
    return "; ".join(failed) if failed else None
