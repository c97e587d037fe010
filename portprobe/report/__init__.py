"""From probe results to a verdict and a report: pure functions, no I/O.

``annotate`` (annotate.py) marks each result once with its anomalies; ``decide``
(verdict.py) turns the annotated probes into the port-25 verdict; ``build_report``
(build.py) turns results + verdict into the spec's JSON report, which every renderer
reads. Nothing here imports trio, socket, ssl, dnspython or typer.
"""

from portprobe.report.annotate import annotate
from portprobe.report.build import (
    EXIT_ASSERTION,
    EXIT_CODES,
    EXIT_INTERRUPTED,
    SCHEMA_VERSION,
    build_report,
    check_assertions,
    exit_code,
)
from portprobe.report.verdict import FAMILIES, VERDICTS, Verdict, decide

__all__ = [
    "EXIT_ASSERTION",
    "EXIT_CODES",
    "EXIT_INTERRUPTED",
    "FAMILIES",
    "SCHEMA_VERSION",
    "VERDICTS",
    "Verdict",
    "annotate",
    "build_report",
    "check_assertions",
    "decide",
    "exit_code",
]
