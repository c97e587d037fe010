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


def for_report(
    report: Report,
    assertion_failure: str | None,
    *,
    expect_given: bool = False,
    nagios: bool = False,
) -> int:
    """The exit code of a finished run, in this order: interrupted, assertions, verdict.

    A ``--expect`` that holds exits 0 whatever the verdict (the CI job asked for exactly
    that verdict). With ``nagios`` the plugin convention applies instead: an expectation
    met is OK, one missed is CRITICAL, an interrupted run is UNKNOWN.
    """
    if nagios:
        if report.interrupted:
            return NAGIOS_UNKNOWN
        if assertion_failure is not None:
            return NAGIOS_CRITICAL
        if expect_given:
            return NAGIOS_OK
        return NAGIOS_BY_VERDICT[report.verdict.port25]
    if report.interrupted:
        return INTERRUPTED
    if assertion_failure is not None:
        return ASSERTION
    if expect_given:
        return 0
    return VERDICT[report.verdict.port25]
