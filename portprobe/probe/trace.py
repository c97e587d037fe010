"""The TTL ladder: SYNs to port 25 and to a control port of one host at TTL 1, 2, …

No root on Linux: a plain TCP socket with a lowered TTL (``IP_TTL``/``IPV6_UNICAST_HOPS``)
and ``IP_RECVERR`` fails its ``connect()`` at once when a router answers time-exceeded,
and the kernel hands over the router's address (probe/connect.py, kernel ≥ 5.8).

- **All TTLs of a window in flight together** (:data:`WINDOW` TTLs, both ports), and a
  second attempt only for a TTL that stayed silent; never more than two per TTL and port.
  A next window only when nothing reached the host yet and routers still answer at the
  top of this one, up to ``max_hops``.
- **Silence is trusted** after ``wait`` seconds, which the caller derives from this run's
  round trips the way probe/pathwait.py does (a few of the slowest round trips, with a
  floor, capped by the connect timeout).
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
        connector: Connector | None = None,
        slot: Slot | None = None,
    ) -> None:
        self.specs = {"port25": port25, "control": control}
        self.max_hops = max_hops
        self.wait = wait
        self.connector: Connector = connector or open_tcp
        self.slot = slot
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
        if ttl > self._limit(which):
            return
        key = (which, ttl)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        spec = self.specs[which]
        start = trio.current_time()
        result = HopProbe(ttl, "silent")
        with trio.move_on_after(self.wait):
            try:
                stream = await self.connector(spec, SocketOptions(ttl=ttl))
            except (OSError, trio.BrokenResourceError) as exc:
                if isinstance(exc, OSError) and exc.errno in (_errno.EMFILE, _errno.ENFILE):
                    return  # out of sockets here: says nothing about the path
                elapsed = (trio.current_time() - start) * 1000
                if isinstance(exc, OSError):
                    outcome, icmp = outcome_of(exc)
                else:
                    outcome, icmp = "reset", None
                local = icmp.local if icmp is not None else outcome == "prohibited"
                sender = icmp.sender if icmp is not None else None
                result = HopProbe(ttl, outcome, sender, local, round(elapsed, 2))
            else:
                elapsed = (trio.current_time() - start) * 1000
                _abort(stream)
                with trio.CancelScope(shield=True), suppress(OSError, trio.BrokenResourceError):
                    await stream.aclose()
                result = HopProbe(ttl, "answered", None, False, round(elapsed, 2))
        known = self.found[which].get(ttl)
        if known is None or known.outcome == "silent":
            self.found[which][ttl] = result
        if result.outcome in REACHED:
            self._cut(which, ttl)

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
            # A second attempt for TTLs that stayed silent, below the host's distance.
            again = []
            for which in self.specs:
                top = min(filter(None, (self._reached(which), self._reached("control"), high)))
                again += [
                    (which, t)
                    for t in window
                    if t <= top
                    and self.found[which].get(t, HopProbe(t, "silent")).outcome == "silent"
                    and self.attempts.get((which, t), 0) < MAX_ATTEMPTS
                ]
            if again:
                await self._round(again)
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
