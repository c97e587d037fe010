"""The streaming pipeline: probes start while other names are still being resolved.

Fake DNS (tests/fake_dns.py) and in-memory connections (tests/memory_net.py) let each
test decide the order of events without any timing; one test at the end runs the real
parts (loopback DNS server, aiosmtpd, real sockets).
"""

from __future__ import annotations

import resource
from typing import Any

import pytest
import trio
import trio.testing

from portprobe.errors import InputError
from portprobe.model import ProbeResult, ProbeSpec
from portprobe.pipeline import Pipeline
from portprobe.probe.engine import ProbeConfig
from portprobe.probe.runner import Runner
from portprobe.probe.tls import make_contexts
from portprobe.targets.planner import probe_key
from portprobe.targets.resolve import PlanInput, build_plan
from tests.dns_server import DNSServer
from tests.fake_dns import ZONE, FakeDNS
from tests.memory_net import MemoryNet
from tests.servers import aiosmtpd_server, simple_smtp_dialogue

TLS = make_contexts()
CONFIG = ProbeConfig(timeout=10, ehlo_name="probe.test")  # memory streams have no address


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    # In-memory streams only (the real-socket test uses no clock): jump at once.
    return trio.testing.MockClock(autojump_threshold=0)


def pipeline(**overrides: Any) -> Pipeline:
    arguments: dict[str, Any] = dict(
        domains=(),
        targets=(),
        catalog=None,
        ports=(25,),
        families=("ipv4", "ipv6"),
        nameservers=(),
        dns_timeout=3.0,
        max_mx=5,
        max_addresses=4,
        port_map={},
        config=CONFIG,
        concurrency=64,
        per_host=4,
        tls=TLS,
    )
    arguments.update(overrides)
    planning = {k: arguments.pop(k) for k in PLANNING if k in arguments}
    return Pipeline(PlanInput(**planning), **arguments)


#: The Pipeline's planning inputs (a PlanInput); the rest are its probing settings.
PLANNING = (
    "domains",
    "targets",
    "catalog",
    "ports",
    "families",
    "nameservers",
    "dns_timeout",
    "max_mx",
    "max_addresses",
    "port_map",
)


def plan_inputs(pipe_args: dict[str, Any]) -> dict[str, Any]:
    keys = ("domains", "targets", "ports", "families", "max_mx", "max_addresses", "port_map")
    return {k: pipe_args[k] for k in keys if k in pipe_args}


# -- streaming -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "held"),
    [
        # Two names: the second's probe runs while the first's A lookup is still out.
        (dict(targets=["mx2.good.test", "nomx.test"]), ("mx2.good.test", "A")),
        # One domain: MX → A/AAAA of mx1 and mx0 → their probes, while mx2's A is out.
        (dict(domains=["good.test"]), ("mx2.good.test", "A")),
    ],
)
async def test_the_first_probe_starts_before_the_last_lookup_answers(
    autojump_clock: trio.testing.MockClock, inputs: dict[str, Any], held: tuple[str, str]
) -> None:
    fake = FakeDNS(ZONE)
    release = fake.hold(*held)  # answered only once a probe of another name is seen
    connects: list[str] = []

    def seen(spec: ProbeSpec) -> None:
        connects.append(spec.host)
        release.set()

    async with trio.open_nursery() as nursery:
        net = MemoryNet(nursery)
        net.on_connect = seen
        pipe = pipeline(lookup=fake, connector=net, **inputs)
        # Without streaming the held lookup would wait for a probe that waits for it:
        # the mock clock would then jump to this deadline and fail the test.
        with trio.fail_after(60):
            await pipe.run()
    assert connects[0] != held[0]  # the first probe went out while `held` was unanswered
    assert fake.answered[-1] == held
    assert held[0] in connects  # and the held name was probed once it answered
    plan = pipe.plan()
    assert plan == await build_plan(PlanInput(ports=(25,), **inputs), lookup=FakeDNS(ZONE))
    assert [r.spec for r in pipe.results()] == list(plan.specs)
    assert {r.state for r in pipe.results()} == {"open"}


