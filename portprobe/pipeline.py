"""Plan and probe: resolve what to probe, then probe it, keeping plan order.

(Interim: resolves everything first, then probes; the streaming version replaces this.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from portprobe.model import Family, Plan, ProbeResult
from portprobe.probe import ProbeConfig, Runner
from portprobe.probe.engine import Connector, open_tcp
from portprobe.probe.runner import fd_budget
from portprobe.probe.tls import TLSContexts
from portprobe.targets.catalog import Catalog


class Pipeline:
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
        lookup: object | None = None,
        connector: Connector | None = None,
    ) -> None:
        self._plan_args = {
            "domains": domains,
            "targets": targets,
            "catalog": catalog,
            "ports": ports,
            "families": families,
            "nameservers": nameservers,
            "dns_timeout": dns_timeout,
            "max_mx": max_mx,
            "max_addresses": max_addresses,
            "port_map": port_map,
        }
        self._config = config
        self._per_host = per_host
        self._tls = tls
        self._on_result = on_result
        self._connector = connector or open_tcp
        budget = fd_budget()
        warnings = []
        if budget is not None and concurrency > budget:
            warnings.append(
                f"concurrency lowered from {concurrency} to {budget}: the open-file limit "
                f"(ulimit -n) leaves room for only {budget} sockets"
            )
            concurrency = budget
        self._concurrency = concurrency
        self.warnings: tuple[str, ...] = tuple(warnings)
        self._plan = Plan(specs=())
        self._runner: Runner | None = None

    async def run(self) -> None:
        from portprobe.targets.resolve import build_plan

        self._plan = await build_plan(**self._plan_args)  # type: ignore[arg-type]
        self._runner = Runner(
            (*self._plan.specs, *self._plan.unresolved),
            self._config,
            concurrency=self._concurrency,
            per_host=self._per_host,
            tls=self._tls,
            connector=self._connector,
            on_result=self._on_result,
        )
        await self._runner.run()

    def plan(self) -> Plan:
        return self._plan

    def results(self) -> list[ProbeResult]:
        return self._runner.results if self._runner is not None else []
