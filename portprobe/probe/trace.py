"""The TTL ladder: SYNs to port 25 and to a control port of one host at TTL 1, 2, …

No root on Linux: a plain TCP socket with a lowered TTL (``IP_TTL``/``IPV6_UNICAST_HOPS``)
and ``IP_RECVERR`` fails its ``connect()`` at once when a router answers time-exceeded,
and the kernel hands over the router's address (probe/connect.py, kernel ≥ 5.8).

- **TTLs of a window in flight together** (:data:`WINDOW` TTLs, both ports), lowest
  first, as many at once as the slot allows (the per-address limit: a TTL that reaches
  the host is a connection to it); a TTL above the one that reached the host is never
  sent. A next window only when nothing reached the host yet and routers still answer
  at the top of this one, up to ``max_hops``.
- **Two SYNs per TTL at most**: a second one after ``spare`` seconds without an answer
  (a lost SYN, a rate-limited ICMP), as probe/pathwait.py does for the probes, and the
  TTL is silent when neither is answered after ``wait`` seconds, both derived by the
  caller from this run's round trips.
- **Flow identifiers**: each probe is a new socket, so a new ephemeral source port; the
  destination address and port stay fixed per ladder. Pinning one source port across
  TTLs in flight at once is impossible (one 4-tuple holds one connect at a time), so
  per-flow load balancing may route TTLs differently, as for ``traceroute -T``; the
  blocker rules read the ladders of both ports, not one path.
- **Polite**: a reached probe is closed at once with a RST (``SO_LINGER`` 0), no SMTP is
  spoken, and every socket takes a slot of the process-wide socket budget.
"""

from __future__ import annotations

import errno as _errno
import socket
import struct
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import replace

import trio

from portprobe.model import IcmpReport, ProbeSpec
from portprobe.path.model import REACHED, HopOutcome, HopProbe
from portprobe.probe.connect import Connector, SocketOptions, open_tcp

#: TTLs sent at once, per port (Linux traceroute's default -N is 16 probes at once).
WINDOW = 10
MAX_ATTEMPTS = 2

_PROHIBITED = frozenset({"admin-prohibited", "host-prohibited", "net-prohibited"})
_LOCAL_REFUSALS = frozenset({_errno.EPERM, _errno.EACCES})

Slot = Callable[[], AbstractAsyncContextManager[None]]


def outcome_of(exc: OSError) -> tuple[HopOutcome, IcmpReport | None]:
    """What one failed TTL probe got: from the ICMP error when the kernel queued one."""
    report = getattr(exc, "report", None)
    icmp = report.icmp if report is not None else None
    if icmp is not None:
        meaning = icmp.meaning
        if meaning == "time-exceeded":
            return "time-exceeded", icmp
        if meaning in _PROHIBITED:
            return "prohibited", icmp
        return "unreachable", icmp
    if exc.errno == _errno.ECONNREFUSED:
        return "reset", None
    if exc.errno in _LOCAL_REFUSALS:
        return "prohibited", None  # a local rule refused the SYN before it left
    return "unreachable", None


