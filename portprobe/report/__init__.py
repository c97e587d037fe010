"""From probe results to a verdict and a report: pure functions, no I/O.

``annotate`` (annotate.py) marks each result once with its anomalies; ``decide``
(verdict.py) turns the annotated probes into the port-25 verdict; ``build_report``
(build.py) turns results + verdict into the typed ``portprobe.outcome.Report`` that every
renderer reads. Nothing here imports trio, socket, ssl, dnspython or typer, nor the
renderers, the probe engine or the target planner (tests/test_layers.py).
"""

from portprobe.assertions import check_assertions
from portprobe.report.annotate import annotate
from portprobe.report.build import SCHEMA_VERSION, build_report
from portprobe.report.verdict import decide

__all__ = ["SCHEMA_VERSION", "annotate", "build_report", "check_assertions", "decide"]
