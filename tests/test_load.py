"""Load: 2,000 probes against loopback servers with concurrency 500, in one process.

What must hold: every probe completes with the right state, the concurrency limit is
reached and never passed (500 in flight across 125 addresses, at most ``per_host`` on
any one), no socket outlives the run (open file descriptors before == after), and the
memory the run allocates stays bounded (tracemalloc peak). ``bench/load.py`` measures
the same run's peak RSS, in process and through the CLI.

The servers are trio listeners on 127.0.0.1 ... 127.0.0.125 inside the test's trio run,
on the real clock: sockets do real work here, and a mock clock that jumps while bytes are
in flight would turn slow replies into timeouts. No assertion depends on timing: the
servers hold their greetings until the limit has been reached once (an event, not a
sleep), so "500 in flight" holds however slowly a busy machine opens the sockets.
"""

from __future__ import annotations

import functools
import resource
import tracemalloc
from collections import Counter
from collections.abc import Iterator

import pytest
import trio

from portprobe.model import ProbeResult, ProbeSpec
from portprobe.probe import ProbeConfig, Runner
from portprobe.probe.runner import open_fd_count
from portprobe.probe.tls import make_contexts
from tests.servers import Transcript, simple_smtp_dialogue

PROBES = 2000
CONCURRENCY = 500
ADDRESSES = 125  # x per_host 4 = 500: the global limit, not manners, is what binds
PER_HOST = 4
ROLES = (25, 587, 2525)
#: Only a guard: if the limit can never be reached (a bug), the held greetings go out
#: after this long and the peak assertion fails instead of the test hanging.
HOLD_GUARD = 60.0


@pytest.fixture
def enough_fds() -> Iterator[None]:
    """Raise the soft RLIMIT_NOFILE (up to the hard limit) for 500 + 500 sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2 * CONCURRENCY + ADDRESSES + 100:
        pytest.skip("the hard open-file limit is too low for this load test")
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Gauge:
    """Connections in flight; ``full`` is set the first time ``hold_until`` are at once."""

    def __init__(self, hold_until: int = CONCURRENCY) -> None:
        self.hold_until = hold_until
        self.full = trio.Event()
        self.now = 0
        self.peak = 0
        self.by_address: Counter[str] = Counter()
        self.peak_by_address = 0

    def enter(self, address: str) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        self.by_address[address] += 1
        self.peak_by_address = max(self.peak_by_address, self.by_address[address])
        if self.now >= self.hold_until:
            self.full.set()

    def leave(self, address: str) -> None:
        self.now -= 1
        self.by_address[address] -= 1


async def start_servers(nursery: trio.Nursery, gauge: Gauge) -> dict[str, int]:
    async def handler(stream: trio.SocketStream) -> None:
        address = stream.socket.getsockname()[0]
        gauge.enter(address)
        try:
            with trio.move_on_after(HOLD_GUARD):
                await gauge.full.wait()  # the first wave stays open until all of it is in
            await simple_smtp_dialogue(stream, Transcript())
        except trio.BrokenResourceError:
            pass
        finally:
            gauge.leave(address)
            await trio.aclose_forcefully(stream)

    ports = {}
    for i in range(1, ADDRESSES + 1):
        address = f"127.0.0.{i}"
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handler, 0, host=address, backlog=1024)
        )
        ports[address] = listeners[0].socket.getsockname()[1]
    return ports


def plan(ports: dict[str, int], probes: int = PROBES) -> list[ProbeSpec]:
    specs = [
        ProbeSpec(
            target=f"t{n}.test",
            host=f"mx.t{n}.test",
            address=address,
            family="ipv4",
            port=ROLES[n % len(ROLES)],
            provider=f"p{n % 50}",
            connect_port=port,
        )
        for n, (address, port) in enumerate(
            (address, port)
            for _ in range(-(-probes // len(ports)))
            for address, port in ports.items()
        )
    ][:probes]
    assert len(specs) == probes
    return specs


async def run_load(gauge: Gauge, probes: int = PROBES) -> tuple[list[ProbeResult], int]:
    async with trio.open_nursery() as nursery:
        ports = await start_servers(nursery, gauge)
        runner = Runner(
            plan(ports, probes),
            ProbeConfig(timeout=60, connect_timeout=30),
            concurrency=CONCURRENCY,
            per_host=PER_HOST,
            tls=make_contexts(),
        )
        assert runner.concurrency == CONCURRENCY and not runner.warnings
        results = await runner.run()
        nursery.cancel_scope.cancel()
    return results, runner.concurrency


def rss_now() -> int:
    """Resident set size of this process now, in bytes (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def reset_peak_rss() -> bool:
    """Start this process's RSS high-water mark afresh (Linux >= 4.0, clear_refs "5").

    Without it the peak is the whole pytest process's lifetime peak, which an earlier
    test (a 50 MB merge input, say) may have set: the growth measured would then depend
    on which tests ran first.
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def peak_rss() -> int:
    """This process's RSS high-water mark since the last reset (VmHWM), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def test_two_thousand_probes_no_leaked_socket_bounded_memory(enough_fds: None) -> None:
    gauge = Gauge()
    before = open_fd_count()
    fresh_peak = reset_peak_rss()
    rss_before = rss_now()
    results, _ = trio.run(run_load, gauge)
    growth = peak_rss() - rss_before  # an upper bound on what the run added at its peak
    after = open_fd_count()

    assert len(results) == PROBES
    states = Counter(r.state for r in results)
    assert states == {"open": PROBES}, Counter(r.error.message for r in results if r.error)
    assert all(r.quit_sent and r.ehlo is not None for r in results)
    assert gauge.now == 0
    # The limit binds and holds: 500 at once, never more; manners hold per address.
    assert gauge.peak == CONCURRENCY
    assert gauge.peak_by_address == PER_HOST
    assert after == before, f"{after - before} file descriptors leaked"
    # Bounded memory: what the run added at its peak, servers included, with 1,000
    # sockets open (bench/load.py: ~35 MB for the probing side alone; 100 KB per
    # connection pair would be a leak).
    if fresh_peak:  # else the lifetime peak is all there is, and says nothing of this run
        assert growth < 96 * 1024 * 1024, f"peak RSS grew by {growth / 1e6:.1f} MB"


def test_what_a_run_keeps_per_probe_is_small() -> None:
    """tracemalloc (which slows trio ~5x) on 125 probes: the memory still held once the
    run is over is the results, a few KB each, not buffers or sockets."""
    tracemalloc.start()
    try:
        results, _ = trio.run(run_load, Gauge(hold_until=125), 125)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(results) == 125 and {r.state for r in results} == {"open"}
    assert held / len(results) < 16 * 1024, f"{held / len(results):.0f} bytes held per probe"
    assert peak < 32 * 1024 * 1024, f"tracemalloc peak {peak / 1e6:.1f} MB"
