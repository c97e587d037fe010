"""The terminal output: the answer and its evidence at a glance, the detail with ``-v``.

Default view, top to bottom: what was probed and from where; one row per host and address
family with a column per port (``build_grid``); the verdict line, reasons and advice;
mail readiness. Within ``width`` nothing essential is cut (the verdict, every state word,
the family); a wider terminal adds the address and the greeting, a narrower one shortens
host names in the middle (their two ends tell them apart). ``-v`` prints today's
per-probe table and, per probe, the phase timings and the full greeting, EHLO, TLS and
error text.

Colour only when the CLI says stdout is a terminal and NO_COLOR is unset (it passes
``color=True``); our own SGR sequences are the only escapes that can appear, since every
cell went through ``visible()`` first, and widths are measured before painting.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from portprobe.render.cells import (
    DASH,
    NOT_PROBED,
    Grid,
    advice_items,
    build_grid,
    char_width,
    display_width,
    family_name,
    greeting_cell,
    header_lines,
    legend,
    ms_cell,
    note_items,
    port_cell,
    safe,
    shorten_cells,
    shorten_middle,
    tls_cell,
    unresolved_line,
    verdict_line,
)
from portprobe.render.path import path_notes, trace_lines, where_line

if TYPE_CHECKING:
    from portprobe.outcome import Observed, Report
    from portprobe.vocab import Ready, VerdictWord

DEFAULT_WIDTH: Final = 120  # piped output: no terminal to measure
MIN_WIDTH: Final = 40
#: A line of verbose detail longer than this is cut (the parser already bounds replies;
#: JSON keeps every byte): -v is for reading, and a 1 MB line is not.
DETAIL_CHARS: Final = 1000
_GAP: Final = 2
_MIN_HOST: Final = 12
_MIN_GREETING: Final = 16

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
VERDICT_COLOR: Final[dict[VerdictWord, str]] = {
    "open": "green",
    "blocked": "red",
    "intercepted": "red",
    "restricted": "yellow",
    "partial": "yellow",
    "inconclusive": "magenta",
    "offline": "magenta",
}
READY_COLOR: Final[dict[Ready, str]] = {"yes": "green", "no": "red", "unknown": "magenta"}


_SGR_RE: Final = re.compile(r"\x1b\[[0-9;]*m")


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def _paint(text: str, colour: str | None, enabled: bool) -> str:
    if not enabled or colour is None or not text:
        return text
    return f"{_SGR[colour]}{text}{_RESET}"


def _wrapped(text: str, width: int, indent: str = "", first: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_on_hyphens=False,
    ) or [""]


def _bullets(items: Iterable[str], width: int) -> list[str]:
    return [line for item in items for line in _wrapped(safe(item), width, "  ", "- ")]


# -- the default view: host × family grid --------------------------------------------------


def _grid_lines(grid: Grid, width: int, color: bool) -> list[str]:
    w = display_width
    family_w = max(len("family"), *(w(r.family) for r in grid.rows))
    port_w = {
        p: max(len(str(p)), *(w(r.cells[p].text) if p in r.cells else 1 for r in grid.rows))
        for p in grid.ports
    }
    host_natural = max(len("host"), *(w(r.host) for r in grid.rows))
    gap = _GAP
    essential = family_w + sum(port_w.values()) + gap * len(port_w)
    if width - essential - gap < _MIN_HOST:
        gap = 1  # a very narrow terminal: tighter columns before shorter names
        essential = family_w + sum(port_w.values()) + gap * len(port_w)
    host_w = max(_MIN_HOST, min(host_natural, width - essential - gap))
    used = host_w + gap + essential
    address_w = max(len("address"), *(w(r.address) for r in grid.rows))
    show_address = host_w == host_natural and used + gap + address_w <= width
    if show_address:
        used += gap + address_w
    greeting_w = width - used - gap
    show_greeting = greeting_w >= _MIN_GREETING and any(r.greeting != DASH for r in grid.rows)

    def line(host: str, family: str, cells: list[tuple[str, str | None]], extra: list[str]) -> str:
        parts = [_pad(host, host_w), _pad(family, family_w)]
        for (text, colour), p in zip(cells, grid.ports, strict=True):
            parts.append(_paint(text, colour, color) + " " * (port_w[p] - w(text)))
        parts += extra
        return (" " * gap).join(parts).rstrip()

    head_extra = (["address".ljust(address_w)] if show_address else []) + (
        ["greeting"] if show_greeting else []
    )
    out = [line("host", "family", [(str(p), None) for p in grid.ports], head_extra)]
    greeting_rule = min(greeting_w, max(len("greeting"), *(w(r.greeting) for r in grid.rows)))
    rule_extra = (["-" * address_w] if show_address else []) + (
        ["-" * greeting_rule] if show_greeting else []
    )
    rule: list[tuple[str, str | None]] = [("-" * port_w[p], None) for p in grid.ports]
    out.append(line("-" * host_w, "-" * family_w, rule, rule_extra))
    for row in grid.rows:
        cells = [
            (row.cells[p].text, STATE_COLOR.get(row.cells[p].state))
            if p in row.cells
            else (NOT_PROBED, "dim")
            for p in grid.ports
        ]
        extra = ([_pad(row.address, address_w)] if show_address else []) + (
            [shorten_cells(row.greeting, greeting_w)] if show_greeting else []
        )
        out.append(line(shorten_middle(row.host, host_w), row.family, cells, extra))
    return out


# -- -v: the per-probe table and each probe's detail ---------------------------------------

HEADERS: Final = ("provider", "host", "address", "family", "port", "state", "greeting", "TLS", "ms")
_MIN_PROBE_GREETING: Final = 12
_HEADER_PAD: Final = 2  # a header is padded by two, as tabulate's "simple" format does


def _row(probe: Observed, limits: dict[str, int | None], color: bool) -> list[str]:
    r = probe.result
    state = safe(r.state)
    marker = "!" if probe.anomalies else ""
    return [
        safe(r.spec.provider or r.spec.target, limits["provider"]),
        safe(r.spec.host, limits["host"]),
        safe(r.spec.address or DASH, limits["address"]),
        family_name(r.spec.family),
        port_cell(probe),
        _paint(state + marker, STATE_COLOR.get(state), color),
        greeting_cell(probe, limits["greeting"]),
        shorten_cells(tls_cell(probe), limits["tls"] or 0),
        ms_cell(r.timings.total),
    ]


# Narrower terminals give up detail in this order: long names first, then the TLS error
# text and long (IPv6) addresses, then whole columns (0: the detail lines below have
# them) rather than cutting a provider's name to "alpha.exa…". The greeting keeps the rest.
_SQUEEZE: Final[tuple[dict[str, int], ...]] = (
    {"provider": 24, "host": 40, "address": 39},
    {"provider": 14, "host": 28},
    {"tls": 12, "address": 24},
    {"provider": 0, "tls": 9},
    {"host": 20, "address": 0},
    {"host": 18},
)


def _columns(limits: dict[str, int | None]) -> list[int]:
    # The family stands in for a dropped address: IPv4 and IPv6 rows must not look alike.
    shown = {h: limits.get(h) != 0 for h in HEADERS}
    shown["family"] = not shown["address"]
    return [c for c, h in enumerate(HEADERS) if shown[h]]


def _fit(probes: tuple[Observed, ...], width: int) -> dict[str, int | None]:
    """Column limits so that a row fits ``width``, giving the greeting what is left."""
    limits: dict[str, int | None] = {"greeting": None, "tls": None}
    room = 0
    for step in _SQUEEZE:
        limits.update(step)
        natural = [_row(p, limits, False) for p in probes]
        columns = _columns(limits)
        widths = {
            c: max([len(HEADERS[c]) + _HEADER_PAD, *(display_width(r[c]) for r in natural)])
            for c in columns
        }
        fixed = sum(w for c, w in widths.items() if HEADERS[c] != "greeting")
        room = width - fixed - _GAP * (len(columns) - 1)
        if room >= _MIN_PROBE_GREETING:
            break
    limits["greeting"] = max(_MIN_PROBE_GREETING if room >= _MIN_PROBE_GREETING else 4, room)
    return limits


def _probe_table(probes: tuple[Observed, ...], width: int, color: bool) -> list[str]:
    limits = _fit(probes, width)
    columns = _columns(limits)
    rows = [[row[c] for c in columns] for row in (_row(p, limits, color) for p in probes)]
    headers = [HEADERS[c] for c in columns]
    widths = [
        max(len(h) + _HEADER_PAD, *(display_width(_SGR_RE.sub("", r[n])) for r in rows))
        for n, h in enumerate(headers)
    ]
    gap = " " * _GAP

    def line(cells: list[str]) -> str:
        return gap.join(
            c + " " * (w - display_width(_SGR_RE.sub("", c)))
            for c, w in zip(cells, widths, strict=True)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    if any(p.anomalies for p in probes):
        out.append("(! after a state: anomalies, listed below)")
    return out


def _long(text: str) -> str:
    if len(text) <= DETAIL_CHARS:
        return text
    return text[:DETAIL_CHARS] + f"… ({len(text) - DETAIL_CHARS} more characters; see --json)"


def _detail(probe: Observed) -> list[str]:
    """Per-phase timings and the full greeting / EHLO / TLS / error text of one probe."""
    r, s = probe.result, probe.result.spec
    head = (
        f"{safe(s.host)} [{safe(s.address or DASH)}]:{safe(s.dial_port)} "
        f"(port {port_cell(probe)}, {safe(s.provider or s.target)}, {family_name(s.family)}) "
        f"{safe(r.state)}"
    )
    t = r.timings
    phases = (
        ("connect", t.connect),
        ("greeting", t.greeting),
        ("ehlo", t.ehlo),
        ("tls", t.tls),
        ("total", t.total),
    )
    lines = [head, "  timings (ms): " + ", ".join(f"{k} {ms_cell(v)}" for k, v in phases)]
    if r.greeting is not None:
        for n, text in enumerate(r.greeting.lines or ("",)):
            label = f"  greeting: {safe(r.greeting.code)} " if n == 0 else "            "
            lines.append(label + _long(safe(text)))
    for keywords, label in ((r.ehlo_plain, "EHLO before TLS"), (r.ehlo, "EHLO")):
        if keywords is not None:
            lines.append(f"  {label}: " + _long(", ".join(safe(k) for k in keywords)))
    if r.tls is not None:
        checked = "verified" if r.tls.verified else "NOT verified: " + safe(r.tls.verify_error)
        lines.append(f"  TLS: {safe(r.tls.version)} {safe(r.tls.cipher)}, {_long(checked)}")
        c = r.tls.cert
        if c is not None:
            lines.append(f"  certificate: subject {_long(safe(c.subject))}")
            lines.append(f"    issuer {_long(safe(c.issuer))}")
            lines.append(f"    SAN {_long(', '.join(safe(n) for n in c.san) or DASH)}")
            lines.append(f"    not after {safe(c.not_after or DASH)}")
    if r.error is not None:
        e = r.error
        lines.append(
            f"  error: {safe(e.kind)} {safe(e.errno or '')} {_long(safe(e.message))}".rstrip()
        )
    if probe.anomalies:
        lines.append("  anomalies: " + ", ".join(safe(a) for a in probe.anomalies))
    return lines


def _fold(lines: list[str], width: int) -> list[str]:
    """Detail lines wrapped to ``width``, continuation indented under the label."""
    out = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * min(len(line) - len(line.lstrip()) + 4, width // 2)
        out += textwrap.wrap(
            line, width=width, subsequent_indent=indent, break_on_hyphens=False
        ) or [""]
    return out


# -- verdict and readiness -----------------------------------------------------------------


def _readiness_lines(report: Report, width: int, color: bool, verbose: bool) -> list[str]:
    r = report.readiness
    if r is None:
        return []
    out = ["", "Mail readiness: " + _paint(safe(r.ready), READY_COLOR[r.ready], color)]
    if verbose:
        checks = [
            f"reverse DNS {safe(p.address)}: {safe(p.iprev)} "
            f"({', '.join(safe(n) for n in p.names) or 'no PTR'})"
            for p in r.ptr
        ]
        checks += [
            f"generic name {safe(g.name)}: {'yes' if g.generic else 'no'}"
            + (f" ({safe(g.matched)})" if g.matched else "")
            for g in r.generic_name
        ]
        checks += [
            f"{safe(d.zone)} {safe(d.address)}: {safe(d.status)}"
            + (f" ({', '.join(safe(m) for m in d.meanings)})" if d.meanings else "")
            for d in r.dnsbl
        ]
        checks += [
            f"public address by {safe(s.method)}: {safe(s.address or s.error or DASH)}"
            for s in r.sightings
        ]
        out += _bullets(checks, width)
    if r.reasons:
        out.append("Readiness reasons:")
        out += _bullets(r.reasons, width)
    if r.advice:
        out.append("Readiness advice:")
        out += _bullets([a.text for a in r.advice], width)
    return out


def _mta_lines(report: Report, width: int, verbose: bool) -> list[str]:
    from portprobe.render.mta import mta_headline

    view = report.mta
    if view is None:
        return []
    out = ["", *_wrapped(safe(mta_headline(view)), width, "  ", "")]
    if verbose and view.findings:
        out += _bullets(view.findings, width)
    if view.advice:
        out.append("Fix (portprobe changes nothing):")
        out += _bullets([a.text for a in view.advice], width)
    return out


def render_table(
    report: Report, *, color: bool = False, width: int | None = None, verbose: bool = False
) -> str:
    width = max(MIN_WIDTH, width or DEFAULT_WIDTH)
    out = [line for text in header_lines(report) for line in _wrapped(text, width, "  ", "")]
    out.append("")
    if not report.probes:
        out.append("No probes were run.")
    elif verbose:
        out += _probe_table(report.probes, width, color)
        out.append("")
        out += _fold([line for p in report.probes for line in _detail(p)], width)
    else:
        grid = build_grid(report)
        if grid.rows:
            out += _grid_lines(grid, width, color)
            marks = legend(grid)
            if marks:
                out += _wrapped(marks, width, "  ", "")
        if grid.unresolved:
            text = unresolved_line(grid)
            out += [_paint(x, "magenta", color) for x in _wrapped(text, width, "  ", "")]
    verdict = report.verdict
    out.append("")
    colour = VERDICT_COLOR[verdict.port25]
    out += [_paint(x, colour, color) for x in _wrapped(verdict_line(report), width, "  ", "")]
    if (where := where_line(report)) is not None:
        out += _wrapped(where, width, "  ", "")
    if verbose and report.path is not None and report.path.traces:
        out += _fold(trace_lines(report), width)
    if verdict.reasons:
        out.append("Reasons:")
        out += _bullets(verdict.reasons, width)
    advice = advice_items(report)
    if advice:
        out.append("Advice:")
        out += _bullets(advice, width)
    for note in [*note_items(report), *path_notes(report)]:
        out += [_paint(x, "dim", color) for x in _wrapped("note: " + safe(note), width, "  ", "")]
    out += _readiness_lines(report, width, color, verbose)
    out += _mta_lines(report, width, verbose)
    return "\n".join(line for text in out for line in _within(text, width)) + "\n"


def _within(line: str, width: int) -> list[str]:
    """The last guard: a line still wider than the terminal (wide characters that
    ``textwrap`` counted as one cell each) is cut into pieces that fit, colour dropped."""
    plain = _SGR_RE.sub("", line)
    if display_width(plain) <= width:
        return [line]
    pieces: list[str] = []
    piece: list[str] = []
    used = 0
    for ch in plain:
        w = char_width(ch)
        if used + w > width:
            pieces.append("".join(piece))
            piece, used = [], 0
        piece.append(ch)
        used += w
    return [*pieces, "".join(piece)]
