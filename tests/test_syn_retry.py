"""The connect phase: portprobe's own redundant SYN, and when a silent port is ``filtered``.

Everything here runs under the mock clock through the connector seam: each fake
connection attempt answers after a scripted delay (an in-memory SMTP server), fails with
a scripted errno, or never answers. No socket, no real time, so the schedule is checked
to the microsecond. The lab adds the same check end to end (a 300 ms port 25).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest
import trio
import trio.testing

from portprobe.model import ProbeResult, ProbeSpec
from portprobe.probe import ProbeConfig, Runner, probe
from portprobe.probe.pathwait import (
    DECIDE_FLOOR,
    SILENT_FLOOR,
    SPARE_FLOOR,
    PathEvidence,
    schedule_for,
)
from portprobe.probe.tls import make_contexts
from tests.servers import MemoryConnection, memory_connection_pair, simple_smtp_dialogue, spec
from tests.servers import Transcript as _Transcript

CONFIG = ProbeConfig(timeout=10, connect_timeout=4)
NEVER = None


@dataclass
class Attempt:
    started: float
    outcome: str = "pending"  # pending, answered, failed, cancelled
    stream: MemoryConnection | None = None


@dataclass
class Script:
    """Connection attempts in call order: seconds until a SYN-ACK, NEVER, or an errno."""

    nursery: trio.Nursery
    answers: list[float | int | None]
    attempts: list[Attempt] = field(default_factory=list)

    async def __call__(self, s: ProbeSpec, _options: object = None) -> trio.abc.Stream:
        attempt = Attempt(trio.current_time())
        self.attempts.append(attempt)
        plan = (
            self.answers[len(self.attempts) - 1]
            if len(self.attempts) <= len(self.answers)
            else NEVER
        )
        try:
            if plan is NEVER:
                await trio.sleep_forever()
            if isinstance(plan, int):  # an errno, at once
                attempt.outcome = "failed"
                raise OSError(plan, errno.errorcode[plan])
            assert isinstance(plan, float)
            await trio.sleep(plan)
        except trio.Cancelled:
            attempt.outcome = "cancelled"
            raise
        client, server = memory_connection_pair()
        self.nursery.start_soon(_serve, server)
        attempt.outcome, attempt.stream = "answered", client
        return client

    @property
    def starts(self) -> list[float]:
        return [a.started for a in self.attempts]


async def _serve(server: MemoryConnection) -> None:
    try:
        await simple_smtp_dialogue(server, _Transcript())
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(server)


def measured(rtt: float, family: str = "ipv4", port: int | None = None) -> PathEvidence:
    """Another connection of this run took ``rtt`` (to ``port``, when given)."""
    evidence = PathEvidence()
    evidence.record_connect(family, rtt, port)
    return evidence


async def run(
    answers: list[float | int | None], evidence: PathEvidence, s: ProbeSpec | None = None
):
    async with trio.open_nursery() as nursery:
        script = Script(nursery, answers)
        start = trio.current_time()
        result = await probe(
            s or spec(1), CONFIG, tls=make_contexts(), evidence=evidence, connector=script
        )
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    return result, elapsed, [t - start for t in script.starts], script


# --- the schedule itself ---------------------------------------------------------------------


def test_schedule_floors_and_multiples() -> None:
    assert schedule_for(None) is None  # no evidence, no spare, no early decision
    fast = schedule_for(0.005)
    assert fast is not None
    assert fast.spare_after == SPARE_FLOOR and fast.give_up_after == DECIDE_FLOOR
    # No connection to this port has been answered yet: the path may drop it.
    silent = schedule_for(0.005, port_answers=False)
    assert silent is not None
    assert silent.spare_after == SPARE_FLOOR and silent.give_up_after == SILENT_FLOOR
    assert 0.3 < SILENT_FLOOR < DECIDE_FLOOR < 1.0  # a 300 ms port stays open either way
    slow = schedule_for(0.200)
    assert slow is not None
    assert slow.spare_after == pytest.approx(0.6, rel=0.1)  # 3 round trips
    assert slow.give_up_after == pytest.approx(1.4, rel=0.1)  # then 4 more
    # Rounded up, never down: the schedule only gets more patient than the evidence.
    for rtt in (0.001, 0.0123, 0.08, 0.3, 1.7):
        plan = schedule_for(rtt)
        assert plan is not None
        assert plan.spare_after >= 3 * rtt and plan.give_up_after >= plan.spare_after + 4 * rtt


# --- one probe -------------------------------------------------------------------------------


async def test_spare_at_the_computed_time_never_a_third_then_filtered_early(
    autojump_clock: trio.testing.MockClock,
) -> None:
    evidence = measured(0.030, port=1)  # this port answered on another host: DECIDE_FLOOR
    plan = evidence.schedule("ipv4", 1)
    assert plan is not None and plan.spare_after == pytest.approx(0.0927, abs=0.001)  # 3 x 30.9 ms
    assert plan.give_up_after == DECIDE_FLOOR
    result, elapsed, starts, _ = await run([NEVER, NEVER], evidence)
    assert starts == [0.0, pytest.approx(plan.spare_after, abs=1e-6)]  # two, never three
    assert result.state == "filtered"
    assert result.syn_attempts == 2 and result.decided_early is True
    assert elapsed == pytest.approx(plan.give_up_after, abs=1e-6)
    assert elapsed < 1.0  # before the kernel would even resend its first SYN
    d = result.to_dict()
    assert d["syn_attempts"] == 2 and d["decided_early"] is True
    assert result.error is not None and result.error.kind == "timeout"


async def test_no_spare_and_no_early_decision_without_a_round_trip_in_the_family(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A round trip measured over IPv6 says nothing about IPv4.
    result, elapsed, starts, _ = await run([NEVER], measured(0.005, family="ipv6"))
    assert starts == [0.0]
    assert result.state == "filtered"
    assert result.syn_attempts == 1 and result.decided_early is False
    assert elapsed == pytest.approx(CONFIG.connect_timeout, abs=1e-6)


async def test_the_spare_wins_and_the_first_attempt_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    evidence = measured(0.005)
    result, _, starts, script = await run([NEVER, 0.005], evidence)
    assert result.state == "open" and result.greeting is not None
    assert starts == [0.0, pytest.approx(SPARE_FLOOR, abs=1e-6)]
    assert [a.outcome for a in script.attempts] == ["cancelled", "answered"]
    assert result.syn_attempts == 2 and result.decided_early is False
    # The connect time is what the user waited; the round trip recorded is the spare's own.
    assert result.timings.connect == pytest.approx((SPARE_FLOOR + 0.005) * 1000, abs=0.01)
    assert evidence.slowest("ipv4") == pytest.approx(0.005)


async def test_the_first_answer_wins_and_the_late_spare_is_closed_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        script = Script(nursery, [0.100, 0.010])  # first at 100 ms, spare (at 50 ms) at 60 ms
        evidence = measured(0.005)
        result = await probe(
            spec(1), CONFIG, tls=make_contexts(), evidence=evidence, connector=script
        )
        nursery.cancel_scope.cancel()
    first, spare = script.attempts
    assert result.state == "open"
    assert spare.outcome == "answered" and first.outcome == "cancelled"
    assert spare.stream is not None and spare.stream.closed_at is not None  # used, then closed


async def test_both_answer_the_loser_is_closed_when_it_arrives(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Drive the race directly: the first connection wins at 80 ms; the spare (sent at
    # 50 ms) completes anyway at 150 ms, as a connect() can finish while being cancelled,
    # and the stream it brings must be closed, not leaked.
    evidence = measured(0.010)
    from portprobe.probe.pathwait import SynRace

    closed: list[str] = []

    async def open_one() -> str:
        n = len(opened)
        opened.append(trio.current_time())
        if n == 0:
            await trio.sleep(0.080)
            return "first"
        with trio.CancelScope(shield=True):
            await trio.sleep(0.100)
        return "spare"

    async def close(stream: str) -> None:
        closed.append(stream)

    opened: list[float] = []
    out: SynRace[str] = SynRace()
    with trio.move_on_after(5):
        await evidence.race(
            out, open_one, close, family="ipv4", hard_deadline=trio.current_time() + 4
        )
    assert out.stream == "first" and out.attempts == 2
    assert closed == ["spare"]


async def test_a_reset_on_the_spare_is_an_answer(autojump_clock: trio.testing.MockClock) -> None:
    result, elapsed, _, _ = await run([NEVER, errno.ECONNREFUSED], measured(0.005))
    assert result.state == "refused" and result.syn_attempts == 2
    assert elapsed == pytest.approx(SPARE_FLOOR, abs=1e-6)


async def test_no_socket_for_the_spare_is_not_an_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    result, _, _, _ = await run([0.200, errno.EMFILE], measured(0.005))
    assert result.state == "open" and result.error is None


@pytest.mark.parametrize("rtt", [0.300, 0.600])
async def test_a_host_at_300_ms_while_others_answer_in_5_ms_is_open(
    autojump_clock: trio.testing.MockClock, rtt: float
) -> None:
    # The slow-but-open host: every SYN to its port 25 takes 300 ms to be answered (and
    # 600 ms when a lab applies its 300 ms delay in each direction), while other hosts
    # answered this same port in 5 ms.
    evidence = measured(0.005, port=1)
    result, _, starts, _ = await run([rtt, rtt], evidence, spec(1, role=25))
    assert result.state == "open" and result.decided_early is False
    assert len(starts) == 2  # the spare went out at 50 ms, and lost to the first SYN
    assert result.timings.connect == pytest.approx(rtt * 1000, abs=0.01)
    # Now the family knows that round trip, and gives its next silent port more time.
    plan = evidence.schedule("ipv4")
    assert plan is not None and plan.give_up_after >= rtt * 7


async def test_a_port_slow_on_every_host_is_open_at_300_ms(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # No host has answered this port yet (a queue or proxy in the path delays it on every
    # host), so the short floor applies, and it still covers a 300 ms answer.
    evidence = measured(0.005)
    assert not evidence.port_answers("ipv4", 1)
    result, _, _, _ = await run([0.300, 0.300], evidence, spec(1, role=25))
    assert result.state == "open" and result.decided_early is False
    assert evidence.port_answers("ipv4", 1)  # and now it has


async def test_a_silent_port_waits_longer_once_another_host_answered_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    evidence = measured(0.005)  # 5 ms round trips, but not yet on this port
    async with trio.open_nursery() as nursery:

        async def other_host_answers_this_port() -> None:
            await trio.sleep(0.300)  # before SILENT_FLOOR
            evidence.record_connect("ipv4", 0.004, port=1)

        nursery.start_soon(other_host_answers_this_port)
        result, elapsed, starts, _ = await run([NEVER, NEVER], evidence)
    # The deadline moved from SILENT_FLOOR to DECIDE_FLOOR while the attempt waited.
    assert starts == [0.0, pytest.approx(SPARE_FLOOR, abs=1e-6)]
    assert result.state == "filtered" and result.decided_early is True
    assert elapsed == pytest.approx(DECIDE_FLOOR, abs=1e-6)


async def test_another_family_or_port_answering_keeps_the_short_floor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    evidence = measured(0.005, port=2)  # another port of this family
    evidence.record_connect("ipv6", 0.005, port=1)  # this port, in the other family
    result, elapsed, _, _ = await run([NEVER, NEVER], evidence)
    assert result.state == "filtered" and result.decided_early is True
    assert elapsed == pytest.approx(SILENT_FLOOR, abs=1e-6)


async def test_a_negative_control_gets_the_short_floor_even_where_the_port_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The catalog documents this host's port as not answering: only a local interceptor
    # would answer it, and fast. Other hosts answering the port change nothing.
    evidence = measured(0.005, port=1)
    negative = replace(spec(1, role=465), negative=True)
    result, elapsed, _, _ = await run([NEVER, NEVER], evidence, negative)
    assert result.state == "filtered" and result.decided_early is True
    assert elapsed == pytest.approx(SILENT_FLOOR, abs=1e-6)


async def test_a_late_answer_still_wins_before_the_hard_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # This family's slowest connection took 600 ms: the schedule (1.8 s + 2.4 s) is past
    # the 4 s hard connect timeout, so the hard timeout decides, and an answer at 3.2 s counts.
    result, _, _, _ = await run([3.2], measured(0.600))
    assert result.state == "open" and result.decided_early is False


async def test_new_evidence_moves_the_deadlines_of_waiting_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    evidence = PathEvidence()
    async with trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.sleep(0.5)
            evidence.record_connect("ipv4", 0.010, port=1)

        nursery.start_soon(later)
        result, elapsed, starts, _ = await run([NEVER, NEVER], evidence)
    # No evidence at first: no spare. At 0.5 s a round trip is known: the spare is due at
    # once (its time has passed) and the attempt is called at DECIDE_FLOOR.
    assert starts == [0.0, pytest.approx(0.5, abs=1e-6)]
    assert result.state == "filtered" and result.decided_early is True
    assert elapsed == pytest.approx(DECIDE_FLOOR, abs=1e-6)


async def test_outer_deadline_during_connect_still_counts_the_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        script = Script(nursery, [NEVER, NEVER])
        result = await probe(
            spec(1),
            ProbeConfig(timeout=0.3, connect_timeout=4),
            tls=make_contexts(),
            evidence=measured(0.005),
            connector=script,
        )
        nursery.cancel_scope.cancel()
    assert result.state == "filtered" and result.syn_attempts == 2


async def test_dns_error_has_no_syn_attempts() -> None:
    s = ProbeSpec(target="nx.test", host="nx.test", address=None, family=None, port=25)
    result = await probe(s, CONFIG, tls=make_contexts())
    assert result.syn_attempts is None and result.decided_early is False
    assert result.to_dict()["syn_attempts"] is None


# --- a whole run: the negative control no longer costs the full wait --------------------------


async def run_two_hosts(
    silent: Callable[[ProbeSpec], bool], ports: tuple[int, ...]
) -> tuple[list[ProbeResult], float]:
    """A Runner over two hosts (192.0.2.1-2, never dialled: the connector seam answers in
    5 ms), where the probes ``silent`` picks never get an answer; results and run time."""
    async with trio.open_nursery() as nursery:
        answered = Script(nursery, [0.005] * 16)

        async def connector(s: ProbeSpec, _options: object = None) -> trio.abc.Stream:
            if silent(s):
                await trio.sleep_forever()
            return await answered(s)

        plan = [
            ProbeSpec(
                target="p", host="mx.p.test", address=f"192.0.2.{i}", family="ipv4", port=port
            )
            for i in (1, 2)
            for port in ports
        ]
        start = trio.current_time()
        results = await Runner(plan, CONFIG, tls=make_contexts(), connector=connector).run()
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    return results, elapsed


async def test_a_dropped_port_is_called_in_well_under_a_second_in_a_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 465 silently dropped everywhere, like Postmark's 465 in the catalog.
    results, elapsed = await run_two_hosts(lambda s: s.port == 465, (25, 465, 587, 2525))
    dropped = [r for r in results if r.spec.port == 465]
    assert {r.state for r in dropped} == {"filtered"}
    assert all(r.decided_early and r.syn_attempts == 2 for r in dropped)
    assert {r.state for r in results if r.spec.port != 465} == {"open"}
    # No host answered 465 over this path: the short floor, as for an egress filter.
    assert elapsed == pytest.approx(SILENT_FLOOR, abs=1e-6)


async def test_in_a_run_one_silent_host_on_a_port_others_answer_gets_the_long_floor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # This host alone is silent on 25; plain SMTP ports only (the memory server has no TLS).
    results, elapsed = await run_two_hosts(
        lambda s: s.port == 25 and s.address == "192.0.2.2", (25, 587, 2525)
    )
    (silent,) = [r for r in results if r.state != "open"]
    assert silent.spec.address == "192.0.2.2" and silent.spec.port == 25
    assert silent.state == "filtered" and silent.decided_early is True
    assert elapsed == pytest.approx(DECIDE_FLOOR, abs=1e-6)


async def test_the_schedule_can_be_turned_off(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        script = Script(nursery, [NEVER, NEVER])
        start = trio.current_time()
        result = await probe(
            spec(1),
            ProbeConfig(timeout=10, connect_timeout=4, redundant_syn=False),
            tls=make_contexts(),
            evidence=measured(0.005),
            connector=script,
        )
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert result.state == "filtered" and result.syn_attempts == 1
    assert result.decided_early is False and elapsed == pytest.approx(4.0, abs=1e-6)


async def test_no_spare_to_a_host_whose_answer_is_due_at_the_same_moment(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A busy event loop sees the first SYN-ACK and the spare's deadline in one batch: the
    # answer goes first, so a host that answered never gets a second connection.
    for _ in range(20):  # trio shuffles the order within a batch; every order must hold
        result, _, starts, _ = await run([SPARE_FLOOR], measured(0.005))
        assert result.state == "open" and starts == [0.0], starts
        assert result.syn_attempts == 1


async def test_spares_in_flight_are_bounded_for_the_whole_run(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import portprobe.probe.pathwait as pathwait

    monkeypatch.setattr(pathwait, "MAX_SPARES_IN_FLIGHT", 1)
    evidence = measured(0.005)
    results = []
    async with trio.open_nursery() as nursery:
        script = Script(nursery, [])  # nobody ever answers

        async def one(i: int) -> None:
            s = spec(1, address=f"127.0.0.{i + 10}")
            results.append(await probe(s, CONFIG, evidence=evidence, connector=script))

        for i in range(3):
            nursery.start_soon(one, i)
    assert len(script.attempts) == 4  # three first SYNs, one spare
    assert sorted(r.syn_attempts for r in results) == [1, 1, 2]
    assert {r.state for r in results} == {"filtered"} and all(r.decided_early for r in results)
