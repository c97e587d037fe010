"""The path part of every human view: one "Where:" line, and the hops (verbose)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from portprobe.render.cells import safe
from portprobe.vocab import FAMILY_NAME

if TYPE_CHECKING:
    from portprobe.outcome import Report
    from portprobe.path.model import Blocker, Hop, Trace

WHERE_TEXT: Final = {
    "this-machine": "this machine",
    "local-network": "the local network",
    "isp": "the ISP",
    "transit": "a transit network",
    "destination": "the destination",
    "unknown": "not known",
}
HOW_TEXT: Final = {
    "drop": "dropped",
    "reset": "reset",
    "prohibited": "refused (prohibited)",
    "proxy": "answered by a proxy",
}


def who(hop: Hop | Blocker) -> str:
    """``198.18.1.1 edge1.isp.example AS64500 EXAMPLE-ISP``: a hop as one short phrase."""
    parts = [safe(hop.address)] if hop.address else []
    if hop.name:
        parts.append(safe(hop.name, 48))
    if hop.asn is not None:
        parts.append(f"AS{hop.asn}" + (f" {safe(hop.as_name, 32)}" if hop.as_name else ""))
    return " ".join(parts)


def blocker_phrase(blocker: Blocker) -> str:
    """``the ISP: port 25 dropped at hop 2 (198.18.1.1 AS64500) over IPv4``."""
    where = WHERE_TEXT.get(blocker.where, safe(blocker.where))
    how = HOW_TEXT.get(blocker.how, safe(blocker.how))
    at = "on this machine" if blocker.hop == 0 else f"at hop {blocker.hop}"
    detail = who(blocker)
    text = f"{where}: port 25 {how} {at}" + (f" ({detail})" if detail and blocker.hop else "")
    if blocker.family is not None:
        text += f" over {FAMILY_NAME[blocker.family]}"
    return text


def where_line(report: Report) -> str | None:
    """One line naming who stops port 25, or None when nothing was placed."""
    path = report.path
    if path is None or path.blocker is None:
        return None
    return "Where: " + blocker_phrase(path.blocker)


def hop_line(hop: Hop, trace: Trace) -> str:
    name = who(hop) or "*"
    return f"{hop.ttl:>2}  {name}  25: {hop.port25}  {trace.control_port}: {hop.control}"


def trace_lines(report: Report) -> list[str]:
    """Each trace's heading and hops (verbose views)."""
    path = report.path
    if path is None:
        return []
    out: list[str] = []
    for t in path.traces:
        far = f"{t.distance} hops away" if t.distance is not None else "not reached"
        out.append(
            f"Path to {safe(t.host)} [{safe(t.address)}] ({FAMILY_NAME[t.family]}), "
            f"port 25 beside {t.control_port}, {far}:"
        )
        out += ["  " + hop_line(h, t) for h in t.hops]
    return out


def path_notes(report: Report) -> list[str]:
    return list(report.path.notes) if report.path is not None else []
