"""Renderers: the report dict in, text out (table, JSON, Markdown, JUnit XML).

They read only the report built by ``portprobe.report.build``, so every format says the
same thing; no text from the network reaches the output without ``visible()``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from portprobe.render.cells import verdict_line
from portprobe.render.junit import render_junit
from portprobe.render.markdown import render_markdown
from portprobe.render.table import render_table

FORMATS: Final = ("table", "json", "markdown", "junit")


def render_json(report: dict[str, Any]) -> str:
    # ensure_ascii: the file stays 7-bit, and every control character in server text is a
    # \u escape, so even `cat report.json` cannot drive the terminal.
    return json.dumps(report, indent=2, ensure_ascii=True) + "\n"


def render(
    fmt: str,
    report: dict[str, Any],
    *,
    color: bool = False,
    width: int | None = None,
    verbose: bool = False,
) -> str:
    """The report in ``fmt`` (one of FORMATS); ends with a newline."""
    if fmt == "json":
        return render_json(report)
    if fmt == "table":
        return render_table(report, color=color, width=width, verbose=verbose)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "junit":
        return render_junit(report)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


__all__ = [
    "FORMATS",
    "render",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_table",
    "verdict_line",
]