def _abort(stream: trio.abc.Stream) -> None:
    """Close a reached probe with a RST: the host sees a SYN and a reset, nothing more."""
    sock = getattr(stream, "socket", None)
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Ladder:
    """Both ports' ladders to one address; :meth:`run` fills ``port25`` and ``control``."""

    def __init__(
        self,
        port25: ProbeSpec,
        control: ProbeSpec,
        *,
        max_hops: int,
        wait: float,
        spare: float | None = None,
        connector: Connector | None = None,
        slot: Slot | None = None,
        heard: Callable[[str], None] | None = None,
    ) -> None:
        self.specs = {"port25": port25, "control": control}
        self.max_hops = max_hops
        self.wait = wait
        self.spare = spare if spare is not None else wait / 2
        self.connector: Connector = connector or open_tcp
        self.slot = slot
        self.heard = heard  # told each router address as it answers (to name it meanwhile)
        self.found: dict[str, dict[int, HopProbe]] = {"port25": {}, "control": {}}
        self.attempts: dict[tuple[str, int], int] = {}
        self._scopes: dict[tuple[str, int], trio.CancelScope] = {}

    @property
    def port25(self) -> tuple[HopProbe, ...]:
        return tuple(v for _, v in sorted(self.found["port25"].items()))

    @property
    def control(self) -> tuple[HopProbe, ...]:
        return tuple(v for _, v in sorted(self.found["control"].items()))

    async def _one(
        self, which: str, ttl: int, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """One TTL probe; ``started`` once it holds its slot (slots go lowest TTL first)."""
        started = False
        with trio.CancelScope() as scope:
            self._scopes[(which, ttl)] = scope
            try:
                if self.slot is None:
                    started = True
                    task_status.started()
                    await self._send(which, ttl)
                else:
                    async with self.slot():
                        started = True
                        task_status.started()
                        await self._send(which, ttl)
            finally:
                self._scopes.pop((which, ttl), None)
        if not started:
            task_status.started()  # cut before it had its slot: nothing to wait for

    def _limit(self, which: str) -> int:
        """No TTL above the one that reached the host (on the control port, or on port 25
        for port 25) is worth a SYN: it would only reach the host again."""
        tops = [self._reached("control"), self._reached(which) if which == "port25" else None]
        return min([t for t in tops if t is not None] or [self.max_hops])

    def _cut(self, which: str, ttl: int) -> None:
        for (w, t), scope in list(self._scopes.items()):
            if t > ttl and (which == "control" or w == which):
                scope.cancel()

    async def _send(self, which: str, ttl: int) -> None:
        """One TTL: a SYN, and a second one after ``spare`` seconds without an answer (a
        lost SYN or a rate-limited ICMP); silent when neither is answered by ``wait``."""
        if ttl > self._limit(which):
            return
        key = (which, ttl)
        spec = self.specs[which]
        result = HopProbe(ttl, "silent")

        async def attempt(nursery: trio.Nursery, delay: float) -> None:
            nonlocal result
            got: HopProbe | None = None
            if delay == 0 or self.slot is None:
                await trio.sleep(delay)
                self.attempts[key] = self.attempts.get(key, 0) + 1
                got = await self._attempt(spec, ttl)
            else:
                await trio.sleep(delay)
                async with self.slot():  # the second SYN is a connection of its own
                    self.attempts[key] = self.attempts.get(key, 0) + 1
                    got = await self._attempt(spec, ttl)
            if got is not None:
                result = got
                nursery.cancel_scope.cancel()

        with trio.move_on_after(self.wait):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(attempt, nursery, 0.0)
                if MAX_ATTEMPTS > 1 and self.spare < self.wait:
                    nursery.start_soon(attempt, nursery, self.spare)
        known = self.found[which].get(ttl)
        if known is None or known.outcome == "silent":
            self.found[which][ttl] = result
        if result.outcome in REACHED:
            self._cut(which, ttl)

    async def _attempt(self, spec: ProbeSpec, ttl: int) -> HopProbe | None:
        """One SYN with this TTL and what came of it (None: out of sockets here)."""
        start = trio.current_time()
        try:
            stream = await self.connector(spec, SocketOptions(ttl=ttl))
        except (OSError, trio.BrokenResourceError) as exc:
            if isinstance(exc, OSError) and exc.errno in (_errno.EMFILE, _errno.ENFILE):
                await trio.sleep_forever()  # says nothing about the path: let the other decide
            elapsed = (trio.current_time() - start) * 1000
            if isinstance(exc, OSError):
                outcome, icmp = outcome_of(exc)
            else:
                outcome, icmp = "reset", None
            local = icmp.local if icmp is not None else outcome == "prohibited"
            sender = icmp.sender if icmp is not None else None
            if sender is not None and not local and self.heard is not None:
                self.heard(sender)
            return HopProbe(ttl, outcome, sender, local, round(elapsed, 2))
        elapsed = (trio.current_time() - start) * 1000
        _abort(stream)
        with trio.CancelScope(shield=True), suppress(OSError, trio.BrokenResourceError):
            await stream.aclose()
        return HopProbe(ttl, "answered", None, False, round(elapsed, 2))

    def _reached(self, which: str) -> int | None:
        hits = [t for t, p in self.found[which].items() if p.outcome in REACHED]
        return min(hits) if hits else None

    async def _round(self, wanted: Sequence[tuple[str, int]]) -> None:
        async with trio.open_nursery() as nursery:
            for which, ttl in wanted:
                if ttl <= self._limit(which):
                    await nursery.start(self._one, which, ttl)

    async def run(self) -> None:
        low = 1
        while low <= self.max_hops:
            high = min(self.max_hops, low + WINDOW - 1)
            window = range(low, high + 1)
            await self._round([(w, t) for t in window for w in ("control", "port25")])
            if self._reached("control") is not None or self._reached("port25") is not None:
                return
            top_answers = any(
                self.found[w].get(t, HopProbe(t, "silent")).outcome == "time-exceeded"
                for w in self.specs
                for t in (high - 1, high)
            )
            if not top_answers:
                return
            low = high + 1


def trace_spec(spec: ProbeSpec, port: int, dial_port: int | None) -> ProbeSpec:
    """``spec``'s address on ``port`` (dialled on ``dial_port``), for a ladder."""
    return replace(spec, port=port, connect_port=dial_port, negative=False, expect=None)
