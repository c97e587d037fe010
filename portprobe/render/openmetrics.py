"""OpenMetrics / Prometheus text for the node_exporter textfile collector.

``portprobe --format openmetrics -o /var/lib/node_exporter/textfile_collector/portprobe.prom``
(written atomically, as node_exporter's README asks) turns one run into gauges a Prometheus
alert can read. The rules this file follows, with their sources:

- Only gauges with ``# HELP`` and ``# TYPE``, ending in ``# EOF``: node_exporter parses the
  Prometheus text format (where ``# EOF`` is a comment) and prometheus_client's OpenMetrics
  parser needs it, so one file satisfies both.
- **No sample timestamps**: node_exporter skips the whole file when any sample carries one
  (collector/textfile.go ``hasTimestamps``). The run's time is a value instead,
  ``portprobe_last_run_timestamp_seconds``.
- Base units (``_seconds``), ``_info`` for metadata with value 1, ``_timestamp_seconds`` for
  times (prometheus/docs practices/naming.md).
- Bounded label sets: labels name verdict words, families, ports, and the providers and
  hosts that were planned, never an address or server text; every value goes through
  ``visible()`` and is escaped (``\\``, ``\"``, ``\n``) and capped in length.
- **Nothing for what was not measured**: a probe whose host name did not resolve was never
  tried, so it has no ``portprobe_probe_success`` or ``_duration_seconds`` series (no
  placeholder ``family="none"``, no made-up 0 s); the verdict gauges say why.
- ``portprobe_ready`` is 1 (ready) or 0 (not ready) and **absent** when readiness is
  ``unknown`` or was skipped, so ``portprobe_ready == 0`` never fires on a DNS timeout;
  ``portprobe_readiness{ready}`` (one-hot) says which case it was.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from portprobe.text import visible
from portprobe.vocab import FAMILIES, FAMILY_VERDICTS, VERDICTS

if TYPE_CHECKING:
    from portprobe.outcome import Observed, Report

#: Longer label values are cut: a label is an index key, not a place for prose.
LABEL_MAX: Final = 120
READY_WORDS: Final = ("yes", "no", "unknown")


@dataclass
class MetricFamily:
    """One metric family: a name, its help, and its samples (labels, value)."""

    name: str
    help: str
    samples: list[tuple[tuple[tuple[str, str], ...], float]] = field(default_factory=list)

    def add(self, value: float, **labels: object) -> None:
        self.samples.append((tuple((k, label_value(v)) for k, v in labels.items()), value))


def label_value(value: object) -> str:
    """A label value as the exposition format wants it: visible, bounded, escaped."""
    return _label_text("" if value is None else str(value))


@functools.lru_cache(maxsize=4096)
def _label_text(raw: str) -> str:
    # Cached: a run of thousands of hosts repeats each provider, host, family and port
    # label in several families. Printable ASCII has nothing for ``visible()`` to escape.
    text = (raw if raw.isascii() and raw.isprintable() else visible(raw))[:LABEL_MAX]
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(value: float) -> str:
    """A sample value: integers without a point, floats exactly; never ``nan`` spelled wrong."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def exposition(families: Iterable[MetricFamily]) -> str:
    """The text of ``families`` (empty ones left out), ending in ``# EOF``."""
    lines: list[str] = []
    for fam in families:
        if not fam.samples:
            continue
        lines.append(f"# HELP {fam.name} {fam.help}")
        lines.append(f"# TYPE {fam.name} gauge")
        for labels, value in fam.samples:
            body = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(
                f"{fam.name}{{{body}}} {number(value)}" if body else f"{fam.name} {number(value)}"
            )
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp(), 3)


