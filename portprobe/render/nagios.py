"""A monitoring-plugin result (Nagios, Icinga, Checkmk, Zabbix): a status line, detail, perfdata.

The shape is the Monitoring Plugins development guidelines' (doc/developer-guidelines.sgml):

    PORTPROBE CRITICAL - port 25 blocked (dropped; high confidence) | port25=0;;;0;1
    IPv4: blocked; IPv6: unavailable
    port 25: filtered — 0/3 hosts greeted
    ...
    | 'port_25_reachable'=0;;;0;1 'port_25_genuine'=0;;;0;3 ...

- The first line stays under 80 characters (the guidelines' advice; older Nagios kept only
  the first line), carrying one perfdata value; the other lines are the plugin's "long
  output", and the perfdata after the second ``|`` belongs to all of them (Nagios ≥ 3).
- Perfdata is ``'label'=value[UOM];[warn];[crit];[min];[max]``; labels are ours (ASCII,
  unique in their first 19 characters for RRD), UOM ``s`` for seconds, none for counts.
- The exit code follows the plugin convention (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) and
  is decided by ``portprobe.exit_codes.for_report(..., nagios=True)``, never here:
  ``nagios_state`` only names it. Everything that came from the network or a file passes
  through ``visible()`` so a plugin line holds one line and no terminal control.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from portprobe import exit_codes
from portprobe.render.path import where_line
from portprobe.text import shorten, visible
from portprobe.vocab import FAMILY_NAME

if TYPE_CHECKING:
    from portprobe.outcome import Report

STATE_WORD: Final[dict[int, str]] = {
    exit_codes.NAGIOS_OK: "OK",
    exit_codes.NAGIOS_WARNING: "WARNING",
    exit_codes.NAGIOS_CRITICAL: "CRITICAL",
    exit_codes.NAGIOS_UNKNOWN: "UNKNOWN",
}
#: The guidelines' advice for the first line (the part a pager or an SMS shows).
FIRST_LINE_MAX: Final = 79


def nagios_state(
    report: Report, assertion_failure: str | None, *, expect_given: bool = False
) -> str:
    """``OK`` / ``WARNING`` / ``CRITICAL`` / ``UNKNOWN``, the word of the plugin exit code."""
    code = exit_codes.for_report(report, assertion_failure, expect_given=expect_given, nagios=True)
    return STATE_WORD[code]


def expect_failure(report: Report, expect: Sequence[str]) -> str | None:
    """The ``--expect`` part of the CI assertions, for callers that pass only ``expect``."""
    if expect and report.verdict.port25 not in expect:
        return f"expected {' or '.join(expect)}"
    return None


def _line(text: str) -> str:
    """One visible line with no ``|``: a pipe would start the perfdata for the parser."""
    return visible(" ".join(str(text).split())).replace("|", "/")


def _sentence(report: Report, assertion_failure: str | None, room: int) -> str:
    """The verdict in at most ``room`` characters: the word first, the rest as it fits."""
    v = report.verdict
    extras = [assertion_failure] if assertion_failure else []
    extras += ["interrupted"] if report.interrupted else []
    if exit_codes.port25_asked(report):
        text = f"port 25 {v.port25}" + (f" ({v.failure_mode})" if v.failure_mode else "")
        extras.append(f"{v.confidence} confidence")
    else:
        # A submission check (--ports 587): the ports it asked for are the news, not a
        # port-25 verdict it never looked for.
        text = ", ".join(
            f"port {port} {report.ports[port].state if port in report.ports else 'untested'}"
            for port in exit_codes.judged_ports(report)
        )
        text = shorten(_line(text), room)
    for extra in extras:
        candidate = f"{text}, {_line(extra)}"
        if len(candidate) <= room:
            text = candidate
        elif extra is assertion_failure:
            text = shorten(candidate, room)  # the broken expectation must show, even cut
    return _line(text)


def _perf(
    label: str, value: float | None, uom: str = "", lo: int = 0, hi: int | None = None
) -> str:
    if value is None:
        shown = "U"  # the guidelines' "undeterminable"
    else:
        shown = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    tail = f";;;{lo}" + (f";{hi}" if hi is not None else "")
    quoted = label if re.fullmatch(r"[A-Za-z0-9_]+", label) else f"'{label}'"
    return f"{quoted}={shown}{uom if value is not None else ''}{tail}"


def _attempted(report: Report) -> dict[int, list[float | None]]:
    """Per port, the total time of each probe that was tried (not a name that failed to
    resolve, not a negative control): one pass over the probes."""
    out: dict[int, list[float | None]] = {}
    for o in report.probes:
        spec = o.result.spec
        if spec.negative or spec.family is None or o.result.state == "dns-error":
            continue
        out.setdefault(spec.port, []).append(o.result.timings.total)
    return out


def _port_lines(report: Report) -> tuple[list[str], list[str]]:
    lines: list[str] = []
    perf: list[str] = []
    attempted = _attempted(report)
    for port, s in sorted(report.ports.items()):
        if not s.tested:
            continue
        c = s.counts
        tls = "" if s.tls_ok is None else ("; TLS ok" if s.tls_ok else "; TLS failed")
        lines.append(
            f"port {port}: {_line(s.state)}, {c.genuine}/{c.probes} genuine greetings{tls}"
        )
        tried = attempted.get(port, [])
        totals = [t for t in tried if t is not None]
        # Nothing tried on this port (every host name failed to resolve): undeterminable,
        # "U" per the guidelines, never a fake 0.
        perf.append(_perf(f"port_{port}_reachable", int(s.reachable) if tried else None, hi=1))
        perf.append(_perf(f"port_{port}_genuine", c.genuine if tried else None, hi=c.probes))
        time = round(max(totals) / 1000, 3) if totals else None
        perf.append(_perf(f"port_{port}_time", time, "s"))
    return lines, perf


def _head_value(report: Report) -> int | None:
    """``port25``: 1 open, 0 a decided verdict against it, U when undeterminable."""
    if not exit_codes.port25_asked(report):
        return None
    word = report.verdict.port25
    if word == "open":
        return 1
    return None if word in ("inconclusive", "offline") else 0


def run_assertions(report: Report) -> tuple[tuple[str, ...], str | None]:
    """The run's own ``--expect`` and its assertion failure, from ``report.parameters``.

    So ``render("nagios", report)`` says the same as the exit code ``for_report`` gives
    for that run, without the caller threading the options through.
    """
    params = report.parameters
    expect = tuple(str(v) for v in params.get("expect") or ())
    ports = [int(p) for p in params.get("require_ports") or () if str(p).isdigit()]
    from portprobe.assertions import check_assertions

    failure = check_assertions(
        report,
        expect=expect,
        require_ports=ports,
        require_ready=bool(params.get("require_ready")),
    )
    if failure is not None:  # the first line names the verdict already
        failure = failure.replace(f"port-25 verdict is {report.verdict.port25}, ", "", 1)
    return expect, failure


def render_nagios(
    report: Report, *, expect: Sequence[str] = (), assertion_failure: str | None = None
) -> str:
    """The plugin output.

    Without ``expect`` and ``assertion_failure`` the run's own assertions apply (its
    ``--expect``, ``--require-port``, ``--require-ready`` in ``report.parameters``); an
    explicit ``assertion_failure`` (from ``check_assertions``) wins over ``expect``.
    """
    if not expect and assertion_failure is None:
        expect, assertion_failure = run_assertions(report)
    elif assertion_failure is None:
        assertion_failure = expect_failure(report, expect)
    if assertion_failure is not None:
        assertion_failure = _line(assertion_failure)
    state = nagios_state(report, assertion_failure, expect_given=bool(expect))
    head_perf = _perf("port25", _head_value(report), hi=1)
    prefix = f"PORTPROBE {state} - "
    room = FIRST_LINE_MAX - len(prefix) - len(" | ") - len(head_perf)
    first = f"{prefix}{_sentence(report, assertion_failure, room)} | {head_perf}"

    families = "; ".join(
        f"{FAMILY_NAME.get(f, _line(f))}: {_line(w)}" for f, w in report.verdict.families.items()
    )
    port_lines, perf = _port_lines(report)
    detail = [families, *port_lines]
    if (where := where_line(report)) is not None:
        detail.append(_line(where))
    detail += [f"reason: {_line(r)}" for r in report.verdict.reasons]
    detail += [f"advice: {_line(a.text)}" for a in report.verdict.advice]
    if report.readiness is not None:
        detail.append(f"mail readiness: {_line(report.readiness.ready)}")
        perf.append(_perf("ready", {"yes": 1, "no": 0}.get(report.readiness.ready), hi=1))
    if report.mta is not None:
        from portprobe.render.mta import mta_headline

        view = report.mta
        detail.append(f"mta: {_line(mta_headline(view))}")
        detail += [f"mta fix: {_line(a.text)}" for a in view.advice]
        shown = view.queue.deferred if view.queue.readable else None
        perf.append(_perf("mta_deferred", shown))
    perf.append(_perf("run_time", round(report.duration_ms / 1000, 3), "s"))
    detail[-1] += " | " + perf[0]
    detail += perf[1:]
    return "\n".join([first, *detail]) + "\n"
