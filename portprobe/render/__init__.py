"""Renderers: the typed ``Report`` in, text out.

They read only the report built by ``portprobe.report.build_report`` (never the probe
results, never the verdict rules), so every format says the same thing; no text from the
network reaches the output without ``visible()``. ``render`` is the one dispatch.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from portprobe.vocab import FORMATS

if TYPE_CHECKING:
    from portprobe.outcome import Report


def render_json(report: Report) -> str:
    # ensure_ascii: the file stays 7-bit, and every control character in server text is a
    # \u escape, so even `cat report.json` cannot drive the terminal.
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=True) + "\n"


def render(
    fmt: str,
    report: Report,
    *,
    color: bool = False,
    width: int | None = None,
    verbose: bool = False,
) -> str:
    """The report in ``fmt`` (one of ``vocab.FORMATS``); ends with a newline."""
    if fmt == "json":
        return render_json(report)
    if fmt == "table":
        from portprobe.render.table import render_table

        return render_table(report, color=color, width=width, verbose=verbose)
    if fmt == "markdown":
        from portprobe.render.markdown import render_markdown

        return render_markdown(report, verbose=verbose)
    if fmt == "junit":
        from portprobe.render.junit import render_junit

        return render_junit(report)
    if fmt == "openmetrics":
        from portprobe.render.openmetrics import render_openmetrics

        return render_openmetrics(report)
    if fmt == "nagios":
        from portprobe.render.nagios import render_nagios

        return render_nagios(report)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def verdict_line(report: Report) -> str:
    """The one line ``-q`` prints."""
    from portprobe.render.cells import verdict_line as line

    return line(report)


__all__ = ["FORMATS", "render", "render_json", "verdict_line"]