def iso_epoch(text: str | None) -> float | None:
    """``2027-01-01T00:00:00Z`` as Unix seconds; None when absent or unreadable."""
    if not text:
        return None
    try:
        return epoch(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _key(o: Observed) -> tuple[str, str, str, int] | None:
    """The probe's series labels; None for a probe never tried (its name did not resolve):
    no placeholder ``family="none"`` series that vanishes once DNS works again."""
    s = o.result.spec
    if s.family is None or o.result.state == "dns-error":
        return None
    return (s.provider_key, s.host, s.family, s.port)


def verdict_families(
    report: Report, *, extra: Mapping[str, str] | None = None, prefix: str = "portprobe"
) -> list[MetricFamily]:
    """Verdict gauges, one-hot over every word so an absent series never means "fine"."""
    labels = dict(extra or {})
    overall = MetricFamily(f"{prefix}_verdict", "The port-25 verdict, one-hot over every verdict.")
    for word in VERDICTS:
        overall.add(1 if report.verdict.port25 == word else 0, **labels, verdict=word)
    per_family = MetricFamily(
        f"{prefix}_family_verdict", "The port-25 verdict per address family, one-hot."
    )
    for fam in FAMILIES:
        mine = report.verdict.families.get(fam, "untested")
        for fword in FAMILY_VERDICTS:
            per_family.add(1 if mine == fword else 0, **labels, family=fam, verdict=fword)
    return [overall, per_family]


def port_reachable(
    report: Report, *, extra: Mapping[str, str] | None = None, prefix: str = "portprobe"
) -> MetricFamily:
    """1 when some probe of that port and family connected (TCP); controls left out."""
    labels = dict(extra or {})
    out = MetricFamily(
        f"{prefix}_port_reachable",
        "1 when a TCP connection on this port succeeded to at least one host, per family.",
    )
    seen: dict[tuple[int, str], bool] = {}
    for o in report.probes:
        s = o.result.spec
        if s.negative or s.family is None:
            continue
        key = (s.port, s.family)
        seen[key] = seen.get(key, False) or o.result.connected
    for (port, fam), ok in sorted(seen.items()):
        out.add(1 if ok else 0, **labels, port=port, family=fam)
    return out


def _probe_families(report: Report) -> list[MetricFamily]:
    success = MetricFamily(
        "portprobe_probe_success",
        "1 when the host gave a genuine SMTP greeting (2xx, no middlebox sign) on at least "
        "one of its addresses; negative controls left out.",
    )
    duration = MetricFamily(
        "portprobe_probe_duration_seconds",
        "The slowest probe of this host, port and family, all phases together; absent "
        "when no probe of it was timed.",
    )
    by_key: dict[tuple[str, str, str, int], list[Observed]] = {}
    for o in report.probes:
        key = _key(o)
        if key is not None and not o.result.spec.negative:
            by_key.setdefault(key, []).append(o)
    for (provider, host, fam, port), group in sorted(by_key.items()):
        labels = {"provider": provider, "host": host, "family": fam, "port": port}
        success.add(1 if any(o.genuine for o in group) else 0, **labels)
        totals = [o.result.timings.total for o in group if o.result.timings.total is not None]
        if totals:
            duration.add(round(max(totals) / 1000, 6), **labels)
    return [success, duration]


def _cert_expiry(report: Report) -> MetricFamily:
    out = MetricFamily(
        "portprobe_tls_cert_expiry_timestamp_seconds",
        "Earliest notAfter of the certificates this host presented on this port (Unix time).",
    )
    earliest: dict[tuple[str, int], float] = {}
    for o in report.probes:
        tls = o.result.tls
        when = iso_epoch(tls.cert.not_after) if tls is not None and tls.cert else None
        if when is None:
            continue
        key = (o.result.spec.host, o.result.spec.port)
        earliest[key] = min(when, earliest.get(key, when))
    for (host, port), when in sorted(earliest.items()):
        out.add(when, host=host, port=port)
    return out


def _readiness(report: Report) -> list[MetricFamily]:
    ready = MetricFamily(
        "portprobe_ready",
        "Mail readiness: 1 every check passed, 0 a check failed; absent when unknown.",
    )
    state = MetricFamily("portprobe_readiness", "Mail readiness, one-hot over yes/no/unknown.")
    if report.readiness is not None:
        word = report.readiness.ready
        if word in ("yes", "no"):
            ready.add(1 if word == "yes" else 0)
        for w in READY_WORDS:
            state.add(1 if w == word else 0, ready=w)
    return [ready, state]


def _mta(report: Report) -> list[MetricFamily]:
    """The local mail server: absent without one (``--mta none`` or none found)."""
    from portprobe.vocab import MTA_REASONS

    view = report.mta
    if view is None:
        return []
    info = MetricFamily("portprobe_mta_info", "The local mail server found (value 1).")
    info.add(1, kind=view.kind, version=view.version or "unknown")
    deferred = MetricFamily(
        "portprobe_mta_queue_deferred",
        "Deferred messages in the local mail server's queue, by why they wait (per "
        "destination domain's last error); absent when the queue was not readable.",
    )
    if view.queue.readable:
        counts = {reason: 0 for reason in MTA_REASONS}
        for dest in view.queue.destinations:
            counts[dest.reason] += dest.count
        for reason, count in counts.items():
            deferred.add(count, reason=reason)
    return [info, deferred]


def path_families(report: Report) -> list[MetricFamily]:
    """Who stops port 25: the hop per family, and ``{where,how}`` one-hot (all zero when
    nothing was placed), so an alert can say "blocked on this machine" apart from "by the ISP"."""
    from typing import get_args

    from portprobe.path.model import How, Where

    hop = MetricFamily(
        "portprobe_block_hop",
        "The hop where port 25 is stopped, per family (0: this machine); absent if not placed.",
    )
    blocker = MetricFamily(
        "portprobe_blocker", "Who stops port 25 and how, one-hot over where and how."
    )
    path = report.path
    found = path.blocker if path is not None else None
    if path is not None:
        for family in FAMILIES:
            b = path.blockers.get(family)
            if b is not None and b.hop is not None:
                hop.add(b.hop, family=family)
    for where in get_args(Where):
        for how in get_args(How):
            on = found is not None and (found.where, found.how) == (where, how)
            blocker.add(1 if on else 0, where=where, how=how)
    return [hop, blocker]


def run_families(report: Report) -> list[MetricFamily]:
    duration = MetricFamily("portprobe_run_duration_seconds", "How long the whole run took.")
    duration.add(round(report.duration_ms / 1000, 3))
    last = MetricFamily(
        "portprobe_last_run_timestamp_seconds", "When the run finished (Unix time)."
    )
    last.add(epoch(report.finished_at))
    interrupted = MetricFamily("portprobe_interrupted", "1 when the run was interrupted (partial).")
    interrupted.add(1 if report.interrupted else 0)
    info = MetricFamily("portprobe_info", "The portprobe version and the platform it ran on.")
    platform = report.environment.platform if report.environment is not None else "unknown"
    info.add(1, version=report.tool_version, platform=platform)
    return [duration, last, interrupted, info]


def render_openmetrics(report: Report) -> str:
    families: Sequence[MetricFamily] = [
        *verdict_families(report),
        port_reachable(report),
        *_probe_families(report),
        _cert_expiry(report),
        *_readiness(report),
        *_mta(report),
        *path_families(report),
        *run_families(report),
    ]
    return exposition(families)
