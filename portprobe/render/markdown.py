"""GitHub-flavoured Markdown, for ``$GITHUB_STEP_SUMMARY``: verdict, table, reasons, advice.

Cells are made visible first (no control characters), then every character Markdown or
the HTML GitHub allows would interpret is neutralised: ``|`` would end the cell, ``<``
start a tag, ``*``/``_``/``[`` emphasis or links, a backslash an escape.
"""

from __future__ import annotations

import re
from typing import Any, Final

from portprobe.render.cells import (
    greeting_cell,
    ms_cell,
    port_cell,
    safe,
    tls_cell,
    verdict_line,
)

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
_ICON: Final = {
    "open": "✅",
    "blocked": "⛔",
    "intercepted": "🕵️",
    "restricted": "⚠️",
    "partial": "⚠️",
    "inconclusive": "❔",
    "offline": "📴",
}


def md(value: object, width: int | None = None) -> str:
    """One visible line, safe inside a GFM table cell or list item."""
    text = safe(value, width)
    text = "".join(_ENTITIES.get(ch, ch) for ch in text)
    return _SPECIAL.sub(r"\\\1", text)


def _row(probe: dict[str, Any]) -> str:
    cells = [
        md(probe.get("provider") or probe.get("target"), 40),
        md(probe.get("host"), 60),
        md(probe.get("address") or "—"),
        md(port_cell(probe)),
        md(probe.get("state")),
        md(greeting_cell(probe, 80)),
        md(tls_cell(probe)),
        md(ms_cell((probe.get("timings_ms") or {}).get("total"))),
        md(", ".join(str(a) for a in probe.get("anomalies") or [])),
    ]
    return "| " + " | ".join(cells) + " |"


def render_markdown(report: dict[str, Any]) -> str:
    v = report["verdict"]
    icon = _ICON.get(str(v["port25"]), "")
    out = [f"## {icon} portprobe: port 25 is **{md(v['port25'])}**".replace("  ", " "), ""]
    out.append(md(verdict_line(report)))
    out.append("")
    probes = report.get("probes") or []
    if probes:
        out.append("| " + " | ".join(HEADERS) + " |")
        out.append("|" + "|".join(_ALIGN) + "|")
        out += [_row(p) for p in probes]
        out.append("")
    for title, key in (("Reasons", "reasons"), ("Advice", "advice")):
        if v.get(key):
            out += [f"### {title}", ""]
            out += [f"- {md(item)}" for item in v[key]]
            out.append("")
    for note in report.get("notes") or []:
        out.append(f"> {md(note)}")
    tool = report.get("tool") or {}
    out.append(
        f"<sub>{md(tool.get('name'))} {md(tool.get('version'))} · "
        f"{md(report.get('started_at'))} · {md(ms_cell(report.get('duration_ms')))} ms</sub>"
    )
    return "\n".join(out) + "\n"
