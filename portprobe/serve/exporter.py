"""The exporter: routes, one run per (module, target) at a time, a result cache, deadlines.

    GET /probe?module=NAME[&target=T]   one diagnosis as metrics
    GET /metrics                        the exporter's own metrics (prometheus_client)
    GET /-/healthy, /-/ready

How a scrape of ``/probe`` is answered:

1. The module and target are checked (unknown module → 400, target not allowed → 400,
   one line each, as blackbox_exporter answers); the scrape's request is a
   :class:`~portprobe.DiagnoseRequest`, frozen and hashable: with the module name it is
   the key of everything below.
2. A result younger than ``cache_ttl`` is answered at once (``portprobe_probe_cached 1``).
3. A run in flight for the same key is joined: a hundred scrapers, one diagnosis.
4. Otherwise a run starts, unless ``max_concurrent`` runs are in flight already (503).
   It runs in the exporter's own nursery (not in the scrape's task) with a deadline:
   the module's ``deadline``, shortened to ``X-Prometheus-Scrape-Timeout-Seconds`` minus
   ``timeout_offset`` when Prometheus sends it. At the deadline the run is cancelled and
   what it found is answered, flagged ``portprobe_interrupted 1`` and ``probe_success 0``;
   such a partial result is not cached.

Mail readiness (about this machine, not the target) is kept apart for ``readiness_ttl``
(:mod:`portprobe.serve.readiness`). All runs share one :class:`~portprobe.Shared`:
catalog, platform table and TLS contexts are built once, and its manners bound the
connections to each address across every run, so ten Prometheus replicas scraping ten
modules never open more than ``per_host`` connections to one mail host at once.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from portprobe.errors import PortprobeError
from portprobe.serve.config import Config, Module, TargetRefused
from portprobe.serve.http import HTTPServer, Request, Response

if TYPE_CHECKING:
    from portprobe.outcome import Report
    from portprobe.request import DiagnoseRequest
    from portprobe.shared import Shared

OPENMETRICS: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT: Final = "text/plain; version=0.0.4; charset=utf-8"
#: Longest request target (path and query) looked at: a scrape URL is ~100 bytes.
TARGET_MAX: Final = 2048
#: Results kept at most (one per module and target); the oldest goes first.
CACHE_MAX: Final = 1024
TIMEOUT_HEADER: Final = "x-prometheus-scrape-timeout-seconds"
_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

Key = tuple[str, "DiagnoseRequest"]


@dataclass
class Result:
    """One finished run, rendered once; answers add only the ``cached`` gauge."""

    body: str  # the exposition without "# EOF"
    interrupted: bool
    finished: float  # trio time


@dataclass
class Flight:
    done: trio.Event = field(default_factory=trio.Event)
    result: Result | None = None
    error: str | None = None  # one line, answered 500


class Exporter:
    def __init__(
        self,
        config: Config,
        shared: Shared,
        *,
        cache_ttl: float = 60.0,
        max_concurrent: int = 8,
        timeout_offset: float = 0.5,
        max_connections: int = 256,
        head_timeout: float = 5.0,
        readiness_ttl: float = 600.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        from portprobe.serve.readiness import ReadinessCache

        self.config = config
        self.readiness = ReadinessCache(readiness_ttl)
        self.say = say or _log
        self.shared = shared
        self.cache_ttl = cache_ttl
        self.max_concurrent = max_concurrent
        self.timeout_offset = timeout_offset
        self.http = HTTPServer(
            self.handle, max_connections=max_connections, head_timeout=head_timeout
        )
        self.stopping = False
        self._answering = 0  # requests being answered now
        self._run_scopes: set[trio.CancelScope] = set()
        self._flights: dict[Key, Flight] = {}
        self._cache: OrderedDict[Key, Result] = OrderedDict()
        self._nursery: trio.Nursery | None = None
        self._metrics()

    # -- metrics of the exporter itself -------------------------------------------------

    def _metrics(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.m_requests = Counter(
            "portprobe_serve_requests",
            "HTTP requests answered, by handler, module and status code.",
            ("handler", "module", "code"),
            registry=r,
        )
        self.m_request_seconds = Histogram(
            "portprobe_serve_request_duration_seconds",
            "Time to answer an HTTP request, by handler.",
            ("handler",),
            buckets=_BUCKETS,
            registry=r,
        )
        self.m_cache_hits = Counter(
            "portprobe_serve_cache_hits",
            "Scrapes answered from a cached result.",
            ("module",),
            registry=r,
        )
        self.m_joins = Counter(
            "portprobe_serve_flight_joins",
            "Scrapes answered by a run that another scrape had started (single flight).",
            ("module",),
            registry=r,
        )
        self.m_runs = Counter(
            "portprobe_serve_diagnoses",
            "Diagnoses run, by module and result (complete, partial, error).",
            ("module", "result"),
            registry=r,
        )
        self.m_run_seconds = Histogram(
            "portprobe_serve_diagnosis_duration_seconds",
            "Time a diagnosis took, by module.",
            ("module",),
            buckets=_BUCKETS,
            registry=r,
        )
        self.m_in_flight = Gauge(
            "portprobe_serve_diagnoses_in_flight", "Diagnoses running now.", registry=r
        )
        self.m_in_flight.set_function(lambda: len(self._flights))
        for name in self.config.modules:  # every module's series exist from the start
            self.m_runs.labels(name, "complete")
            self.m_cache_hits.labels(name)
        r.register(_StatsCollector(self))
        ProcessCollector(registry=r)

    # -- routes -------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        self._answering += 1
        try:
            handler, module, response = await self._route(request)
        finally:
            self._answering -= 1
        self.m_requests.labels(handler, module, str(response.status)).inc()
        self.m_request_seconds.labels(handler).observe(time.perf_counter() - started)
        return response

    async def _route(self, request: Request) -> tuple[str, str, Response]:
        if request.target_length > TARGET_MAX:
            return "other", "", Response.text(414, f"request target over {TARGET_MAX} bytes")
        if request.path == "/probe":
            return await self._probe(request)
        if request.path == "/metrics":
            return "metrics", "", self._own_metrics(request)
        if request.path == "/-/healthy":
            return "healthy", "", Response.text(200, "Healthy")
        if request.path == "/-/ready":
            if self.stopping:
                return "ready", "", Response.text(503, "Stopping")
            return "ready", "", Response.text(200, "Ready")
        if request.path == "/":
            return "other", "", Response.text(200, _INDEX)
        return "other", "", Response.text(404, f"no such page: {request.path[:80]!r}")

    def _own_metrics(self, request: Request) -> Response:
        if _wants_openmetrics(request.headers.get("accept", "")):
            from prometheus_client.openmetrics.exposition import generate_latest as om

            return Response(200, om(self.registry), OPENMETRICS)  # type: ignore[no-untyped-call]
        from prometheus_client.exposition import generate_latest

        return Response(200, generate_latest(self.registry), TEXT)

    async def _probe(self, request: Request) -> tuple[str, str, Response]:
        if request.bad_query:
            return "probe", "", Response.text(400, "too many query parameters")
        modules = request.query.get("module", ["default"])
        targets = request.query.get("target", [])
        if len(modules) > 1 or len(targets) > 1:
            return "probe", "", Response.text(400, "give module and target once each")
        module = self.config.modules.get(modules[0])
        if module is None:
            known = ", ".join(sorted(self.config.modules))
            name = modules[0][:64]
            return "probe", "", Response.text(400, f"unknown module {name!r} (known: {known})")
        try:
            diagnose = module.request_for(targets[0] if targets else None)
        except TargetRefused as exc:
            return "probe", module.name, Response.text(400, str(exc))
        budget = self._budget(module, request.headers.get(TIMEOUT_HEADER))
        if budget is None:
            line = f"{TIMEOUT_HEADER}: not a number of seconds greater than 0"
            return "probe", module.name, Response.text(400, line)
        response = await self._answer(module, (module.name, diagnose), budget)
        om = _wants_openmetrics(request.headers.get("accept", ""))
        if isinstance(response, Response):
            return "probe", module.name, response
        result, cached = response
        tail = "# HELP portprobe_probe_cached 1 when this answer is a cached result.\n"
        tail += f"# TYPE portprobe_probe_cached gauge\nportprobe_probe_cached {int(cached)}\n"
        body = result.body + tail
        if om:
            return "probe", module.name, Response(200, (body + "# EOF\n").encode(), OPENMETRICS)
        return "probe", module.name, Response(200, body.encode(), TEXT)

    def _budget(self, module: Module, header: str | None) -> float | None:
        """Seconds this scrape's run may take; None for a header that is not a number."""
        if header is None:
            return module.deadline
        try:
            seconds = float(header)
        except ValueError:
            return None
        if not math.isfinite(seconds) or seconds <= 0:
            return None
        if seconds > self.timeout_offset:
            seconds -= self.timeout_offset
        else:
            seconds /= 2
        return min(seconds, module.deadline)

    # -- single flight and cache --------------------------------------------------------

    async def _answer(
        self, module: Module, key: Key, budget: float
    ) -> Response | tuple[Result, bool]:
        now = trio.current_time()
        result = self._cache.get(key)
        if result is not None:
            if now - result.finished < self.cache_ttl:
                self.m_cache_hits.labels(module.name).inc()
                return result, True
            del self._cache[key]
        flight = self._flights.get(key)
        if flight is not None:
            self.m_joins.labels(module.name).inc()
        else:
            if self.stopping:
                return Response.text(503, "stopping")
            if len(self._flights) >= self.max_concurrent:
                return Response.text(
                    503, f"over capacity: {self.max_concurrent} diagnoses in flight"
                )
            assert self._nursery is not None
            flight = self._flights[key] = Flight()
            self._nursery.start_soon(self._run, module, key, flight, budget)
        # The run ends by its own deadline; a scrape that joined a run started with a
        # longer one gives up at its own (a small margin covers making the report).
        with trio.move_on_after(budget + 0.25):
            await flight.done.wait()
        if flight.error is not None:
            return Response.text(500, flight.error)
        if flight.result is None:
            return Response.text(503, "the run in flight did not finish within this scrape")
        return flight.result, False

    async def _run(self, module: Module, key: Key, flight: Flight, budget: float) -> None:
        from portprobe.diagnosis import Diagnosis

        started = trio.current_time()
        outcome = "error"
        try:
            diagnosis = Diagnosis(key[1], shared=self.shared)
            self.readiness.install(diagnosis)
            with trio.move_on_after(budget) as scope:
                self._run_scopes.add(scope)
                try:
                    await diagnosis.run()
                finally:
                    self._run_scopes.discard(scope)
            report = diagnosis.report(interrupted=scope.cancelled_caught)
            flight.result = Result(
                render_probe(report, module, trio.current_time() - started),
                report.interrupted,
                trio.current_time(),
            )
            outcome = "partial" if report.interrupted else "complete"
            if not report.interrupted and self.cache_ttl > 0:
                self._remember(key, flight.result)
        except PortprobeError as exc:
            flight.error = str(exc)
        except Exception as exc:  # a bug must not end the exporter; say it in one line
            flight.error = f"internal error in module {module.name!r}: {type(exc).__name__}"
            self.say(f"portprobe serve: {flight.error}: {exc}")
        finally:
            self.m_runs.labels(module.name, outcome).inc()
            self.m_run_seconds.labels(module.name).observe(trio.current_time() - started)
            del self._flights[key]
            flight.done.set()

    def _remember(self, key: Key, result: Result) -> None:
        self._cache[key] = result
        self._cache.move_to_end(key)
        now = trio.current_time()
        while self._cache:
            oldest = next(iter(self._cache.values()))
            if len(self._cache) <= CACHE_MAX and now - oldest.finished < self.cache_ttl:
                break
            self._cache.popitem(last=False)

    # -- running ------------------------------------------------------------------------

    def check(self) -> None:
        """Load every file each module names (catalog, CA file, sysfs) before listening;
        :class:`~portprobe.errors.PortprobeError` naming the module for the first bad one."""
        from portprobe.diagnosis import Diagnosis

        for module in self.config.modules.values():
            try:
                Diagnosis(module.request, shared=self.shared)
            except PortprobeError as exc:
                raise type(exc)(f"module {module.name!r}: {exc}") from None

    async def stop(self, grace: float = 2.0) -> None:
        """Stop cleanly: refuse new runs, cut the runs in flight (their scrapes get the
        partial result, flagged), and wait up to ``grace`` seconds for those answers."""
        self.stopping = True
        for scope in list(self._run_scopes):
            scope.cancel()
        with trio.move_on_after(grace):
            while self._flights or self._answering:
                await trio.sleep(0.01)

    async def run(
        self,
        listeners: list[trio.SocketListener],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until cancelled; runs in flight are cancelled with it."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.http.serve, listeners)
            task_status.started()


def render_probe(report: Report, module: Module, seconds: float) -> str:
    """The ``--format openmetrics`` families, then blackbox_exporter's two, no ``# EOF``."""
    from portprobe.render.openmetrics import MetricFamily, exposition, render_openmetrics

    text = render_openmetrics(report)
    assert text.endswith("# EOF\n")
    success = MetricFamily(
        "probe_success",
        "1 when the run finished and its verdict is one the module expects "
        f"({', '.join(module.success_verdicts)}).",
    )
    ok = not report.interrupted and report.verdict.port25 in module.success_verdicts
    success.add(1 if ok else 0)
    duration = MetricFamily("probe_duration_seconds", "How long the diagnosis took, in seconds.")
    duration.add(round(seconds, 6))
    extra = exposition([success, duration])
    return text[: -len("# EOF\n")] + extra[: -len("# EOF\n")]


def _log(line: str) -> None:
    logging.getLogger("portprobe.serve").error(line)


def _wants_openmetrics(accept: str) -> bool:
    """Content negotiation as Prometheus offers it: OpenMetrics when its q is highest."""
    best_om = best_text = 0.0
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if media.lower() == "application/openmetrics-text":
            best_om = max(best_om, q)
        elif media.lower() in ("text/plain", "text/*", "*/*"):
            best_text = max(best_text, q)
    return best_om > 0 and best_om >= best_text


class _StatsCollector:
    """Connections now open, refused over the cap, and cut off by the head deadline;
    readiness checks run and answered from the readiness cache."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter

    def collect(self) -> Iterator[Metric]:
        stats = self.exporter.http.stats
        readiness = self.exporter.readiness
        yield CounterMetricFamily(
            "portprobe_serve_readiness_checks",
            "Mail-readiness checks run (whoami, PTR, DNSBL) by diagnoses.",
            value=readiness.runs,
        )
        yield CounterMetricFamily(
            "portprobe_serve_readiness_cache_hits",
            "Diagnoses whose mail readiness came from the readiness cache.",
            value=readiness.hits,
        )
        yield GaugeMetricFamily(
            "portprobe_serve_connections_open", "HTTP connections open now.", value=stats.open
        )
        yield CounterMetricFamily(
            "portprobe_serve_connections_rejected",
            "Connections closed at once: the connection cap was reached.",
            value=stats.rejected,
        )
        yield CounterMetricFamily(
            "portprobe_serve_connections_timed_out",
            "Connections closed because a request head did not arrive in time.",
            value=stats.timed_out,
        )


_INDEX: Final = """portprobe serve: can this machine send mail on port 25?
/probe?module=NAME[&target=T]  one diagnosis as metrics
/metrics                       the exporter's own metrics
/-/healthy /-/ready"""
