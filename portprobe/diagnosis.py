"""The library call: a validated request in, a typed report out.

    import trio, portprobe
    req = portprobe.DiagnoseRequest(domains=("example.org",), families=("ipv4",))
    report = trio.run(portprobe.diagnose, req)
    report.verdict.port25, report.to_dict()

Nothing here prints, exits, traps signals or writes files: those are the CLI's
(``portprobe.cli``). Every user error is a
:class:`~portprobe.errors.PortprobeError` raised *before* any network activity and outside
any nursery: ``DiagnoseRequest`` checks every value when it is made, and ``Diagnosis``
loads the files it names (catalog, CA file) when it is made, so a typo costs no probing.

A long-running process makes one :class:`~portprobe.Shared` and passes it to every
diagnosis (``shared=``): files, TLS contexts and the per-address manners are then built
once and kept process-wide. ``connector=`` and ``lookup=`` are the transport seams (how a
TCP connection is opened, how a name is resolved); companions
(:mod:`portprobe.companions`) run beside the probes and each adds its part to the report.

A network failure is never an exception: it is a probe result. To stop a run early and
keep what it found, cancel the scope around :meth:`Diagnosis.run` and call
:meth:`Diagnosis.report` with ``interrupted=True``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from portprobe._version import __version__
from portprobe.companions import Companion, EnvironmentCompanion, ReadinessCompanion
from portprobe.model import ProbeResult
from portprobe.request import DiagnoseRequest, PortMap
from portprobe.shared import Shared

if TYPE_CHECKING:
    import trio

    from portprobe.companions.mta import LogLater
    from portprobe.model import DnsLookup
    from portprobe.mta.model import MtaView
    from portprobe.mta.read import Run
    from portprobe.outcome import Report
    from portprobe.pipeline import Pipeline
    from portprobe.probe import ProbeConfig
    from portprobe.probe.connect import Connector
    from portprobe.targets.catalog import Catalog
    from portprobe.targets.resolve import PlanInput

__all__ = ["DiagnoseRequest", "Diagnosis", "OnResult", "PortMap", "Shared", "diagnose"]

#: Called once for every finished probe, in completion order (progress lines, streaming).
OnResult = Callable[[ProbeResult], None]

LOOPBACK_NOTE = (
    "Mail readiness was not checked: every target is a loopback address, so this run says "
    "nothing about this machine's public address (--public-ip with --domain checks it)."
)


class Diagnosis:
    """One run: made (and every file loaded) before the network, run once, reported.

    ``report()`` may be called after ``run()`` returned or after the scope around it was
    cancelled; probes that had not finished are then missing, as the report's notes say.
    """

    def __init__(
        self,
        request: DiagnoseRequest,
        *,
        on_result: OnResult | None = None,
        shared: Shared | None = None,
        connector: Connector | None = None,
        lookup: DnsLookup | None = None,
        mta_run: Run | None = None,
        mta_root: Path | None = None,
    ) -> None:
        """Load every file the request names and check it; no network activity yet.

        ``shared``: resources built once for many diagnoses (:class:`~portprobe.Shared`);
        None builds this run's own, as a one-shot CLI run does. ``connector`` and
        ``lookup`` replace how TCP connections are opened and names resolved (tests, a
        library user's transport); when None, those of ``shared``, else the real ones.
        ``mta_run`` and ``mta_root`` are how the local MTA's tools run and where its files
        are (``portprobe.mta.read``): a container's ``docker exec``, a test's recordings.
        """
        from portprobe.pipeline import Pipeline
        from portprobe.targets.names import parse_nameserver

        self.request = request
        self.shared = shared if shared is not None else Shared(per_host=request.per_host)
        self._on_result = on_result
        connector = connector if connector is not None else self.shared.connector
        if request.sysfs is not None:
            from portprobe.environment.detect import check_sysfs

            check_sysfs(request.sysfs)
        catalog = None
        if request.uses_catalog or request.catalog is not None:
            catalog = self.shared.catalog(request.catalog)
        nameservers = tuple(parse_nameserver(ns) for ns in request.nameservers)
        # One DNS client for the planner and the readiness checks of this run.
        dns = lookup if lookup is not None else self.shared.dns(nameservers, request.dns_timeout)
        # The local MTA is read now: its deferred domains join the plan (spec "The local
        # mail server"), and a missing --mail-log is a typo reported before the network.
        mta = _read_mta(request, mta_run, mta_root)
        self._planned_and_flowing = trio_event()
        self._pipeline: Pipeline = Pipeline(
            _plan_input(request, catalog, nameservers, mta),
            config=_probe_config(request),
            concurrency=request.concurrency,
            per_host=request.per_host,
            tls=self.shared.tls(request.ca_file),
            on_result=self._result_arrived,
            lookup=dns,
            connector=connector,
            manners=self.shared.manners if shared is not None else None,
        )
        #: What runs beside the probes, in the order each adds its part to the report.
        self.companions: list[Companion] = self._companions(
            catalog, nameservers, dns, connector, mta
        )
        self.started_at: datetime | None = None
        self._results_flowing = trio_event()

    def _companions(
        self,
        catalog: Catalog | None,
        nameservers: tuple[tuple[str, int], ...],
        dns: DnsLookup,
        connector: Connector | None,
        mta: _MtaRead | None,
    ) -> list[Companion]:
        """Readiness (a PTR name is platform evidence), then where this runs, then the
        path (it may settle a partial verdict), then the local mail server (its advice
        reads the final verdict)."""
        request = self.request
        companions: list[Companion] = []
        if request.checks_readiness:
            companions.append(_readiness_companion(request, catalog, nameservers, dns))
        platform = None
        if request.platform:
            from portprobe.environment.detect import check_platform

            platform = check_platform(request.platform, self.shared.platforms())
        companions.append(
            EnvironmentCompanion(
                self.shared,
                sysfs=request.sysfs,
                environ=request.environ,
                override=platform,
                ready=self._planned_and_flowing,
            )
        )
        if request.trace != "never":
            from portprobe.companions.path import TraceCompanion

            companions.append(
                TraceCompanion(
                    mode=request.trace,
                    max_hops=request.max_hops,
                    connect_timeout=request.connect_timeout,
                    dns=dns,
                    asn=request.asn,
                    connector=connector,
                    manners=self.shared.manners,
                    public_ips=request.public_ips,
                )
            )
        if mta is not None:
            from portprobe.companions.mta import MtaCompanion

            companions.append(
                MtaCompanion(mta.view, mta.log_later, ready=self._planned_and_flowing)
            )
        return companions

    @property
    def warnings(self) -> tuple[str, ...]:
        """Problems with the run itself (known before it starts), e.g. a lowered concurrency."""
        return self._pipeline.warnings

    def _result_arrived(self, result: ProbeResult) -> None:
        self._results_flowing.set()
        for companion in self.companions:
            companion.observe(result)
        if self._on_result is not None:
            self._on_result(result)

    async def run(self) -> None:
        """Probe, with the companions alongside; every lookup and probe is bounded."""
        import trio

        if self.started_at is not None:
            raise RuntimeError("a Diagnosis runs once; make a new one")
        self.started_at = datetime.now(UTC)
        probes_done = trio.Event()
        async with trio.open_nursery() as nursery:
            for companion in self.companions:
                nursery.start_soon(companion.run, probes_done)
            nursery.start_soon(self._wait_planned_and_flowing)
            try:
                await self._pipeline.run()
            finally:
                probes_done.set()
                self._results_flowing.set()
                self._planned_and_flowing.set()

    async def _wait_planned_and_flowing(self) -> None:
        await self._pipeline.planned.wait()
        await self._results_flowing.wait()
        self._planned_and_flowing.set()

    def report(self, *, interrupted: bool = False) -> Report:
        """The report of what is known now: complete after :meth:`run`, partial after a
        cancelled one (``interrupted=True`` says so in it)."""
        from dataclasses import replace

        from portprobe.report import build_report

        finished_at = datetime.now(UTC)
        plan = self._pipeline.plan()
        if self.request.readiness and not self.request.checks_readiness:
            plan = replace(plan, notes=(*plan.notes, LOOPBACK_NOTE))
        report = build_report(
            results=self._pipeline.results(),
            plan=plan,
            parameters=self.request.to_dict(),
            tool_version=__version__,
            started_at=self.started_at or finished_at,
            finished_at=finished_at,
            interrupted=interrupted,
            used_catalog=self.request.uses_catalog,
            warnings=self.warnings,
            hostname=socket.gethostname() or None,
        )
        for companion in self.companions:
            report = companion.contribute(report)
        return report


def _plannable(domains: tuple[str, ...]) -> tuple[str, ...]:
    """The queue's domains that are mail domains the planner accepts (not ``localhost``)."""
    from portprobe.errors import InputError
    from portprobe.targets.resolve import parse_domain

    kept = []
    for domain in domains:
        try:
            parse_domain(domain)
        except InputError:
            continue
        kept.append(domain)
    return tuple(kept)


@dataclass(frozen=True)
class _MtaRead:
    """The local mail server as read when the diagnosis is made, and its log reader for
    later (portprobe.companions.mta.read_for)."""

    view: MtaView | None
    log_later: LogLater | None


def _read_mta(request: DiagnoseRequest, run: Run | None, root: Path | None) -> _MtaRead | None:
    if request.mta == "none":
        return None
    from portprobe.companions.mta import read_for

    view, log_later = read_for(request, run=run, root=root)
    return _MtaRead(view, log_later)


def _plan_input(
    request: DiagnoseRequest,
    catalog: Catalog | None,
    nameservers: tuple[tuple[str, int], ...],
    mta: _MtaRead | None,
) -> PlanInput:
    """What the planner needs of the request; the MTA's deferred domains join it."""
    from portprobe.targets.resolve import PlanInput

    extra: tuple[str, ...] = ()
    if mta is not None and mta.view is not None:
        from portprobe.companions.mta import queue_domains

        extra = _plannable(queue_domains(mta.view, request.queue_destinations))
    return PlanInput(
        domains=request.domains,
        targets=request.targets,
        catalog=catalog if request.uses_catalog else None,
        ports=request.ports,
        families=request.families,
        nameservers=nameservers,
        dns_timeout=request.dns_timeout,
        max_mx=request.max_mx,
        max_addresses=request.max_addresses,
        port_map=request.port_map,
        extra_domains=extra,
    )


def _probe_config(request: DiagnoseRequest) -> ProbeConfig:
    from portprobe.probe import ProbeConfig

    return ProbeConfig(
        timeout=request.timeout,
        connect_timeout=request.connect_timeout,
        ehlo_name=request.ehlo_name,
    )


def _readiness_companion(
    request: DiagnoseRequest,
    catalog: Catalog | None,
    nameservers: tuple[tuple[str, int], ...],
    dns: DnsLookup,
) -> ReadinessCompanion:
    from portprobe.readiness.check import ReadinessCheck
    from portprobe.readiness.settings import load_readiness_settings

    settings = load_readiness_settings(
        request.catalog,
        catalog=catalog,
        extra_zones=request.dnsbl_zones,
        public_ips=request.public_ips,
        ehlo_name=request.ehlo_name,
        dns_timeout=request.dns_timeout,
        nameservers=nameservers,
        families=request.families,
        echo_wait=request.timeout,
    )
    return ReadinessCompanion(ReadinessCheck(settings, lookup=dns))


def trio_event() -> trio.Event:
    import trio

    return trio.Event()


async def diagnose(
    request: DiagnoseRequest,
    *,
    on_result: OnResult | None = None,
    shared: Shared | None = None,
    connector: Connector | None = None,
    lookup: DnsLookup | None = None,
) -> Report:
    """Run one diagnosis and return its report (see the module docstring)."""
    diagnosis = Diagnosis(
        request, on_result=on_result, shared=shared, connector=connector, lookup=lookup
    )
    await diagnosis.run()
    return diagnosis.report()
