"""What one probe looks like in a cell, and the host × family grid, for every text renderer.

Everything that reaches a cell goes through ``visible()`` here, even text we wrote
ourselves (reasons quote server text): one forgotten path is all an escape sequence
needs. The readers take the typed ``Report`` and its ``Observed`` probes, never a dict.

The grid is what a person reads first: one row per host and address family, a column
per port, each cell the probe's state word with a TLS tick and an anomaly marker. Hosts
that DNS could not resolve have no family and no address, so their rows would all look
alike; they collapse into one line that names them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from portprobe.text import shorten, visible
from portprobe.vocab import FAMILY_NAME, MAIL_PORTS

if TYPE_CHECKING:
    from portprobe.outcome import Observed, Report

DASH: Final = "—"
#: Grid marks, each explained by ``legend()`` when it appears.
VERIFIED: Final = "✓"  # TLS handshake done and the certificate verified for the host
UNVERIFIED: Final = "✗"  # TLS done, certificate not verified (or TLS failed / stripped)
ANOMALY: Final = "!"  # a middlebox sign or protocol oddity; -v lists them
NOT_PROBED: Final = "·"
#: The state word of a cell whose probe was still running when the run was interrupted.
RUNNING: Final = "running"
FAILED_STATES: Final = frozenset(
    {"refused", "filtered", "unreachable", "dns-error", "error", "no-banner", "not-smtp"}
)


def char_width(ch: str) -> int:
    """Terminal cells one (visible) character takes: CJK wide/fullwidth 2, combining 0."""
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Terminal cells ``text`` takes (``len`` is wrong for a greeting in Japanese)."""
    if text.isascii():
        return len(text)
    return sum(char_width(ch) for ch in text)


def shorten_cells(text: str, width: int) -> str:
    """Cut ``text`` (already visible) to ``width`` terminal cells, with an ellipsis."""
    if width <= 1 or display_width(text) <= width:
        return text
    if text.isascii():
        return shorten(text, width)
    out, used = [], 0
    for ch in text:
        w = char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def safe(value: object, width: int | None = None) -> str:
    """Any value as one visible line, optionally shortened to ``width`` terminal cells."""
    text = visible("" if value is None else str(value))
    return shorten_cells(text, width) if width else text


def shorten_middle(text: str, width: int) -> str:
    """Cut ``text`` (already visible) in the middle: host names differ at both ends."""
    if width <= 1 or len(text) <= width:
        return text
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def family_name(family: str | None) -> str:
    return FAMILY_NAME.get(family or "", safe(family)) if family else DASH


def greeting_cell(probe: Observed, width: int | None = None) -> str:
    """The greeting's code and first line, or the error's errno/kind, or a dash."""
    r = probe.result
    if r.greeting is None:
        if r.error is not None and r.state not in ("open", "rejected"):
            return safe(f"({r.error.errno or r.error.kind})", width)
        return DASH
    first = r.greeting.lines[0] if r.greeting.lines else ""
    return safe(f"{r.greeting.code} {first}".rstrip(), width)


def tls_cell(probe: Observed) -> str:
    """``TLSv1.3 ✓``, ``TLSv1.2 ✗ hostname mismatch``, ``failed``, or a dash."""
    r = probe.result
    if r.tls is None:
        if r.state == "tls-error" or "starttls-handshake-failed" in probe.anomalies:
            return "failed"
        if r.starttls == "stripped":
            return "stripped"
        return DASH
    version = safe(r.tls.version or "TLS")
    if r.tls.verified:
        return f"{version} {VERIFIED}"
    return safe(f"{version} {UNVERIFIED} {r.tls.verify_error or 'not verified'}", 40)


def tls_mark(probe: Observed) -> str:
    """The one-character TLS summary of a grid cell ('' when no TLS was attempted)."""
    r = probe.result
    if r.tls is not None:
        return VERIFIED if r.tls.verified else UNVERIFIED
    if r.state == "tls-error" or r.starttls == "stripped":
        return UNVERIFIED
    if "starttls-handshake-failed" in probe.anomalies:
        return UNVERIFIED
    return ""


