"""The exit codes of the spec, and the one function that picks one for a finished run.

Pure and tiny: the CLI reads it before anything heavy is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from portprobe.outcome import Report

#: Spec "Verdict ... and exit codes": one exit code per port-25 verdict.
VERDICT: Final[dict[str, int]] = {
    "open": 0,
    "blocked": 3,
    "intercepted": 4,
    "restricted": 5,
    "partial": 6,
    "inconclusive": 7,
    "offline": 8,
}
INTERNAL_ERROR: Final = 1  # a bug
USAGE: Final = 2  # bad option, unreadable file, bad host name, unwritable --output
ASSERTION: Final = 9  # --expect / --require-port / --require-ready failed
INTERRUPTED: Final = 130  # 128 + SIGINT, the shell convention

#: Monitoring-plugin convention (Nagios plugin guidelines; monitoring-plugins' check_smtp):
#: used for ``--format nagios`` only, where a monitoring system reads the exit code.
NAGIOS_OK: Final = 0
NAGIOS_WARNING: Final = 1
NAGIOS_CRITICAL: Final = 2
NAGIOS_UNKNOWN: Final = 3
NAGIOS_BY_VERDICT: Final[dict[str, int]] = {
    "open": NAGIOS_OK,
    "restricted": NAGIOS_WARNING,
    "partial": NAGIOS_WARNING,
    "blocked": NAGIOS_CRITICAL,
    "intercepted": NAGIOS_CRITICAL,
    "inconclusive": NAGIOS_UNKNOWN,
    "offline": NAGIOS_UNKNOWN,
}


def port25_asked(report: Report) -> bool:
    """Was port 25 part of the run? False for a submission-only check (``--ports 587``).

    Read from the run's own ``parameters.ports``; a report without them (an old or
    hand-made one) counts as having asked, as does any report with a port-25 probe.
    """
    entry = report.ports.get(25)
    if entry is not None and entry.tested:
        return True
    asked = report.parameters.get("ports")
    if not isinstance(asked, list | tuple) or not asked:
        return True
    return any(str(port) == "25" for port in asked)


def judged_ports(report: Report) -> tuple[int, ...]:
    """The ports a run without port 25 is judged by: ``--require-port``'s, else ``--ports``'."""
    params = report.parameters
    for key in ("require_ports", "ports"):
        ports = tuple(int(p) for p in params.get(key) or () if str(p).isdigit())
        if ports:
            return tuple(dict.fromkeys(ports))
    return ()


def ungreeted_ports(report: Report) -> tuple[int, ...]:
    """The judged ports that gave no SMTP greeting on any host (or were not probed)."""
    out = []
    for port in judged_ports(report):
        entry = report.ports.get(port)
        if entry is None or not entry.greeting_ok:
            out.append(port)
    return tuple(out)


def nagios_for_report(
    report: Report, assertion_failure: str | None, *, expect_given: bool = False
) -> int:
    """The monitoring-plugin exit code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).

    In this order: interrupted UNKNOWN; an assertion missed CRITICAL; an ``--expect`` met
    OK; a run that did not ask for port 25 (``--ports 587 [--require-port 587]``, a
    submission check) OK when every judged port greeted somewhere, else CRITICAL;
    otherwise the port-25 verdict's state.
    """
    if report.interrupted:
        return NAGIOS_UNKNOWN
    if assertion_failure is not None:
        return NAGIOS_CRITICAL
    if expect_given:
        return NAGIOS_OK
    if not port25_asked(report):
        return NAGIOS_CRITICAL if ungreeted_ports(report) else NAGIOS_OK
    return NAGIOS_BY_VERDICT[report.verdict.port25]


def for_report(
    report: Report,
    assertion_failure: str | None,
    *,
    expect_given: bool = False,
    nagios: bool = False,
) -> int:
    """The exit code of a finished run, in this order: interrupted, assertions, verdict.

    A ``--expect`` that holds exits 0 whatever the verdict (the CI job asked for exactly
    that verdict). With ``nagios`` the plugin convention applies instead
    (``nagios_for_report``): an expectation met is OK, one missed is CRITICAL, an
    interrupted run is UNKNOWN, and a run without port 25 is judged by its ports.
    """
    if nagios:
        return nagios_for_report(report, assertion_failure, expect_given=expect_given)
    if report.interrupted:
        return INTERRUPTED
    if assertion_failure is not None:
        return ASSERTION
    if expect_given:
        return 0
    return VERDICT[report.verdict.port25]
