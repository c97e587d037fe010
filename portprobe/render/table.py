"""The default terminal output: one row per probe, then the verdict, reasons and advice.

Colour only when the CLI says stdout is a terminal and NO_COLOR is unset (it passes
``color=True``); our own SGR sequences are the only escapes that can appear, since every
cell went through ``visible()`` first. ``width`` (the terminal's) is met by shortening the
greeting column, then host and provider.
"""

from __future__ import annotations

import textwrap
from typing import Any, Final

from portprobe.protocol.text import shorten
from portprobe.render.cells import (
    DASH,
    greeting_cell,
    ms_cell,
    port_cell,
    safe,
    tls_cell,
    verdict_line,
)

HEADERS: Final = ("provider", "host", "address", "port", "state", "greeting", "TLS", "ms")
DEFAULT_WIDTH: Final = 120
_GAP: Final = 2  # tabulate "simple" puts two spaces between columns
_MIN_GREETING: Final = 12
_HEADER_PAD: Final = 2  # tabulate.MIN_PADDING: a header is padded by two

_RESET: Final = "\x1b[0m"
_SGR: Final[dict[str, str]] = {
    "green": "\x1b[32m",
    "yellow": "\x1b[33m",
    "red": "\x1b[31m",
    "magenta": "\x1b[35m",
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
}
STATE_COLOR: Final = {
    "open": "green",
    "rejected": "yellow",
    "no-banner": "yellow",
    "not-smtp": "yellow",
    "tls-error": "yellow",
    "refused": "red",
    "filtered": "red",
    "unreachable": "red",
    "dns-error": "magenta",
    "error": "magenta",
}
VERDICT_COLOR: Final = {
    "open": "green",
    "blocked": "red",
    "intercepted": "red",
    "restricted": "yellow",
    "partial": "yellow",
    "inconclusive": "magenta",
    "offline": "magenta",
}


def _paint(text: str, colour: str | None, enabled: bool) -> str:
    if not enabled or colour is None:
        return text
    return f"{_SGR[colour]}{text}{_RESET}"


def _row(probe: dict[str, Any], limits: dict[str, int | None], color: bool) -> list[str]:
    state = safe(probe.get("state"))
    marker = "!" if probe.get("anomalies") else ""
    return [
        safe(probe.get("provider") or probe.get("target"), limits["provider"]),
        safe(probe.get("host"), limits["host"]),
        safe(probe.get("address") or DASH, limits["address"]),
        port_cell(probe),
        _paint(state + marker, STATE_COLOR.get(state), color),
        greeting_cell(probe, limits["greeting"]),
        shorten(tls_cell(probe), limits["tls"] or 0),
        ms_cell((probe.get("timings_ms") or {}).get("total")),
    ]


# Narrower terminals give up detail in this order: long names first, then the TLS error
# text and long (IPv6) addresses, then names again. The greeting keeps what is left.
_SQUEEZE: Final[tuple[dict[str, int], ...]] = (
    {"provider": 24, "host": 40, "address": 39},
    {"provider": 14, "host": 28},
    {"tls": 12, "address": 24},
    {"provider": 10, "host": 20, "tls": 9},
    {"host": 18, "address": 0},  # 0: drop the column (verbose and JSON still have it)
)


def _columns(limits: dict[str, int | None]) -> list[int]:
    return [c for c, h in enumerate(HEADERS) if not (h == "address" and limits["address"] == 0)]


def _fit(probes: list[dict[str, Any]], width: int) -> dict[str, int | None]:
    """Column limits so that a row fits ``width``, giving the greeting what is left."""
    limits: dict[str, int | None] = {"greeting": None, "tls": None}
    room = 0
    for step in _SQUEEZE:
        limits.update(step)
        natural = [_row(p, limits, False) for p in probes]
        columns = _columns(limits)
        widths = {
            c: max([len(HEADERS[c]) + _HEADER_PAD, *(len(r[c]) for r in natural)]) for c in columns
        }
        fixed = sum(w for c, w in widths.items() if HEADERS[c] != "greeting")
        room = width - fixed - _GAP * (len(columns) - 1)
        if room >= _MIN_GREETING:
            break
    limits["greeting"] = max(_MIN_GREETING, room)
    return limits


