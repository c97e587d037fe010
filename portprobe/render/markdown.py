"""GitHub-flavoured Markdown, for ``$GITHUB_STEP_SUMMARY``: the terminal view's shape.

Verdict heading, what was probed and from where, the host × family grid (hosts DNS could
not resolve on one line), reasons, advice, mail readiness; ``verbose`` adds the per-probe
table. People read the step summary, so it says what the terminal says.

Cells are made visible first (no control characters), then every character Markdown or
the HTML GitHub allows would interpret is neutralised: ``|`` would end the cell, ``<``
start a tag, ``*``/``_``/``[`` emphasis or links, a backslash an escape.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from portprobe.outcome import iso_utc
from portprobe.render.cells import (
    DASH,
    NOT_PROBED,
    advice_items,
    build_grid,
    greeting_cell,
    header_lines,
    legend,
    ms_cell,
    note_items,
    port_cell,
    safe,
    tls_cell,
    unresolved_line,
    verdict_line,
)
from portprobe.render.path import path_notes, trace_lines, where_line

if TYPE_CHECKING:
    from portprobe.outcome import Observed, Report
    from portprobe.vocab import Ready, VerdictWord

_ENTITIES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SPECIAL: Final = re.compile(r"([\\`*_\[\]|~#!])")
HEADERS: Final = (
    "Provider",
    "Host",
    "Address",
    "Port",
    "State",
    "Greeting",
    "TLS",
    "ms",
    "Anomalies",
)
_ALIGN: Final = ("---", "---", "---", "--:", "---", "---", "---", "--:", "---")
_ICON: Final[dict[VerdictWord, str]] = {
    "open": "✅",
    "blocked": "⛔",
    "intercepted": "🕵️",
    "restricted": "⚠️",
    "partial": "⚠️",
    "inconclusive": "❔",
    "offline": "📴",
}
_READY_ICON: Final[dict[Ready, str]] = {"yes": "✅", "no": "⛔", "unknown": "❔"}


def md(value: object, width: int | None = None) -> str:
    """One visible line, safe inside a GFM table cell or list item."""
    text = safe(value, width)
    text = "".join(_ENTITIES.get(ch, ch) for ch in text)
    return _SPECIAL.sub(r"\\\1", text)


def _probe_row(probe: Observed) -> str:
    s = probe.result.spec
    cells = [
        md(s.provider or s.target, 40),
        md(s.host, 60),
        md(s.address or DASH),
        md(port_cell(probe)),
        md(probe.result.state),
        md(greeting_cell(probe, 80)),
        md(tls_cell(probe)),
        md(ms_cell(probe.result.timings.total)),
        md(", ".join(probe.anomalies)),
    ]
    return "| " + " | ".join(cells) + " |"


def _grid(report: Report) -> list[str]:
    grid = build_grid(report)
    out: list[str] = []
    if grid.rows:
        head = ["Host", "Family", *(str(p) for p in grid.ports), "Address", "Greeting"]
        align = ["---", "---", *(":-:" for _ in grid.ports), "---", "---"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(align) + "|")
        for row in grid.rows:
            cells = [row.cells[p].text if p in row.cells else NOT_PROBED for p in grid.ports]
            line = [row.host, row.family, *cells, row.address, safe(row.greeting, 80)]
            out.append("| " + " | ".join(md(c) for c in line) + " |")
        out.append("")
        marks = legend(grid)
        if marks:
            out += [f"<sub>{md(marks)}</sub>", ""]
    if grid.unresolved:
        out += [md(unresolved_line(grid)), ""]
    return out


def _readiness(report: Report) -> list[str]:
    r = report.readiness
    if r is None:
        return []
    out = [f"### {_READY_ICON[r.ready]} Mail readiness: **{md(r.ready)}**", ""]
    out += [f"- {md(item)}" for item in r.reasons]
    if r.advice:
        out += ["", "Advice:", ""] + [f"- {md(item.text)}" for item in r.advice]
    out.append("")
    return out


def _mta(report: Report) -> list[str]:
    from portprobe.render.mta import mta_headline

    view = report.mta
    if view is None:
        return []
    out = [f"### Your mail server: {md(view.label)}", "", md(mta_headline(view)), ""]
    out += [f"- {md(item)}" for item in view.findings]
    if view.advice:
        out += ["", "Fix (portprobe changes nothing):", ""]
        out += [f"- {md(item.text)}" for item in view.advice]
    out.append("")
    return out


def render_markdown(report: Report, *, verbose: bool = False) -> str:
    v = report.verdict
    icon = _ICON[v.port25]
    out = [f"## {icon} portprobe: port 25 is **{md(v.port25)}**".replace("  ", " "), ""]
    out.append(md(verdict_line(report)))
    if (where := where_line(report)) is not None:
        out += ["", md(where)]
    out.append("")
    out += [f"{md(line)}  " for line in header_lines(report)]  # two spaces: a line break
    out.append("")
    if report.probes:
        out += _grid(report)
    for title, items in (("Reasons", list(v.reasons)), ("Advice", advice_items(report))):
        if items:
            out += [f"### {title}", ""]
            out += [f"- {md(item)}" for item in items]
            out.append("")
    out += _readiness(report)
    out += _mta(report)
    if verbose and report.probes:
        out += ["### Probes", ""]
        out.append("| " + " | ".join(HEADERS) + " |")
        out.append("|" + "|".join(_ALIGN) + "|")
        out += [_probe_row(p) for p in report.probes]
        out.append("")
    if verbose and report.path is not None and report.path.traces:
        out += ["### Path", "", "```", *trace_lines(report), "```", ""]
    notes = [*note_items(report), *path_notes(report)]
    if notes:
        out += [*(f"> {md(note)}  " for note in notes), ""]
    out.append(
        f"<sub>portprobe {md(report.tool_version)} · "
        f"{md(iso_utc(report.started_at))} · {md(ms_cell(report.duration_ms))} ms</sub>"
    )
    return "\n".join(out) + "\n"