async def test_streaming_hides_a_slow_lookup_behind_a_slow_probe(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One name resolves slowly and answers fast, the other the other way round. Resolve
    first, then probe: 0.3 s + 2 s. Streaming: the slowest chain, 0.02 s + 2 s."""
    delay = {"nomx.test": 0.3, "mx2.good.test": 0.02}  # DNS
    greet = {"nomx.test": 0.05, "mx2.good.test": 2.0}  # SMTP greeting

    async def late(name: str, rdtype: str) -> None:
        await trio.sleep(delay[name])

    timed_dns = FakeDNS(ZONE, delay=late)

    async def timed_greeting(stream: trio.abc.Stream, spec: ProbeSpec, t: Any) -> None:
        await trio.sleep(greet[spec.host])
        await simple_smtp_dialogue(stream, t)  # type: ignore[arg-type]

    inputs = dict(targets=["nomx.test", "mx2.good.test"], families=["ipv4"], ports=[25])
    async with trio.open_nursery() as nursery:
        net = MemoryNet(nursery, timed_greeting)
        start = trio.current_time()
        await pipeline(lookup=timed_dns, connector=net, **inputs).run()
        streaming = trio.current_time() - start

        start = trio.current_time()
        plan = await build_plan(PlanInput(**inputs), lookup=timed_dns)  # type: ignore[arg-type]
        await Runner(plan.specs, CONFIG, tls=TLS, connector=net).run()
        resolve_then_probe = trio.current_time() - start
    assert streaming == pytest.approx(2.02, abs=1e-6)
    assert resolve_then_probe == pytest.approx(2.3, abs=1e-6)


EVERYTHING: dict[str, Any] = dict(
    domains=["good.test", "nullmx.test", "mxbroken.test", "manymx.test", "empty.test"],
    targets=["halfbroken.test", "many.test", "mx2.good.test", "192.0.2.99", "2001:db8::99"],
    ports=[25, 587],
    max_mx=3,
    max_addresses=2,
)


@pytest.mark.parametrize("seed", range(4))
async def test_plan_and_results_in_build_plans_order(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    """Answers and greetings arrive in shuffled (mock) times; the order never moves."""
    ticks = iter(range(seed, 10_000))

    async def late(name: str, rdtype: str) -> None:
        await trio.sleep(next(ticks) * 37 % 11 / 10)

    slow_dns = FakeDNS(ZONE, delay=late)

    async def slow_greeting(stream: trio.abc.Stream, spec: ProbeSpec, t: Any) -> None:
        await trio.sleep(next(ticks) * 29 % 7 / 10)
        await simple_smtp_dialogue(stream, t)  # type: ignore[arg-type]

    seen: list[ProbeResult] = []
    async with trio.open_nursery() as nursery:
        net = MemoryNet(nursery, slow_greeting)
        pipe = pipeline(lookup=slow_dns, connector=net, on_result=seen.append, **EVERYTHING)
        await pipe.run()
    plan = await build_plan(PlanInput(**EVERYTHING), lookup=FakeDNS(ZONE))
    assert pipe.plan() == plan
    results = pipe.results()
    assert [r.spec for r in results] == [*plan.specs, *plan.unresolved]
    assert [r.state for r in results] == ["open"] * len(plan.specs) + ["dns-error"] * len(
        plan.unresolved
    )
    assert len(seen) == len(results)
    probes = sorted(probe_key(spec) for spec in net.connections)
    assert probes == sorted(probe_key(spec) for spec in plan.specs)  # each probed once


async def test_a_host_named_twice_is_probed_once_under_the_first_name(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The target's answer comes first, so its probe starts under the target's name; the
    plan (domain first) relabels it, as build_plan's first-one-wins would have."""
    fake = FakeDNS(ZONE)
    mx_answer = fake.hold("good.test", "MX")
    async with trio.open_nursery() as nursery:
        net = MemoryNet(nursery)
        net.on_connect = lambda spec: mx_answer.set()
        pipe = pipeline(
            domains=["good.test"], targets=["mx1.good.test"], lookup=fake, connector=net
        )
        await pipe.run()
    assert net.connections[0].target == "mx1.good.test"  # started before the MX was known
    assert len(net.connections) == 4  # mx1's two addresses were not probed a second time
    assert [r.spec.target for r in pipe.results()] == ["good.test"] * 4
    assert pipe.plan() == await build_plan(
        PlanInput(domains=["good.test"], targets=["mx1.good.test"], ports=[25]),
        lookup=FakeDNS(ZONE),
    )


@pytest.mark.parametrize(
    ("concurrency", "per_host", "peak", "peak_per_address"),
    [(100, 2, 10, 2), (6, 2, 6, 2), (100, 4, 20, 4)],
)
async def test_global_and_per_address_limits_hold_while_streaming(
    autojump_clock: trio.testing.MockClock,
    concurrency: int,
    per_host: int,
    peak: int,
    peak_per_address: int,
) -> None:
    """20 names on 5 addresses, 3 ports each: answers trickle in, limits still hold."""
    zone = {f"h{i}.test": {"A": [f"192.0.2.{i % 5 + 1}"]} for i in range(20)}
    ticks = iter(range(10_000))

    async def late(name: str, rdtype: str) -> None:
        await trio.sleep(next(ticks) % 4 / 10)

    trickle = FakeDNS(zone, delay=late)

    async def greet_after_a_second(stream: trio.abc.Stream, spec: ProbeSpec, t: Any) -> None:
        await trio.sleep(1.0)
        await simple_smtp_dialogue(stream, t)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        net = MemoryNet(nursery, greet_after_a_second)
        pipe = pipeline(
            targets=list(zone),
            families=["ipv4"],
            ports=[25, 587, 2525],
            concurrency=concurrency,
            per_host=per_host,
            lookup=trickle,
            connector=net,
        )
        await pipe.run()
    assert len(pipe.results()) == 60 and {r.state for r in pipe.results()} == {"open"}
    assert net.peak == peak
    assert net.peak_by_address == peak_per_address


# -- cancellation ----------------------------------------------------------------------------


async def test_an_outside_cancel_keeps_what_completed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One host never greets; the run is cancelled once everything else is done."""

    async def mx1_never_greets(stream: trio.abc.Stream, spec: ProbeSpec, t: Any) -> None:
        if spec.host == "mx1.good.test":
            await stream.receive_some()  # until the probe hangs up
        else:
            await simple_smtp_dialogue(stream, t)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        net = MemoryNet(nursery, mx1_never_greets)
        done: list[ProbeResult] = []
        with trio.CancelScope() as outside:

            def cancel_when_only_mx1_is_left(result: ProbeResult) -> None:
                done.append(result)
                if len(done) == 3:  # mx2, mx0 and nxdomain.test's dns-error
                    outside.cancel()

            pipe = pipeline(
                domains=["good.test", "nxdomain.test"],
                lookup=FakeDNS(ZONE),
                connector=net,
                on_result=cancel_when_only_mx1_is_left,
                config=ProbeConfig(timeout=600, ehlo_name="probe.test"),
            )
            await pipe.run()
        assert outside.cancelled_caught
        await trio.testing.wait_all_tasks_blocked()
        assert net.now == 0  # the hanging connections were closed by the cancel
    assert [(r.spec.host, r.spec.address, r.state) for r in pipe.results()] == [
        ("mx2.good.test", "192.0.2.20", "open"),
        ("mx0.good.test", "2001:db8::30", "open"),
        ("nxdomain.test", None, "dns-error"),
    ]


async def test_a_cancel_during_dns_keeps_the_probes_done_and_the_plan_so_far(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeDNS(ZONE)
    fake.hold("mx2.good.test", "A")  # never released
    async with trio.open_nursery() as nursery:
        net = MemoryNet(nursery)
        with trio.CancelScope() as outside:
            pipe = pipeline(
                targets=["mx2.good.test", "nomx.test"],
                families=["ipv4"],
                lookup=fake,
                connector=net,
                on_result=lambda result: outside.cancel(),
            )
            with trio.fail_after(60):  # without streaming nothing is probed: fail, not hang
                await pipe.run()
    assert [(r.spec.host, r.state) for r in pipe.results()] == [("nomx.test", "open")]
    plan = pipe.plan()
    assert [(q.name, q.rdtype) for q in plan.dns] == [("nomx.test", "A")]
    assert [s.host for s in plan.specs] == ["nomx.test"]


# -- inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(domains=["bad_domain.test"]), "invalid domain 'bad_domain.test'"),
        (dict(targets=["mx.test:25"]), "a port is not part of the name"),
        (dict(targets=["192.0.2.1"], ports=[26]), "port 26 is not one of"),
        (dict(targets=["192.0.2.1"], concurrency=0), "concurrency must be at least 1, not 0"),
        (dict(targets=["192.0.2.1"], per_host=0), "per-host limit must be at least 1, not 0"),
        (dict(targets=["192.0.2.1"], dns_timeout=0), "DNS timeout must be positive"),
    ],
)
def test_bad_input_is_refused_by_the_constructor_outside_trio(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        pipeline(lookup=FakeDNS(ZONE), **overrides)


def test_the_fd_limit_warning_is_known_at_construction() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        pipe = pipeline(targets=["192.0.2.1"], concurrency=500)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert pipe.concurrency < 64
    assert len(pipe.warnings) == 1 and "ulimit -n" in pipe.warnings[0]


# -- the real parts --------------------------------------------------------------------------


async def test_real_dns_and_a_real_smtp_server_on_loopback() -> None:
    """dnspython over UDP to the loopback zone, real sockets to aiosmtpd; no timing."""
    with DNSServer() as dns_server, aiosmtpd_server() as port:
        pipe = pipeline(
            targets=["local.test", "nxdomain.test"],
            families=["ipv4"],
            port_map={25: port},
            nameservers=[dns_server.address],
            config=ProbeConfig(timeout=10),
        )
        await pipe.run()
    plan = pipe.plan()
    assert [(q.name, q.rdtype, q.outcome) for q in plan.dns] == [
        ("local.test", "A", "ok"),
        ("nxdomain.test", "A", "nxdomain"),
    ]
    assert [(r.spec.host, r.spec.address, r.state) for r in pipe.results()] == [
        ("local.test", "127.0.0.1", "open"),
        ("nxdomain.test", None, "dns-error"),
    ]