def _detail(probe: dict[str, Any]) -> list[str]:
    """Verbose: per-phase timings and the full greeting / EHLO / TLS / error text."""
    head = (
        f"{safe(probe.get('host'))} [{safe(probe.get('address') or DASH)}]:"
        f"{safe(probe.get('connect_port'))} (port {port_cell(probe)}, "
        f"{safe(probe.get('provider') or probe.get('target'))}, "
        f"{safe(probe.get('family') or DASH)}) "
        f"{safe(probe.get('state'))}"
    )
    t = probe.get("timings_ms") or {}
    phases = ", ".join(
        f"{k} {ms_cell(t.get(k))}" for k in ("connect", "greeting", "ehlo", "tls", "total")
    )
    lines = [head, f"  timings (ms): {phases}"]
    greeting = probe.get("greeting")
    if greeting is not None:
        for n, text in enumerate(str(greeting.get("text", "")).split("\n")):
            label = f"  greeting: {safe(greeting.get('code'))} " if n == 0 else "            "
            lines.append(label + safe(text))
    for key, label in (("ehlo_plain", "EHLO before TLS"), ("ehlo", "EHLO")):
        if probe.get(key) is not None:
            lines.append(f"  {label}: " + ", ".join(safe(k) for k in probe[key]))
    tls = probe.get("tls")
    if tls is not None:
        cert = tls.get("cert") or {}
        checked = (
            "verified" if tls.get("verified") else "NOT verified: " + safe(tls.get("verify_error"))
        )
        lines.append(f"  TLS: {safe(tls.get('version'))} {safe(tls.get('cipher'))}, {checked}")
        if cert:
            lines.append(
                f"  certificate: {safe(cert.get('subject'))}; issuer {safe(cert.get('issuer'))}; "
                f"SAN {', '.join(safe(n) for n in cert.get('san') or []) or DASH}; "
                f"not after {safe(cert.get('not_after'))}"
            )
    error = probe.get("error")
    if error is not None:
        lines.append(
            f"  error: {safe(error.get('kind'))} {safe(error.get('errno') or '')} "
            f"{safe(error.get('message'))}".rstrip()
        )
    if probe.get("anomalies"):
        lines.append("  anomalies: " + ", ".join(safe(a) for a in probe["anomalies"]))
    return lines


def _wrapped(items: list[Any], width: int, bullet: str = "- ") -> list[str]:
    return [
        textwrap.fill(
            safe(item),
            width=width,
            initial_indent=bullet,
            subsequent_indent=" " * len(bullet),
            break_on_hyphens=False,
        )
        for item in items
    ]


def render_table(
    report: dict[str, Any], *, color: bool = False, width: int | None = None, verbose: bool = False
) -> str:
    # Imported here: tabulate pulls in importlib.metadata -> email -> socket, and the
    # layering test holds that importing a renderer loads no network module.
    from tabulate import tabulate

    width = max(60, width or DEFAULT_WIDTH)
    probes = list(report.get("probes") or [])
    out: list[str] = []
    if probes:
        limits = _fit(probes, width)
        columns = _columns(limits)
        rows = [[row[c] for c in columns] for row in (_row(p, limits, color) for p in probes)]
        headers = [HEADERS[c] for c in columns]
        out.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
        if any(p.get("anomalies") for p in probes):
            out.append("(! after a state: anomalies, listed with -v)")
    else:
        out.append("No probes were run.")
    if verbose and probes:
        out.append("")
        for probe in probes:
            out += _detail(probe)
    verdict = report["verdict"]
    out.append("")
    line = verdict_line(report)
    out.append(_paint(line, VERDICT_COLOR.get(verdict["port25"], "bold"), color))
    if verdict.get("reasons"):
        out.append("Reasons:")
        out += _wrapped(verdict["reasons"], width)
    if verdict.get("advice"):
        out.append("Advice:")
        out += _wrapped(verdict["advice"], width)
    for note in report.get("notes") or []:
        out.append(_paint("note: " + safe(note), "dim", color))
    return "\n".join(out) + "\n"
