"""How long to wait for a SYN-ACK: long enough for a slow host, no longer than the evidence needs.

A dropped SYN and a slow host look the same to ``connect()`` until something answers. We
do not guess from one probe alone; the run's other probes are the evidence:

- RFC 6298 §2.1 / Linux ``TCP_TIMEOUT_INIT``: a SYN that got no answer is sent again
  after 1 s (then 3 s, 7 s ...). Once the first retransmission has had time to come
  back, a host that answers SYNs at all would have answered one of the two, unless both
  were lost (at 1 % loss: one time in ten thousand).
- The round trips measured on connections that did succeed, to the same address first,
  else to any address of the same family, tell how long "time to come back" is.

So a connect attempt gives up early at
``start + SYN_RETRANSMIT_AFTER + max(MIN_EXTRA_WAIT, RTT_FACTOR * rtt)`` (rounded up
to a 10 % step) once at least one
round trip is known, and otherwise waits for the hard connect timeout. A host whose own
other ports answered slowly gets a proportionally longer wait: a slow-but-open host is
never called ``filtered``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import trio

# RFC 6298 §2.1 (initial RTO of 1 s), which Linux follows (TCP_TIMEOUT_INIT = 1 s).
SYN_RETRANSMIT_AFTER = 1.0
# After the retransmission, wait this many measured round trips for its answer...
RTT_FACTOR = 4.0
# ...but never less than this: queueing on a busy path, and a host slower than the ones
# we measured, get the benefit of the doubt.
MIN_EXTRA_WAIT = 1.0


# The wait after the retransmission is rounded up to the next 10 % step above
# MIN_EXTRA_WAIT: a little more patience, and a growing round trip changes the waits of
# the attempts in flight (and so re-sets their deadlines) O(log) times, not per sample.
_WAIT_STEP = 1.1


def _extra_wait(rtt: float | None) -> float | None:
    if rtt is None:
        return None
    wait = max(MIN_EXTRA_WAIT, RTT_FACTOR * rtt)
    steps = math.ceil(math.log(wait / MIN_EXTRA_WAIT, _WAIT_STEP) - 1e-9)
    return MIN_EXTRA_WAIT * _WAIT_STEP**steps


class PathEvidence:
    """Connect round trips seen so far in this run, shared by all its probes.

    A connect attempt runs inside a cancel scope that it registers with ``watch``; a new
    round trip that changes the wait an attempt would get moves that scope's deadline, so
    no probe needs a watcher task of its own. Round trips below RTT_FACTOR/MIN_EXTRA_WAIT
    all give the same wait, so on a fast path deadlines move once per family and address,
    not once per connection.
    """

    def __init__(self) -> None:
        self._by_address: dict[str, float] = {}
        self._by_family: dict[str, float] = {}
        self._watched: dict[trio.CancelScope, tuple[str, str, float, float]] = {}
        self._watching_address: dict[str, set[trio.CancelScope]] = {}

    def record_connect(self, family: str, address: str, seconds: float) -> None:
        family_before = _extra_wait(self._by_family.get(family))
        address_before = _extra_wait(self._by_address.get(address))
        self._by_address[address] = max(self._by_address.get(address, 0.0), seconds)
        self._by_family[family] = max(self._by_family.get(family, 0.0), seconds)
        if _extra_wait(self._by_family[family]) != family_before:
            scopes: set[trio.CancelScope] | list[trio.CancelScope] = [
                scope for scope, watched in self._watched.items() if watched[0] == family
            ]
        elif _extra_wait(self._by_address[address]) != address_before:
            scopes = self._watching_address.get(address, set())
        else:
            return
        for scope in scopes:
            fam, addr, started, hard = self._watched[scope]
            scope.deadline = self.give_up_at(fam, addr, started, hard)

    def rtt_for(self, family: str, address: str) -> float | None:
        if address in self._by_address:
            return self._by_address[address]
        return self._by_family.get(family)

    def give_up_at(self, family: str, address: str, started: float, hard_deadline: float) -> float:
        """When an attempt begun at ``started`` should be called ``filtered``."""
        extra = _extra_wait(self.rtt_for(family, address))
        if extra is None:
            return hard_deadline
        return min(started + SYN_RETRANSMIT_AFTER + extra, hard_deadline)

    @contextmanager
    def watch(
        self, family: str, address: str, started: float, hard_deadline: float
    ) -> Iterator[trio.CancelScope]:
        scope = trio.CancelScope(deadline=self.give_up_at(family, address, started, hard_deadline))
        self._watched[scope] = (family, address, started, hard_deadline)
        self._watching_address.setdefault(address, set()).add(scope)
        try:
            with scope:
                yield scope
        finally:
            del self._watched[scope]
            self._watching_address[address].discard(scope)
