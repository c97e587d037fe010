"""Companions: work that runs beside the probes of a diagnosis and adds to its report.

A diagnosis probes; a companion watches the probes go by, does its own bounded work
while they run, and contributes one part of the report when the verdict is known:

- :class:`ReadinessCompanion` — whoami, PTR, DNSBLs (readiness/): it hears each probe
  result (servers that echo our address in EHLO) and adds ``readiness``;
- :class:`EnvironmentCompanion` — where this runs (environment/): it loads the platform
  table while the probes wait on the network and adds ``environment`` and the platform's
  own advice, after readiness (a PTR name is platform evidence).

The path trace (:mod:`portprobe.companions.path`) and the local mail server's view
(:mod:`portprobe.companions.mta`) plug in the same way: one class with the three methods
of :class:`Companion`, put in the list :class:`~portprobe.diagnosis.Diagnosis` builds.
Companions live here, above the feature packages (readiness/, environment/, path/, mta/),
because they join a feature with the typed Report; the features never import it.

Contract: ``observe`` is synchronous, cheap and never raises; ``run`` never raises for the
network and returns when its work is done or ``probes_done`` tells it to wrap up (the
probes' scope cancels it when the run is interrupted); ``contribute`` may be called after
an interrupted ``run`` and reports what is known by then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from portprobe.model import ProbeResult
from portprobe.request import DEFAULT_SYSFS

if TYPE_CHECKING:
    import trio

    from portprobe.environment.platforms import PlatformCatalog
    from portprobe.outcome import Report
    from portprobe.readiness.check import ReadinessCheck
    from portprobe.shared import Shared


class Companion(Protocol):
    """Runs beside the probes of one diagnosis and adds its part to the report."""

    def observe(self, result: ProbeResult) -> None:
        """One finished probe, in completion order (sync, cheap, never raises)."""

    async def run(self, probes_done: trio.Event) -> None:
        """The companion's own work; ``probes_done`` is set when every probe finished."""

    def contribute(self, report: Report) -> Report:
        """The report with this companion's part added (what is known now)."""


class ReadinessCompanion:
    """Mail readiness (spec "Mail readiness") as a companion of the probes."""

    def __init__(self, check: ReadinessCheck) -> None:
        self.check = check

    def observe(self, result: ProbeResult) -> None:
        self.check.observe(result)  # servers that echo our address in EHLO

    async def run(self, probes_done: trio.Event) -> None:
        await self.check.run(probes_done)

    def contribute(self, report: Report) -> Report:
        return replace(report, readiness=self.check.result(report.verdict.port25))


class EnvironmentCompanion:
    """Where this runs (spec "Environment"), and that platform's own next step."""

    def __init__(
        self,
        shared: Shared,
        *,
        sysfs: Path | None,
        environ: Mapping[str, str] | None,
        override: str | None,
        ready: trio.Event | None = None,
    ) -> None:
        self._shared = shared
        self._sysfs = sysfs or DEFAULT_SYSFS
        self._environ = environ
        self._override = override
        self._ready = ready

    def observe(self, result: ProbeResult) -> None:
        pass

    async def run(self, probes_done: trio.Event) -> None:
        """Import and load what :meth:`contribute` needs while the probes wait.

        ~20 ms of imports and data files that would otherwise come after the last probe;
        not before ``ready`` (every name resolved and a first result in), so that no lookup
        or first SYN waits behind it. :meth:`contribute` loads them itself if this never ran.
        """
        if self._ready is not None:
            await self._ready.wait()
        import portprobe.environment.detect
        import portprobe.report
        import portprobe.report.platform_advice  # noqa: F401

        self._platforms()

    def _platforms(self) -> PlatformCatalog:
        return self._shared.platforms()

    def contribute(self, report: Report) -> Report:
        from portprobe.environment.detect import detect_environment
        from portprobe.report.platform_advice import advise, filter_generic_advice

        platforms = self._platforms()
        environment = detect_environment(
            sysfs=self._sysfs,
            environ=os.environ if self._environ is None else self._environ,
            ptr_names=report.readiness.ptr_names() if report.readiness is not None else (),
            override=self._override,
            platforms=platforms,
            dmi=self._shared.dmi(self._sysfs),
        )
        environment = advise(environment, platforms, verdict=report.verdict, ports=report.ports)
        generic = filter_generic_advice(report.verdict.advice, environment, platforms)
        return replace(
            report, environment=environment, verdict=replace(report.verdict, advice=generic)
        )
