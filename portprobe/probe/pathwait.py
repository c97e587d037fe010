"""How long to wait for a SYN-ACK, and when to send a second SYN of our own.

A dropped SYN and a slow host look the same to ``connect()`` until something answers. We
do not guess from one probe alone; the run's other connections are the evidence.

- RFC 6298 §2.1 / Linux ``TCP_TIMEOUT_INIT``: the kernel resends an unanswered SYN only
  after 1 s. Waiting for that makes every ``blocked`` verdict cost seconds, and so does
  the catalog's negative control (a port the provider documents as silently dropped) on
  every ordinary run. So portprobe sends its own redundant SYN, as nmap does: a second,
  independent attempt (new socket, so a new source port and a fresh flow for any
  per-flow loss or ECMP path) to the same address and port.
- The round trips measured on this run's connections that did succeed, in the same
  address family, say how long an answer can take. We use the *slowest* of them (rounded
  up to a 10 % step, so deadlines in flight move O(log) times, not once per sample):

      spare SYN at   start + max(SPARE_FLOOR, SPARE_FACTOR x slowest)
      filtered at    start + max(floor,       spare delay + DECIDE_FACTOR x slowest)

      floor = DECIDE_FLOOR   when another host already answered this port in this family
              SILENT_FLOOR   when none has yet (the path itself may drop the port), or the
                             catalog documents this port as not answering (a negative
                             control: only a local interceptor would answer, and fast)

  and both are capped by the hard connect timeout. The first answer on either attempt
  (SYN-ACK, RST, ICMP error) wins and the other is cancelled or closed at once; never
  more than two attempts. Without a measured round trip in the family there is no spare
  and no early decision: the attempt waits for the hard connect timeout (the kernel's
  own retransmissions at 1 s and 3 s still run). New evidence (a slower round trip, a
  first SYN-ACK on a port) moves the deadlines of the attempts already waiting, and only
  ever later, so no probe needs a watcher task.
- Why these numbers: both SYNs (or both SYN-ACKs) lost to random loss is rare (1 % loss:
  about 1 in 2,500 per port counting both directions) and a ``blocked`` verdict needs
  every provider to fail, so the verdict stays right. The two floors are the price of the
  slow-but-open host. One host slow on port 25 while other hosts answer that port at
  once: the port passes this path, so a silence is more likely a slow host than a
  filter, and it gets DECIDE_FLOOR (a 300 ms port is open with 450 ms to spare). No host
  answering a port at all is what an egress filter looks like, and a ``blocked`` verdict
  then needs every one of them silent for SILENT_FLOOR: a port slow on *every* host (a
  queue or proxy in the path) is still ``open`` if it answers within 400 ms, which covers
  the same 300 ms port with 100 ms to spare. A port slower than its floor, on a path
  whose other connections are all much faster, *is* called ``filtered`` early; its JSON
  says ``decided_early: true`` so that is visible.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import trio

from portprobe.probe.errors import is_local_resource

# "A few round trips" of no answer before the spare SYN; never sooner than tens of ms,
# which covers scheduling noise and the first SYN's ARP/ND resolution on a LAN.
SPARE_FACTOR = 3.0
SPARE_FLOOR = 0.05
# After the spare went out, this many of the slowest round trips for its answer...
DECIDE_FACTOR = 4.0
# ...and never less than this in all, once another host answered the same port in this
# family: 2.5 times the 300 ms of a slow-but-open port on a path where everything else
# answers in 5 ms (and above 600 ms, the same port with its 300 ms delay in each
# direction), still under the kernel's 1 s resend and half what nmap needs to call a
# port filtered.
DECIDE_FLOOR = 0.75
# ...or this, while no host has answered the port in this family (or the catalog says it
# should not answer): 300 ms on every host of a port, plus 100 ms of scheduling noise.
SILENT_FLOOR = 0.40
# Spare attempts in flight at once, over the whole run: a spare needs a second socket,
# and the runner sizes its concurrency to the open-file limit with one socket per probe
# (keeping 24 spare descriptors); a probe that finds no spare slot keeps its one SYN.
MAX_SPARES_IN_FLIGHT = 16
# Round trips are rounded up to the next 10 % step above 1 ms.
_RTT_UNIT = 0.001
_RTT_STEP = 1.1

T = TypeVar("T")
_Kind = Literal["spare", "give-up"]


def _rounded(rtt: float) -> float:
    if rtt <= _RTT_UNIT:
        return _RTT_UNIT
    steps = math.ceil(math.log(rtt / _RTT_UNIT, _RTT_STEP) - 1e-9)
    return float(_RTT_UNIT * _RTT_STEP**steps)


@dataclass(frozen=True)
class Schedule:
    """Seconds after the start of a connect attempt."""

    spare_after: float
    give_up_after: float


def schedule_for(slowest_rtt: float | None, *, port_answers: bool = True) -> Schedule | None:
    """The redundant-SYN schedule for a family whose slowest round trip is known.

    ``port_answers``: another connection of this run already got a SYN-ACK from this port
    in this family (and the port is not a documented negative control).
    """
    if slowest_rtt is None:
        return None
    rtt = _rounded(slowest_rtt)
    spare = max(SPARE_FLOOR, SPARE_FACTOR * rtt)
    floor = DECIDE_FLOOR if port_answers else SILENT_FLOOR
    return Schedule(spare, max(floor, spare + DECIDE_FACTOR * rtt))


@dataclass
class SynRace(Generic[T]):
    """How one connect ended: a stream, or the deciding error, or neither (no answer)."""

    stream: T | None = None
    error: OSError | None = None
    attempts: int = 0  # SYN attempts started: 1, or 2 with the spare
    decided_early: bool = False  # no answer, called before the hard connect timeout
    rtt: float | None = None  # the winning attempt's own round trip
    waited: float = 0.0


@dataclass(frozen=True)
class _Waiting:
    """One deadline in flight, and what it was computed from."""

    kind: _Kind
    family: str
    port: int | None
    negative: bool
    started: float
    hard: float


class PathEvidence:
    """Connect round trips seen so far in this run, shared by all its probes."""

    def __init__(self) -> None:
        self._slowest: dict[str, float] = {}
        self._answering: set[tuple[str, int]] = set()  # (family, port) that sent a SYN-ACK
        self._watched: dict[trio.CancelScope, _Waiting] = {}
        self._spares_in_flight = 0

    def slowest(self, family: str) -> float | None:
        return self._slowest.get(family)

    def port_answers(self, family: str, port: int | None) -> bool:
        """Has a connection of this run to ``port`` in ``family`` been answered?

        ``None`` (a caller that does not say which port) counts as answered: the patient
        floor.
        """
        return port is None or (family, port) in self._answering

    def schedule(
        self, family: str, port: int | None = None, *, negative: bool = False
    ) -> Schedule | None:
        answers = self.port_answers(family, port) and not negative
        return schedule_for(self._slowest.get(family), port_answers=answers)

    def record_connect(self, family: str, seconds: float, port: int | None = None) -> None:
        """A connection in ``family`` (to ``port``, if known) took ``seconds`` to answer."""
        before = _rounded(self._slowest[family]) if family in self._slowest else None
        self._slowest[family] = max(self._slowest.get(family, 0.0), seconds)
        new_port = port is not None and (family, port) not in self._answering
        if port is not None:
            self._answering.add((family, port))
        if not new_port and _rounded(self._slowest[family]) == before:
            return
        for scope, waiting in self._watched.items():
            if waiting.family == family:
                scope.deadline = self._deadline(waiting)

    def _deadline(self, w: _Waiting) -> float:
        """When a waiting attempt sends its spare (inf: never) or is called ``filtered``,
        both capped by its hard connect deadline."""
        plan = self.schedule(w.family, w.port, negative=w.negative)
        if w.kind == "spare":
            if plan is None or w.started + plan.spare_after >= w.hard:
                return math.inf
            return w.started + plan.spare_after
        if plan is None:
            return w.hard
        return min(w.started + plan.give_up_after, w.hard)

    @contextmanager
    def _watch(self, waiting: _Waiting) -> Iterator[trio.CancelScope]:
        scope = trio.CancelScope(deadline=self._deadline(waiting))
        self._watched[scope] = waiting
        try:
            yield scope
        finally:
            del self._watched[scope]

    async def race(
        self,
        out: SynRace[T],
        open_one: Callable[[], Awaitable[T]],
        close: Callable[[T], Awaitable[None]],
        *,
        family: str,
        hard_deadline: float,
        port: int | None = None,
        negative: bool = False,
    ) -> None:
        """Connect with at most two SYN attempts on the schedule above; fills ``out``.

        ``open_one`` opens one connection (raises ``OSError`` for an answer that is not
        a SYN-ACK); ``close`` closes a stream that lost the race. ``out`` is passed in
        so that an outer deadline still leaves it saying how many attempts went out.
        """
        started = trio.current_time()

        async def attempt(nursery: trio.Nursery, spare: bool) -> None:
            out.attempts += 1
            began = trio.current_time()
            try:
                stream = await open_one()
            except OSError as exc:
                if spare and is_local_resource(exc):
                    return  # no socket for the spare: says nothing; the first still waits
                if out.stream is None and out.error is None:
                    out.error = exc
                nursery.cancel_scope.cancel()
                return
            if out.stream is not None or out.error is not None:
                await close(stream)  # the other attempt already won
                return
            out.stream, out.rtt = stream, trio.current_time() - began
            nursery.cancel_scope.cancel()

        async def spare_when_due(nursery: trio.Nursery, scope: trio.CancelScope) -> None:
            with scope:
                await trio.sleep_forever()
            # Due. But on a busy event loop (TLS handshakes are CPU work in this thread)
            # the first attempt's SYN-ACK may be waiting in the same batch of events as
            # this deadline: let it run first, so a spare never goes to a host that
            # already answered.
            await trio.lowlevel.checkpoint()
            if self._spares_in_flight >= MAX_SPARES_IN_FLIGHT:
                return
            self._spares_in_flight += 1
            try:
                await attempt(nursery, spare=True)
            finally:
                self._spares_in_flight -= 1

        def waiting(kind: _Kind) -> _Waiting:
            return _Waiting(kind, family, port, negative, started, hard_deadline)

        with (
            self._watch(waiting("give-up")) as give_up,
            self._watch(waiting("spare")) as spare,
            give_up,
        ):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(attempt, nursery, False)
                nursery.start_soon(spare_when_due, nursery, spare)
        out.waited = trio.current_time() - started
        if out.stream is None and out.error is None:
            out.decided_early = give_up.deadline < hard_deadline
        if out.rtt is not None:
            self.record_connect(family, out.rtt, port)
