"""Mail readiness, kept apart from the probe results: it changes slowly.

Readiness asks about *this machine* (its public address, PTR, DNSBL listings), not about
the target of a scrape, so every module and target with the same readiness settings
shares one answer, kept for ``ttl`` seconds (``--readiness-ttl``) while the verdict is
decided afresh by every run. It plugs in through the diagnosis' companions list: the
:class:`~portprobe.companions.ReadinessCompanion` a :class:`~portprobe.Diagnosis` made is
swapped for a :class:`CachedReadiness` that either runs it (and keeps its check when it
finished with an answer) or answers from a kept check, assessed against the new verdict.

The platform table needs nothing here: :class:`~portprobe.Shared` reads it once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import trio

from portprobe.companions import ReadinessCompanion

if TYPE_CHECKING:
    from portprobe.diagnosis import Diagnosis
    from portprobe.model import ProbeResult
    from portprobe.outcome import Report
    from portprobe.readiness.check import ReadinessCheck
    from portprobe.request import DiagnoseRequest

#: Different readiness settings kept at most (one per distinct set of the fields below).
KEEP_MAX = 64
#: An answer with something ``unknown`` in it (a DNS timeout) is kept at most this long.
UNKNOWN_TTL = 60.0

ReadinessKey = tuple[object, ...]


def readiness_key(request: DiagnoseRequest) -> ReadinessKey:
    """The request fields readiness depends on (readiness.settings.load_readiness_settings)."""
    return (
        request.catalog,
        request.dnsbl_zones,
        request.public_ips,
        request.ehlo_name,
        request.dns_timeout,
        request.nameservers,
        request.families,
    )


class ReadinessCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.hits = 0
        self.runs = 0
        self._kept: dict[ReadinessKey, tuple[float, ReadinessCheck]] = {}  # (expiry, check)

    def fresh(self, key: ReadinessKey) -> ReadinessCheck | None:
        kept = self._kept.get(key)
        if kept is None or trio.current_time() >= kept[0]:
            return None
        return kept[1]

    def keep(self, key: ReadinessKey, check: ReadinessCheck) -> None:
        ttl = self.ttl if check.result().ready != "unknown" else min(self.ttl, UNKNOWN_TTL)
        if ttl <= 0:
            return
        if key not in self._kept and len(self._kept) >= KEEP_MAX:
            del self._kept[min(self._kept, key=lambda k: self._kept[k][0])]
        self._kept[key] = (trio.current_time() + ttl, check)

    def install(self, diagnosis: Diagnosis) -> None:
        """Swap the diagnosis' readiness companion (if it has one) for the cached one."""
        for index, companion in enumerate(diagnosis.companions):
            if isinstance(companion, ReadinessCompanion):
                key = readiness_key(diagnosis.request)
                diagnosis.companions[index] = CachedReadiness(self, key, companion)


class CachedReadiness:
    """A readiness companion that answers from the cache when it can (see module doc)."""

    def __init__(self, cache: ReadinessCache, key: ReadinessKey, own: ReadinessCompanion) -> None:
        self._cache = cache
        self._key = key
        self._own = own
        kept = cache.fresh(key)
        self.cached = kept is not None
        self._check = kept if kept is not None else own.check

    def observe(self, result: ProbeResult) -> None:
        if not self.cached:
            self._own.observe(result)

    async def run(self, probes_done: trio.Event) -> None:
        if self.cached:
            self._cache.hits += 1
            return
        self._cache.runs += 1
        await self._own.run(probes_done)
        # Reached only when the checks finished (a cut run is cancelled before this).
        self._cache.keep(self._key, self._check)

    def contribute(self, report: Report) -> Report:
        return replace(report, readiness=self._check.result(report.verdict.port25))
