"""DNS and probing as one stream: each probe starts the moment its address is known.

The MX answer of a domain starts the A/AAAA lookups of its hosts, and each address
answer starts the probes of that address, while other lookups are still out. On the
internet a lookup costs tens of milliseconds, a chain MX → A → probe two of them; a run
that waited for every name before the first SYN would add the slowest chain of all to
every diagnosis.

What does not change with the order answers arrive in:

- the plan (:meth:`Pipeline.plan`) and so the report's probe order: the planner
  (:mod:`portprobe.targets.planner`) assembles it from the answers alone, exactly as
  :func:`~portprobe.targets.resolve.build_plan` does;
- the limits: one :class:`~portprobe.probe.runner.ProbePool` holds the global and the
  per-address slots for every probe, however late it started;
- an outside cancel (Ctrl-C, a deadline): :meth:`Pipeline.results` still holds every
  probe that completed, in plan order.

Inputs are checked in the constructor (``InputError``, ``CatalogError``), never inside
the nursery, so a typo reaches the caller as itself and not wrapped in an exception group.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import trio

from portprobe.errors import InputError
from portprobe.model import DnsLookup, Plan, ProbeResult, ProbeSpec
from portprobe.probe.connect import Connector, open_tcp
from portprobe.probe.engine import ProbeConfig
from portprobe.probe.runner import Manners, ProbePool
from portprobe.probe.tls import TLSContexts
from portprobe.targets.catalog import Catalog
from portprobe.targets.planner import ProbeKey, probe_key
from portprobe.targets.resolve import PlanInput, make_planner
from portprobe.vocab import Family

__all__ = ["Pipeline"]


class Pipeline:
    """Resolve and probe, streaming; the plan and results in plan order at any moment.

    ``on_result`` hears of each result as it completes (for progress), with the plan's
    spec as known at that moment. ``lookup`` is the DNS seam
    (:class:`~portprobe.model.DnsLookup`; None: dnspython over UDP/TCP to
    ``nameservers`` or the system resolver), ``connector`` the TCP one. ``manners``: the
    process-wide per-address limit and socket budget (:class:`portprobe.Shared`), kept
    on top of this run's own ``per_host`` and ``concurrency``.
    """

    def __init__(
        self,
        *,
        domains: Sequence[str],
        targets: Sequence[str],
        catalog: Catalog | None,
        ports: Sequence[int],
        families: Sequence[Family],
        nameservers: Sequence[tuple[str, int]],
        dns_timeout: float,
        max_mx: int,
        max_addresses: int,
        port_map: Mapping[int, int],
        config: ProbeConfig,
        concurrency: int,
        per_host: int,
        tls: TLSContexts,
        on_result: Callable[[ProbeResult], None] | None = None,
        lookup: DnsLookup | None = None,
        connector: Connector | None = None,
        manners: Manners | None = None,
        extra_domains: Sequence[str] = (),
    ) -> None:
        if concurrency < 1:
            raise InputError(f"concurrency must be at least 1, not {concurrency}")
        if per_host < 1:
            raise InputError(f"per-host limit must be at least 1, not {per_host}")
        self._planner = make_planner(
            PlanInput(
                domains=domains,
                targets=targets,
                catalog=catalog,
                ports=ports,
                families=families,
                nameservers=nameservers,
                dns_timeout=dns_timeout,
                max_mx=max_mx,
                max_addresses=max_addresses,
                port_map=port_map,
                extra_domains=extra_domains,
            ),
            lookup=lookup,
        )
        self._pool = ProbePool(
            config,
            concurrency=concurrency,
            per_host=per_host,
            tls=tls,
            connector=connector if connector is not None else open_tcp,
            manners=manners,
        )
        self.warnings: tuple[str, ...] = tuple(self._pool.warnings)
        self.concurrency = self._pool.concurrency
        self._on_result = on_result
        self._probed: dict[ProbeKey, ProbeResult] = {}
        self._unresolved: dict[ProbeSpec, ProbeResult] = {}
        #: Set once every name is resolved and every probe started (or waiting for a slot).
        self.planned = trio.Event()

    async def run(self) -> None:
        """Resolve and probe; returns when every lookup and every probe is done."""
        async with trio.open_nursery() as probes:

            def start(spec: ProbeSpec) -> None:
                probes.start_soon(self._probe, spec)

            plan = await self._planner.resolve(on_spec=start)
            self.planned.set()
            # DNS is complete: the names that did not resolve are dns-error results now,
            # while the last probes still run (an interrupt keeps them too).
            for spec in plan.unresolved:
                self._finish(spec, await self._pool.probe(spec))

    def plan(self) -> Plan:
        """The plan as known so far, in plan order (complete once :meth:`run` returned)."""
        return self._planner.plan()

    def results(self) -> list[ProbeResult]:
        """The results completed so far, in plan order, each with the plan's spec."""
        plan = self._planner.plan()
        done: list[ProbeResult] = []
        for spec in plan.specs:
            result = self._probed.get(probe_key(spec))
            if result is not None:
                done.append(_relabel(result, spec))
        done.extend(self._unresolved[spec] for spec in plan.unresolved if spec in self._unresolved)
        return done

    async def _probe(self, spec: ProbeSpec) -> None:
        result = await self._pool.probe(spec)
        self._probed[probe_key(spec)] = result
        if self._on_result is not None:
            self._on_result(_relabel(result, self._planner.spec_for(spec)))

    def _finish(self, spec: ProbeSpec, result: ProbeResult) -> None:
        self._unresolved[spec] = result
        if self._on_result is not None:
            self._on_result(result)


def _relabel(result: ProbeResult, spec: ProbeSpec) -> ProbeResult:
    """The same probe under the plan's spec (which job named the host first may change
    while answers arrive; what was dialled, the host, address and port, is the same)."""
    return result if result.spec == spec else dataclasses.replace(result, spec=spec)
