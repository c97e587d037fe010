"""The fleet view of ``portprobe merge``: table, Markdown, JSON and OpenMetrics of a ``Fleet``.

A row per vantage point (name, platform/CI, public address, time, port-25 verdict, per
family, per port), then how many vantage points see each verdict. The reports came from
files, so every string is made visible here before it reaches a terminal or a page, and
Markdown's active characters are neutralised; JSON stays exact but ASCII-only.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Final

from portprobe.render.openmetrics import MetricFamily, exposition, iso_epoch
from portprobe.text import shorten, visible
from portprobe.vocab import FAMILIES, FAMILY_NAME, FAMILY_VERDICTS, MAIL_PORTS, VERDICTS

if TYPE_CHECKING:
    from portprobe.fleet import Fleet, Vantage

FLEET_FORMATS: Final = ("table", "markdown", "json", "openmetrics")
DASH: Final = "—"
_MD_ENTITIES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_SPECIAL: Final = re.compile(r"([\\`*_\[\]|~#!])")


def _one(value: object, width: int | None = None) -> str:
    text = visible(" ".join(str("" if value is None else value).split()))
    return shorten(text, width) if width else text


def _md(value: object, width: int | None = None) -> str:
    text = "".join(_MD_ENTITIES.get(ch, ch) for ch in _one(value, width))
    return _MD_SPECIAL.sub(r"\\\1", text)


def _ports(fleet: Fleet) -> list[int]:
    return [p for p in MAIL_PORTS if any(p in v.ports for v in fleet.vantages)]


def _where(v: Vantage) -> str:
    parts = [p for p in (v.platform, v.ci) if p and p != "unknown"]
    return " / ".join(parts) or DASH


def _row(v: Vantage, ports: list[int]) -> list[str]:
    return [
        _one(v.name, 40),
        _one(_where(v), 30),
        _one(", ".join(v.public_addresses) or DASH, 40),
        _one(v.started_at[:16].replace("T", " ") or DASH),
        _one(v.port25 + (" (interrupted)" if v.interrupted else "")),
        *(_one(v.families.get(f, "untested")) for f in FAMILIES),
        *(_one(v.ports.get(p, DASH)) for p in ports),
        _one(v.ready or DASH),
        _one(_blocked_at(v), 40),
    ]


def _blocked_at(v: Vantage) -> str:
    """``isp (drop, hop 2, AS64500)``: who stops port 25 as this vantage point saw it."""
    b = v.blocker
    if b is None:
        return DASH
    detail = [str(b["how"])]
    if b.get("hop") is not None:
        detail.append(f"hop {b['hop']}")
    if b.get("asn") is not None:
        detail.append(f"AS{b['asn']}")
    return f"{b['where']} ({', '.join(detail)})"


def _headers(ports: list[int]) -> list[str]:
    return [
        "Vantage",
        "Platform / CI",
        "Public address",
        "Time (UTC)",
        "Port 25",
        *(FAMILY_NAME[f] for f in FAMILIES),
        *(str(p) for p in ports),
        "Ready",
        "Stopped by",
    ]


def _columns(fleet: Fleet) -> tuple[list[str], list[list[str]]]:
    """Headers and rows, without the columns no vantage point has a value for."""
    ports = _ports(fleet)
    headers = _headers(ports)
    rows = [_row(v, ports) for v in fleet.vantages]
    keep = [
        i
        for i, h in enumerate(headers)
        if h in ("Vantage", "Port 25") or any(r[i] not in (DASH, "untested") for r in rows)
    ]
    return [headers[i] for i in keep], [[r[i] for i in keep] for r in rows]


def summary_line(fleet: Fleet) -> str:
    """``3 vantage points: 2 blocked, 1 open``."""
    n = len(fleet.vantages)
    counts = ", ".join(f"{c} {w}" for w, c in fleet.verdicts.items())
    return f"{n} vantage point{'s' if n != 1 else ''}" + (f": {counts}" if counts else "")


def render_fleet_table(fleet: Fleet) -> str:
    # Imported here: tabulate's import chain is heavy (see render/table.py).
    from tabulate import tabulate

    headers, rows = _columns(fleet)
    out = [summary_line(fleet), ""]
    if rows:
        out.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    return "\n".join(out) + "\n"


def render_fleet_markdown(fleet: Fleet) -> str:
    headers, rows = _columns(fleet)
    out = [f"### portprobe: {_md(summary_line(fleet))}", ""]
    out.append("| " + " | ".join(headers) + " |")
    out.append("|" + "---|" * len(headers))
    for row in rows:
        out.append("| " + " | ".join(_md(c) for c in row) + " |")
    if len(fleet.vantages) == 1:  # one vantage point: say why, as the run itself would
        v = fleet.vantages[0]
        if v.reasons:
            out += ["", "**Reasons**", ""] + [f"- {_md(r)}" for r in v.reasons]
        if v.advice:
            out += ["", "**Advice**", ""] + [f"- {_md(a)}" for a in v.advice]
    return "\n".join(out) + "\n"


def render_fleet_json(fleet: Fleet) -> str:
    return json.dumps({"fleet": fleet.to_dict()}, indent=2, ensure_ascii=True) + "\n"


def render_fleet_openmetrics(fleet: Fleet) -> str:
    """Per-vantage gauges with a ``vantage`` label, and the counts over the fleet.

    The label set is bounded by the reports merged (one name each, made unique).
    """
    vantages = MetricFamily("portprobe_fleet_vantages", "How many reports were merged.")
    vantages.add(len(fleet.vantages))
    count = MetricFamily(
        "portprobe_fleet_verdict_vantages", "How many vantage points see each port-25 verdict."
    )
    for word in VERDICTS:
        count.add(fleet.verdicts.get(word, 0), verdict=word)
    verdict = MetricFamily(
        "portprobe_verdict", "The port-25 verdict of each vantage point, one-hot."
    )
    family = MetricFamily(
        "portprobe_family_verdict", "The port-25 verdict per family of each vantage point."
    )
    reachable = MetricFamily(
        "portprobe_port_reachable", "1 when this vantage point reached the port on some host."
    )
    last = MetricFamily(
        "portprobe_last_run_timestamp_seconds", "When each vantage point's run started."
    )
    for v in fleet.vantages:
        for word in VERDICTS:
            verdict.add(1 if v.port25 == word else 0, vantage=v.name, verdict=word)
        for fam in FAMILIES:
            for fword in FAMILY_VERDICTS:
                mine = v.families.get(fam, "untested")
                family.add(1 if mine == fword else 0, vantage=v.name, family=fam, verdict=fword)
        for port in sorted(v.ports):
            reachable.add(1 if v.reachable.get(port) else 0, vantage=v.name, port=port)
        when = iso_epoch(v.started_at)
        if when is not None:
            last.add(when, vantage=v.name)
    return exposition([vantages, count, verdict, family, reachable, last])


def render_fleet(fmt: str, fleet: Fleet) -> str:
    if fmt == "table":
        return render_fleet_table(fleet)
    if fmt == "markdown":
        return render_fleet_markdown(fleet)
    if fmt == "json":
        return render_fleet_json(fleet)
    if fmt == "openmetrics":
        return render_fleet_openmetrics(fleet)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FLEET_FORMATS)}")