def ms_cell(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return DASH
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def port_cell(probe: Observed) -> str:
    port = safe(probe.result.spec.port)
    return f"{port} (neg)" if probe.result.spec.negative else port


def families_text(report: Report) -> str:
    return ", ".join(f"{family_name(f)} {safe(v)}" for f, v in report.verdict.families.items())


def verdict_line(report: Report) -> str:
    """The one line quiet mode prints: ``port 25: blocked (high confidence; IPv4 ...)``."""
    v = report.verdict
    mode = f"; {safe(v.failure_mode)}" if v.failure_mode else ""
    return (
        f"port 25: {safe(v.port25)} ({safe(v.confidence)} confidence{mode}; "
        f"{families_text(report)})"
    )


# -- the grid ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One port of one grid row: the state word and its marks, kept apart for colour."""

    state: str
    tls: str = ""  # VERIFIED, UNVERIFIED or ""
    anomaly: bool = False
    negative: bool = False  # a negative control: the catalog says this port does not answer

    @property
    def text(self) -> str:
        word = f"({self.state})" if self.negative else self.state
        marks = (" " + self.tls if self.tls else "") + (ANOMALY if self.anomaly else "")
        return word + marks


@dataclass(frozen=True)
class GridRow:
    provider: str
    host: str
    family: str  # "IPv4", "IPv6", or "IPv4 …10" when a host has several addresses in it
    address: str
    cells: dict[int, Cell]
    greeting: str  # the first greeting of the row, port order (25 first)


@dataclass(frozen=True)
class Grid:
    ports: tuple[int, ...]
    rows: tuple[GridRow, ...]
    unresolved: tuple[str, ...]  # hosts DNS could not resolve (visible text), in order
    unresolved_ports: tuple[int, ...]


def _cell(probe: Observed) -> Cell:
    r = probe.result
    return Cell(
        state=safe(r.state),
        tls=tls_mark(probe) if r.state in ("open", "rejected", "tls-error") else "",
        anomaly=bool(probe.anomalies),
        negative=r.spec.negative,
    )


def _ports(probes: Iterable[Observed]) -> tuple[int, ...]:
    return _ports_of({p.result.spec.port for p in probes})


def _ports_of(seen: set[int]) -> tuple[int, ...]:
    return tuple(sorted(seen, key=lambda p: (MAIL_PORTS.index(p) if p in MAIL_PORTS else 99, p)))


def _running_ports(
    running: Mapping[tuple[str, str, str | None, str | None], list[int]],
) -> set[int]:
    return {port for ports in running.values() for port in ports}


def _family_labels(keys: Sequence[tuple[str, str, str | None, str | None]]) -> dict[int, str]:
    """Family label per row; a host with several addresses in one family gets the
    shortest tail of each address that tells them apart (``IPv4 …0.2.10``)."""
    groups: dict[tuple[str, str | None], list[str]] = {}
    for _, host, family, address in keys:
        groups.setdefault((host, family), []).append(address or "")
    labels = {}
    for n, (_, host, family, address) in enumerate(keys):
        label = family_name(family)
        siblings = groups[(host, family)]
        if len(siblings) > 1 and address:
            tail = next(
                k
                for k in range(2, max(map(len, siblings)) + 2)
                if len({a[-k:] for a in siblings}) == len(set(siblings))
            )
            label += " " + (address if tail >= len(address) else "…" + address[-tail:])
        labels[n] = safe(label)
    return labels


def build_grid(report: Report) -> Grid:
    """The report's probes as host × family rows (plan order), DNS failures collapsed."""
    probes = report.probes
    resolved = [p for p in probes if p.result.state != "dns-error"]
    unresolved = [p for p in probes if p.result.state == "dns-error"]
    order: dict[tuple[str, str, str | None, str | None], list[Observed]] = {}
    for p in resolved:
        s = p.result.spec
        order.setdefault((s.provider_key, s.host, s.family, s.address), []).append(p)
    # Rows of one provider together (its MX beside its submission host), IPv4 first.
    # Probes still running at an interruption: their cells say so, in their hosts' rows.
    running: dict[tuple[str, str, str | None, str | None], list[int]] = {}
    for spec in report.unfinished:
        if spec.address is not None:
            held: tuple[str, str, str | None, str | None] = (
                spec.provider_key,
                spec.host,
                spec.family,
                spec.address,
            )
            running.setdefault(held, []).append(spec.port)
            order.setdefault(held, [])
    provider_rank = {k[0]: n for n, k in reversed(list(enumerate(order)))}
    host_rank = {k[1]: n for n, k in reversed(list(enumerate(order)))}
    keys = sorted(order, key=lambda k: (provider_rank[k[0]], host_rank[k[1]], k[2] or ""))
    labels = _family_labels(keys)
    rows = []
    for n, key in enumerate(keys):
        mine = order[key]
        cells: dict[int, Cell] = {}
        for p in mine:
            cells.setdefault(p.result.spec.port, _cell(p))
        for port in running.get(key, ()):
            cells.setdefault(port, Cell(state=RUNNING))
        port25_first = sorted(mine, key=lambda p: p.result.spec.port != 25)
        greeting = next((greeting_cell(p) for p in port25_first if p.result.greeting), DASH)
        rows.append(
            GridRow(
                provider=safe(key[0]),
                host=safe(key[1]),
                family=labels[n],
                address=safe(key[3] or DASH),
                cells=cells,
                greeting=greeting,
            )
        )
    return Grid(
        ports=_ports_of({p.result.spec.port for p in resolved} | _running_ports(running)),
        rows=tuple(rows),
        unresolved=tuple(dict.fromkeys(safe(p.result.spec.host) for p in unresolved)),
        unresolved_ports=_ports(unresolved),
    )


def unresolved_line(grid: Grid) -> str:
    ports = ", ".join(str(p) for p in grid.unresolved_ports)
    n = len(grid.unresolved)
    return (
        f"DNS could not resolve {n} host{'s' if n != 1 else ''} (not probed on {ports}): "
        + ", ".join(grid.unresolved)
    )


def legend(grid: Grid) -> str:
    """One line naming the marks the grid uses (empty when it uses none)."""
    cells = [c for row in grid.rows for c in row.cells.values()]
    parts = []
    if any(c.tls == VERIFIED for c in cells):
        parts.append(f"{VERIFIED} TLS verified")
    if any(c.tls == UNVERIFIED for c in cells):
        parts.append(f"{UNVERIFIED} TLS failed or not verified")
    if any(c.anomaly for c in cells):
        parts.append(f"{ANOMALY} anomaly (-v lists them)")
    if any(c.negative for c in cells):
        parts.append("(…) expected to fail")
    if any(c.state == RUNNING for c in cells):
        parts.append(f"{RUNNING}: still running when interrupted")
    if any(p not in row.cells for row in grid.rows for p in grid.ports):
        parts.append(f"{NOT_PROBED} not probed")
    return "  ".join(parts)


def _families(report: Report) -> set[str]:
    return {p.result.spec.family for p in report.probes if p.result.spec.family}


def header_lines(report: Report) -> list[str]:
    """What was probed and from where: the top of the human view."""
    ports = sorted({p.result.spec.port for p in report.probes})
    hosts = {p.result.spec.host for p in report.probes}
    families = [family_name(f) for f in ("ipv4", "ipv6") if f in _families(report)]
    what = (
        f"portprobe {safe(report.tool_version)}: {len(report.probes)} "
        f"probe{'s' if len(report.probes) != 1 else ''} of "
        f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}"
    )
    if ports:
        what += f", port{'s' if len(ports) != 1 else ''} {'/'.join(str(p) for p in ports)}"
    if families:
        what += f", {'+'.join(families)}"
    what += f", {report.duration_ms / 1000:.1f} s"
    if report.interrupted:
        running = len(report.unfinished)
        still = f"; {running} still running when interrupted" if running else ""
        what += f" (INTERRUPTED: partial report{still})"
    lines = [what]
    env = report.environment
    if env is not None:
        label = env.label or env.platform
        ci = f" (CI: {safe(env.ci)})" if env.ci else ""
        lines.append(f"Running on: {safe(label)}{ci}")
    if report.readiness is not None:
        seen = [
            f"{family_name(f)} {', '.join(safe(a) for a in addrs)}"
            for f, addrs in report.readiness.public_addresses.items()
            if addrs
        ]
        if seen:
            lines.append("Public address: " + "; ".join(seen))
    return lines


def advice_items(report: Report) -> list[str]:
    """The verdict's advice, then the platform's own next step (no repeats), as text."""
    items = [a.text for a in report.verdict.advice]
    if report.environment is not None:
        items += [a.text for a in report.environment.advice]
    return list(dict.fromkeys(items))


def note_items(report: Report) -> list[str]:
    items = list(report.notes)
    if report.environment is not None:
        items += list(report.environment.notes)
    return items
