"""Run many probes at once under one trio nursery, politely and within a hard deadline.

- A global limit (``--concurrency``) and a small per-address limit (manners: a mail host
  sees at most ``per_host`` connections from us at once — one per port by default).
- The wall time of a run is close to its slowest probe, not the sum of all of them.
- Results are handed to ``on_result`` as each completes (for progress display) and kept
  in plan order; ``Runner.results`` holds what completed so far, so an interrupted run
  still reports everything it finished.
- Cancellation (Ctrl-C, a deadline) closes every socket: each probe closes its own
  stream in a ``finally`` with ``aclose_forcefully``.
- File descriptors: a concurrency higher than the fd limit allows degrades to what fits,
  with a warning, instead of failing probes with EMFILE.

The limits live in :class:`ProbePool`, shared by every probe of a run: :class:`Runner`
uses it for a known list of specs, :class:`portprobe.pipeline.Pipeline` for specs that
arrive one by one while DNS answers come in.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import trio

from portprobe import defaults
from portprobe.model import ProbeResult, ProbeSpec
from portprobe.probe.connect import Connector, open_tcp
from portprobe.probe.engine import ProbeConfig, probe
from portprobe.probe.pathwait import PathEvidence
from portprobe.probe.tls import TLSContexts, make_contexts

# File descriptors kept free for the resolver, the report file, the interpreter.
FD_RESERVE = 24


def open_fd_count() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 16


def fd_budget() -> int | None:
    """How many sockets we may still open under RLIMIT_NOFILE, or None if unknown."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(1, soft - open_fd_count() - FD_RESERVE)


class Manners:
    """The limits a whole process keeps, across every run at once (:class:`portprobe.Shared`).

    - ``per_host``: connections open to one address at a time, whichever run opened them;
      a mail host sees one polite client, not one per concurrent diagnosis.
    - ``sockets``: probe connections open at once across all runs (None: no limit here),
      so that many concurrent runs together stay within the open-file limit.

    An address's limiter exists only while some probe holds or waits for it, so a
    long-running process that probes ever new addresses does not grow.
    """

    def __init__(self, per_host: int, sockets: int | None = None) -> None:
        if per_host < 1 or (sockets is not None and sockets < 1):
            raise ValueError("per_host and sockets must be at least 1")
        self.per_host = per_host
        self.sockets = sockets
        self._socket_limit = trio.CapacityLimiter(sockets) if sockets is not None else None
        self._per_address: dict[str, tuple[trio.CapacityLimiter, int]] = {}

    @property
    def addresses(self) -> int:
        """How many addresses have a probe holding or waiting for a slot now."""
        return len(self._per_address)

    @asynccontextmanager
    async def address_slot(self, address: str) -> AsyncIterator[None]:
        """Hold one of ``address``'s connection slots (waits while all are taken)."""
        limiter, users = self._per_address.get(address, (None, 0))
        if limiter is None:
            limiter = trio.CapacityLimiter(self.per_host)
        self._per_address[address] = (limiter, users + 1)
        try:
            async with limiter:
                yield
        finally:
            limiter, users = self._per_address[address]
            if users <= 1:
                del self._per_address[address]
            else:
                self._per_address[address] = (limiter, users - 1)

    @asynccontextmanager
    async def socket_slot(self) -> AsyncIterator[None]:
        """Hold one socket of the process-wide budget."""
        if self._socket_limit is None:
            yield
            return
        async with self._socket_limit:
            yield


class ProbePool:
    """What every probe of one run shares: the global and per-address slots, TLS contexts,
    path evidence and the connector. ``await pool.probe(spec)`` waits for its slots.

    Usable by a caller that learns its specs one by one (:mod:`portprobe.pipeline`) as
    well as by :class:`Runner`. A concurrency above what the fd limit allows is lowered
    here, with a warning in ``warnings``.
    """

    def __init__(
        self,
        config: ProbeConfig | None = None,
        *,
        concurrency: int = defaults.CONCURRENCY,
        per_host: int = defaults.PER_HOST,
        tls: TLSContexts | None = None,
        connector: Connector = open_tcp,
        manners: Manners | None = None,
    ) -> None:
        if concurrency < 1 or per_host < 1:
            raise ValueError("concurrency and per_host must be at least 1")
        self.config = config or ProbeConfig()
        self.warnings: list[str] = []
        budget = fd_budget()
        if budget is not None and concurrency > budget:
            self.warnings.append(
                f"concurrency lowered from {concurrency} to {budget}: the open-file limit "
                f"(ulimit -n) leaves room for only {budget} sockets"
            )
            concurrency = budget
        self.concurrency = concurrency
        self.per_host = per_host
        self._tls = tls if tls is not None else make_contexts()
        self._connector = connector
        self._evidence = PathEvidence()
        self._limit = trio.CapacityLimiter(concurrency)
        # This run's own per-address limit, inside the process-wide one when shared.
        self._manners = manners
        self._per_address: dict[str, trio.CapacityLimiter] = {}

    async def probe(self, spec: ProbeSpec) -> ProbeResult:
        """One probe within the limits; an unresolved spec needs no slot (no network)."""
        if spec.address is None:
            return await probe(spec, self.config, tls=self._tls, connector=self._connector)
        host_limit = self._per_address.setdefault(spec.address, trio.CapacityLimiter(self.per_host))
        # The per-host slots first: a probe waiting for its host must not hold a global one.
        # Always in this order (run, process; address, then sockets), so no two probes
        # can each hold what the other waits for.
        async with AsyncExitStack() as slots:
            await slots.enter_async_context(host_limit)
            if self._manners is not None:
                await slots.enter_async_context(self._manners.address_slot(spec.address))
            await slots.enter_async_context(self._limit)
            if self._manners is not None:
                await slots.enter_async_context(self._manners.socket_slot())
            return await probe(
                spec,
                self.config,
                tls=self._tls,
                evidence=self._evidence,
                connector=self._connector,
            )


class Runner:
    """Probe a known list of specs; results in plan order, partial after a cancel."""

    def __init__(
        self,
        specs: Sequence[ProbeSpec],
        config: ProbeConfig | None = None,
        *,
        concurrency: int = defaults.CONCURRENCY,
        per_host: int = defaults.PER_HOST,
        tls: TLSContexts | None = None,
        ca_file: str | None = None,
        connector: Connector = open_tcp,
        on_result: Callable[[ProbeResult], None] | None = None,
    ) -> None:
        self.specs = tuple(specs)
        self._pool = ProbePool(
            config,
            concurrency=concurrency,
            per_host=per_host,
            tls=tls if tls is not None else make_contexts(ca_file),
            connector=connector,
        )
        self.config = self._pool.config
        self.warnings = self._pool.warnings
        self.concurrency = self._pool.concurrency
        self.per_host = per_host
        self._on_result = on_result
        self._results: list[ProbeResult | None] = [None] * len(self.specs)

    @property
    def results(self) -> list[ProbeResult]:
        """The results that completed, in plan order."""
        return [r for r in self._results if r is not None]

    @property
    def done(self) -> int:
        return sum(r is not None for r in self._results)

    async def run(self) -> list[ProbeResult]:
        async with trio.open_nursery() as nursery:
            for index, spec in enumerate(self.specs):
                nursery.start_soon(self._run_one, index, spec)
        return self.results

    async def _run_one(self, index: int, spec: ProbeSpec) -> None:
        result = await self._pool.probe(spec)
        self._results[index] = result
        if self._on_result is not None:
            self._on_result(result)
