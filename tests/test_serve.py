"""``portprobe serve`` over real loopback sockets: probes, single flight, cache, deadlines,
capacity, bad input, content negotiation and boundedness.

The exporter runs in the test's trio run (portprobe.serve.exporter), the HTTP client is a
raw socket, and the probed mail host is a loopback SMTP server (tests/servers.py). No
assertion is about how long something took; where a test must wait for a state (a
hundred scrapes joined one run) it waits for the exporter's own metric to say so.
"""

from __future__ import annotations

import os
import resource
from dataclasses import replace

import pytest
import trio
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

from portprobe.probe.connect import open_tcp
from portprobe.serve.config import Module, _Allowed
from portprobe.serve.exporter import OPENMETRICS, TEXT
from portprobe.shared import Shared
from tests.dns_server import DNSServer
from tests.test_serve_support import (
    config,
    get,
    running_exporter,
    sample,
    start_smtp_host,
    wait_until,
)

OM_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def values(
    text: str, *, openmetrics: bool = True
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    parse = om_parse if openmetrics else text_parse
    return {
        (s.name, frozenset(s.labels.items())): s.value for fam in parse(text) for s in fam.samples
    }


async def test_probe_answers_the_verdict_in_both_formats() -> None:
    async with trio.open_nursery() as nursery:
        host = await start_smtp_host(nursery)
        async with running_exporter(config({"lo": host.request()})) as (_, port):
            om = await get(port, "/probe?module=lo", {"Accept": OM_ACCEPT})
            text = await get(port, "/probe?module=lo")
        nursery.cancel_scope.cancel()
    assert om.status == 200 and om.headers["content-type"] == OPENMETRICS
    assert om.text.endswith("# EOF\n")
    got = values(om.text)
    assert got[("portprobe_verdict", frozenset({("verdict", "open")}))] == 1
    assert got[("probe_success", frozenset())] == 1
    assert got[("probe_duration_seconds", frozenset())] > 0
    assert got[("portprobe_interrupted", frozenset())] == 0
    assert got[("portprobe_probe_cached", frozenset())] == 0
    # The second scrape came from the cache, in Prometheus' text format 0.0.4.
    assert text.status == 200 and text.headers["content-type"] == TEXT
    assert "# EOF" not in text.text
    plain = values(text.text, openmetrics=False)
    assert plain[("portprobe_probe_cached", frozenset())] == 1
    assert plain[("portprobe_verdict", frozenset({("verdict", "open")}))] == 1


async def test_a_silent_port_25_is_blocked_and_probe_success_0() -> None:
    async with trio.open_nursery() as nursery:
        host = await start_smtp_host(nursery)
        host.behaviour.mode = "silent"
        request = host.request(timeout=0.5)
        async with running_exporter(config({"lo": request})) as (_, port):
            answer = await get(port, "/probe?module=lo", {"Accept": OM_ACCEPT})
        nursery.cancel_scope.cancel()
    got = values(answer.text)
    assert got[("portprobe_verdict", frozenset({("verdict", "blocked")}))] == 1
    assert got[("probe_success", frozenset())] == 0


async def test_a_hundred_concurrent_scrapes_share_one_diagnosis() -> None:
    connections: list[int] = []

    async def counting(spec, options):  # type: ignore[no-untyped-def]
        connections.append(spec.port)
        return await open_tcp(spec, options)

    async with trio.open_nursery() as nursery:
        host = await start_smtp_host(nursery)
        host.behaviour.hold = trio.Event()  # port 25 greets only when the test says so
        shared = Shared(connector=counting)
        cfg = config({"lo": host.request()})
        async with running_exporter(cfg, shared=shared, cache_ttl=0) as (exporter, port):
            answers: list[int] = []

            async def scrape() -> None:
                answers.append((await get(port, "/probe?module=lo")).status)

            async with trio.open_nursery() as scrapers:
                for _ in range(100):
                    scrapers.start_soon(scrape)
                await wait_until(
                    lambda: (
                        sample(exporter, "portprobe_serve_flight_joins_total", module="lo") == 99
                    )
                )
                host.behaviour.hold.set()
            runs = sample(
                exporter, "portprobe_serve_diagnoses_total", module="lo", result="complete"
            )
        nursery.cancel_scope.cancel()
    assert answers == [200] * 100
    assert runs == 1
    assert connections.count(25) == 1
    assert host.behaviour.connections == 1


async def test_concurrent_runs_share_one_per_address_limit() -> None:
    """Ten modules probing one host at once (ten Prometheus replicas, say) open no more
    connections to it together than ``per_host``: the runs share the exporter's Shared."""
    async with trio.open_nursery() as nursery:
        host = await start_smtp_host(nursery)
        host.behaviour.hold = trio.Event()
        names = [f"m{i}" for i in range(10)]
        shared = Shared(per_host=2)
        cfg = config({name: host.request(ports=(25,)) for name in names})
        async with running_exporter(cfg, shared=shared, max_concurrent=10) as (_, port):
            answers: list[int] = []

            async def scrape(module: str) -> None:
                answers.append((await get(port, f"/probe?module={module}")).status)

            def waiting_or_holding() -> int:
                # Manners keeps (limiter, users) per address while anyone wants it.
                return shared.manners._per_address.get("127.0.0.1", (None, 0))[1]

            async with trio.open_nursery() as scrapers:
                for name in names:
                    scrapers.start_soon(scrape, name)
                await wait_until(lambda: waiting_or_holding() == 10 and host.behaviour.open == 2)
                peak_while_held = host.behaviour.peak
                host.behaviour.hold.set()
        nursery.cancel_scope.cancel()
    assert peak_while_held == 2
    assert host.behaviour.peak == 2
    assert host.behaviour.connections == 10
    assert answers == [200] * 10


async def test_over_max_concurrent_runs_is_503_and_the_cache_answers() -> None:
    async with trio.open_nursery() as nursery:
        host = await start_smtp_host(nursery)
        host.behaviour.hold = trio.Event()
        cfg = config({"a": host.request(), "b": host.request(ports=(25,))})
        async with running_exporter(cfg, max_concurrent=1) as (exporter, port):
            first: list[int] = []

            async def scrape_a() -> None:
                first.append((await get(port, "/probe?module=a")).status)

            nursery.start_soon(scrape_a)
            await wait_until(lambda: host.behaviour.connections == 1)
            busy = await get(port, "/probe?module=b")
            host.behaviour.hold.set()
            await wait_until(lambda: first == [200])
            cached = await get(port, "/probe?module=a")
            hits = sample(exporter, "portprobe_serve_cache_hits_total", module="a")
        nursery.cancel_scope.cancel()
    assert busy.status == 503 and busy.text.count("\n") == 1
    assert "over capacity" in busy.text
    assert cached.status == 200 and "portprobe_probe_cached 1" in cached.text
    assert hits == 1


async def test_the_scrape_timeout_header_cuts_the_run_and_flags_it_partial() -> None:
    async with trio.open_nursery() as nursery:
        host = await start_smtp_host(nursery)
        host.behaviour.mode = "silent"  # port 25 would keep the run waiting for 10 s
        cfg = config({"lo": host.request(timeout=10.0)})
        async with running_exporter(cfg, timeout_offset=0.2) as (exporter, port):
            header = {"X-Prometheus-Scrape-Timeout-Seconds": "0.7", "Accept": OM_ACCEPT}
            with trio.fail_after(8):  # far below the probe's own 10 s
                first = await get(port, "/probe?module=lo", header)
                second = await get(port, "/probe?module=lo", header)
            partial = sample(
                exporter, "portprobe_serve_diagnoses_total", module="lo", result="partial"
            )
        nursery.cancel_scope.cancel()
    for answer in (first, second):
        got = values(answer.text)
        assert got[("portprobe_interrupted", frozenset())] == 1
        assert got[("probe_success", frozenset())] == 0
        assert got[("portprobe_probe_cached", frozenset())] == 0
    assert partial == 2  # a partial result is never cached


#: Everything under the root, so every name a readiness check asks is in this zone: the
#: PTR of the stated address (documentation range) and its forward name; the rest NXDOMAIN.
ROOT_ZONE = """\
@ 3600 IN SOA ns. hostmaster. 1 3600 600 86400 60
@ 3600 IN NS ns.
ns 3600 IN A 127.0.0.1
10.2.0.192.in-addr.arpa. 3600 IN PTR mail.example.test.
mail.example.test. 3600 IN A 192.0.2.10
"""


async def test_mail_readiness_is_kept_apart_from_the_results() -> None:
    with DNSServer(ROOT_ZONE, origin=".") as dns:
        async with trio.open_nursery() as nursery:
            host = await start_smtp_host(nursery)
            request = host.request(
                readiness=True, public_ips=("192.0.2.10",), nameservers=(dns.spec,)
            )
            cfg = config({"lo": request, "other": host.request(ports=(25,), **_same(request))})
            async with running_exporter(cfg, cache_ttl=0) as (exporter, port):
                first = await get(port, "/probe?module=lo")
                asked = len(dns.queries)
                second = await get(port, "/probe?module=lo")
                third = await get(port, "/probe?module=other")
                again = len(dns.queries)
                readiness = exporter.readiness
            nursery.cancel_scope.cancel()
    assert asked > 0 and again == asked  # one readiness check for three diagnoses
    assert (readiness.runs, readiness.hits) == (1, 2)
    for answer in (first, second, third):
        assert answer.status == 200 and "portprobe_readiness{" in answer.text
        assert 'portprobe_verdict{verdict="open"} 1' in answer.text
    assert "probe_success 1" in third.text


def _same(request):  # type: ignore[no-untyped-def]
    return {"readiness": True, "public_ips": request.public_ips, "nameservers": request.nameservers}


def _module_with_targets(request, kind, allow, private=False, name="m"):  # type: ignore[no-untyped-def]
    from portprobe.serve.config import _Checker

    checker = _Checker("", "test.toml")
    return Module(
        name,
        request,
        target=kind,
        allowed=checker.allowed(name, tuple(allow)),
        allow_private=private,
    )


@pytest.mark.parametrize(
    ("path", "headers", "status", "says"),
    [
        ("/probe?module=nope", {}, 400, "unknown module 'nope'"),
        ("/probe?module=lo&target=127.0.0.1", {}, 400, "takes no target"),
        # address-text: the two private targets below are refused (400), never probed
        ("/probe?module=private&target=172.16.0.1", {}, 400, "not in module 'private''s allow"),
        ("/probe?module=hosts&target=10.1.2.3", {}, 400, "not a global address"),  # address-text
        ("/probe?module=hosts&target=mx.other.test", {}, 400, "allow_targets"),
        ("/probe?module=hosts&target=bad..name", {}, 400, "invalid target"),
        ("/probe?module=lo&module=lo", {}, 400, "once each"),
        ("/probe?module=hosts", {}, 400, "needs a target"),
        ("/probe?module=lo&" + "x=1&" * 20, {}, 400, "too many query parameters"),
        ("/probe?module=lo&target=" + "a" * 10_000, {}, 414, "request target over"),
        ("/probe?module=lo", {"X-Prometheus-Scrape-Timeout-Seconds": "soon"}, 400, "not a number"),
        ("/nothing", {}, 404, "no such page"),
    ],
)
async def test_bad_input_is_one_line_and_a_4xx(
    path: str, headers: dict[str, str], status: int, says: str
) -> None:
    from portprobe.request import DiagnoseRequest

    lo = DiagnoseRequest(targets=("127.0.0.1",), readiness=False)
    allow = ["mx.example.test", "10.0.0.0/8"]  # address-text: allow-list text
    hosts = _module_with_targets(replace(lo, targets=()), "host", allow, name="hosts")
    private = _module_with_targets(lo, "host", allow, private=True, name="private")
    cfg = config({"lo": lo, "hosts": hosts, "private": private})

    async def no_network(spec, options):  # type: ignore[no-untyped-def]
        raise AssertionError(f"a refused scrape must not connect ({spec.address})")

    async with running_exporter(cfg, shared=Shared(connector=no_network)) as (exporter, port):
        answer = await get(port, path, headers)
        runs = exporter.m_runs.labels("lo", "complete")._value.get()
    assert answer.status == status, answer.text
    assert says in answer.text
    assert answer.text.count("\n") == 1 and "Traceback" not in answer.text
    assert runs == 0


async def test_a_huge_head_a_post_and_a_head_request() -> None:
    from portprobe.request import DiagnoseRequest

    cfg = config({"lo": DiagnoseRequest(targets=("127.0.0.1",), readiness=False)})
    async with running_exporter(cfg) as (_, port):
        huge = await get(port, "/-/healthy", {"X-Filler": "x" * 20_000})
        post = await get(port, "/-/healthy", method="POST")
        head = await get(port, "/-/healthy", method="HEAD")
        healthy = await get(port, "/-/healthy")
        ready = await get(port, "/-/ready")
    assert huge.status == 431
    assert post.status == 405 and post.headers["allow"] == "GET, HEAD"
    assert head.status == 200 and head.body == b""
    assert healthy.status == 200 and healthy.text == "Healthy\n"
    assert ready.status == 200


async def test_target_allow_list_admits_names_wildcards_and_networks() -> None:
    async with trio.open_nursery() as nursery:
        host = await start_smtp_host(nursery)
        module = _module_with_targets(
            host.request(targets=()),
            "host",
            ["127.0.0.0/8", "*.example.test"],
            private=True,
            name="hosts",
        )
        async with running_exporter(config({"hosts": module})) as (_, port):
            ok = await get(port, "/probe?module=hosts&target=127.0.0.1")
        nursery.cancel_scope.cancel()
    assert ok.status == 200
    assert 'portprobe_verdict{verdict="open"} 1' in ok.text
    allowed = _Allowed(("mx.example.test",), (".example.test",), ())
    assert allowed.name("a.b.example.test") and not allowed.name("example.test.evil")


async def test_own_metrics_negotiate_and_count() -> None:
    from portprobe.request import DiagnoseRequest

    cfg = config({"lo": DiagnoseRequest(targets=("127.0.0.1",), readiness=False)})
    async with running_exporter(cfg) as (_, port):
        await get(port, "/probe?module=nope")
        om = await get(port, "/metrics", {"Accept": OM_ACCEPT})
        text = await get(port, "/metrics")
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    got = values(om.text)
    assert (
        got[
            (
                "portprobe_serve_requests_total",
                frozenset({("handler", "probe"), ("module", ""), ("code", "400")}),
            )
        ]
        == 1
    )
    assert got[("portprobe_serve_diagnoses_in_flight", frozenset())] == 0
    assert ("process_open_fds", frozenset()) in got
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert list(text_parse(text.text))


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def test_a_thousand_idle_connections_and_a_slowloris_are_bounded() -> None:
    from portprobe.request import DiagnoseRequest

    _raise_fd_limit(4096)
    cfg = config({"lo": DiagnoseRequest(targets=("127.0.0.1",), readiness=False)})
    opts = {"max_connections": 50, "head_timeout": 2.0}
    async with running_exporter(cfg, **opts) as (exporter, port):
        stats = exporter.http.stats
        idle = []
        most = 0
        for _ in range(1000):
            idle.append(await trio.open_tcp_stream("127.0.0.1", port))
            most = max(most, stats.open)
        # A slowloris: a byte at a time, never finishing the head.
        slow = await trio.open_tcp_stream("127.0.0.1", port)
        cut = False
        with trio.fail_after(20):
            try:
                for byte in b"GET /-/healthy HTTP/1.1\r\nX: " + b"y" * 10_000:
                    await slow.send_all(bytes([byte]))
                    await trio.sleep(0.01)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                cut = True
        await wait_until(lambda: stats.open == 0)
        healthy = await get(port, "/-/healthy")
        rejected, timed_out, peak = stats.rejected, stats.timed_out, stats.peak
        for stream in [*idle, slow]:
            await trio.aclose_forcefully(stream)
    assert most <= 50 and peak == 50  # never more than the cap, however many connect
    assert rejected > 0  # the rest were closed at once (or waited in the kernel's backlog)
    assert timed_out >= 1
    assert cut
    assert healthy.status == 200


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc (Linux)")
async def test_a_thousand_scrapes_leave_fds_and_memory_flat() -> None:
    """A thousand uncached scrapes, ten at a time, each of its own module (so no two
    share a run): a thousand diagnoses, and the process ends with the fds and memory it
    had after the first hundred."""
    async with trio.open_nursery() as nursery:
        host = await start_smtp_host(nursery)
        names = [f"m{i}" for i in range(10)]
        cfg = config({name: host.request(ports=(25,)) for name in names})
        async with running_exporter(cfg, cache_ttl=0.0, max_concurrent=10) as (exporter, port):

            async def scrapes(count: int) -> None:
                async def one(module: str) -> None:
                    answer = await get(port, f"/probe?module={module}")
                    assert answer.status == 200

                for _ in range(count // 10):
                    async with trio.open_nursery() as batch:
                        for name in names:
                            batch.start_soon(one, name)

            await scrapes(100)  # warm: imports, TLS contexts, first allocations
            fds, rss = _fds(), _rss()
            await scrapes(1000)
            after_fds, after_rss = _fds(), _rss()
            runs = sum(
                sample(exporter, "portprobe_serve_diagnoses_total", module=name, result="complete")
                for name in names
            )
        nursery.cancel_scope.cancel()
    assert runs == 1100  # every scrape ran its own diagnosis
    assert abs(after_fds - fds) <= max(2, fds // 10), (fds, after_fds)
    assert after_rss <= rss * 1.10, (rss, after_rss)
