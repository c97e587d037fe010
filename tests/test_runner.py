"""The runner: concurrency, manners, order, cancellation, file descriptors."""

from __future__ import annotations

import resource

import pytest
import trio
import trio.testing

from portprobe.model import ProbeResult, ProbeSpec
from portprobe.probe import ProbeConfig, Runner
from portprobe.probe.runner import fd_budget, open_fd_count
from portprobe.probe.tls import make_contexts
from tests.servers import Transcript, closed_port, simple_smtp_dialogue


def specs_for(port: int, n_hosts: int, ports: tuple[int, ...] = (25, 465, 587, 2525)):
    """``n_hosts`` loopback addresses (127.0.0.x all reach the same listener on 0.0.0.0)."""
    return [
        ProbeSpec(
            target=f"h{i}",
            host=f"h{i}.test",
            address=f"127.0.1.{i + 1}",
            family="ipv4",
            port=role,
            provider=f"p{i}",
            connect_port=port,
        )
        for i in range(n_hosts)
        for role in ports
        if role != 465  # the raw server speaks plain SMTP
    ]


async def serve_any_address(nursery: trio.Nursery, handler):
    transcript = Transcript()

    async def on_connection(stream: trio.SocketStream) -> None:
        try:
            await handler(stream, transcript)
        except trio.BrokenResourceError:
            pass
        finally:
            await trio.aclose_forcefully(stream)

    listeners = await nursery.start(trio.serve_tcp, on_connection, 0)
    return listeners[0].socket.getsockname()[1]


@pytest.mark.parametrize(
    ("concurrency", "per_host", "peak_total", "peak_host", "wall"),
    [
        # Nothing binds: the whole run takes as long as its slowest probe (2 s).
        (100, 4, 60, 3, 2.0),
        # Limits bind: 30 at once, 2 per address (3 ports each), so three 2-s waves.
        (30, 2, 30, 2, 6.0),
    ],
)
async def test_probes_run_concurrently_and_results_keep_plan_order(
    autojump_clock: trio.testing.MockClock,
    concurrency: int,
    per_host: int,
    peak_total: int,
    peak_host: int,
    wall: float,
) -> None:
    in_flight = 0
    peak = 0
    per_address: dict[str, int] = {}
    peak_per_address = 0

    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        nonlocal in_flight, peak, peak_per_address
        address = stream.socket.getsockname()[0]
        in_flight += 1
        per_address[address] = per_address.get(address, 0) + 1
        peak = max(peak, in_flight)
        peak_per_address = max(peak_per_address, per_address[address])
        try:
            await trio.sleep(2.0)  # every server takes 2 s to greet
            await simple_smtp_dialogue(stream, t)
        finally:
            in_flight -= 1
            per_address[address] -= 1

    async with trio.open_nursery() as nursery:
        port = await serve_any_address(nursery, handler)
        specs = specs_for(port, 20)
        seen: list[ProbeResult] = []
        runner = Runner(
            specs,
            ProbeConfig(timeout=10),
            concurrency=concurrency,
            per_host=per_host,
            on_result=seen.append,
        )
        start = trio.current_time()
        results = await runner.run()
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert [r.spec for r in results] == specs
    assert all(r.state == "open" for r in results)
    assert len(seen) == len(specs) == 60
    assert peak == peak_total  # the global limit was reached, never passed
    assert peak_per_address == peak_host  # manners: never more than per_host per address
    assert elapsed == pytest.approx(wall, abs=0.1)


async def test_cancellation_leaves_no_socket_open() -> None:
    before = open_fd_count()

    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        port = await serve_any_address(nursery, handler)
        runner = Runner(specs_for(port, 25), ProbeConfig(timeout=60), concurrency=100)
        with trio.move_on_after(0.5):
            await runner.run()
        assert runner.done == 0 and runner.results == []
        nursery.cancel_scope.cancel()
    # Give the kernel nothing to do: sockets are closed synchronously by aclose_forcefully.
    assert open_fd_count() <= before


async def test_partial_results_survive_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        if stream.socket.getsockname()[0].endswith(".1"):
            await simple_smtp_dialogue(stream, t)
        else:
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        port = await serve_any_address(nursery, handler)
        runner = Runner(specs_for(port, 3), ProbeConfig(timeout=60))
        with trio.move_on_after(5):
            await runner.run()
        nursery.cancel_scope.cancel()
    assert {r.spec.address for r in runner.results} == {"127.0.1.1"}
    assert all(r.state == "open" for r in runner.results)


def test_concurrency_above_the_fd_limit_degrades_with_a_warning() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        budget = fd_budget()
        assert budget is not None and budget < 64
        runner = Runner([], concurrency=500, tls=make_contexts())
        assert runner.concurrency == budget
        assert runner.warnings and "ulimit -n" in runner.warnings[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_closed_ports_all_refused_fast() -> None:
    port = closed_port()
    specs = specs_for(port, 10, ports=(25,))
    results = trio.run(Runner(specs, ProbeConfig(timeout=5)).run)
    assert [r.state for r in results] == ["refused"] * 10


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError):
        Runner([], concurrency=0, tls=make_contexts())
