"""The path part of the report: traces hop by hop, the blocker, notes. Pure data.

A trace sends SYNs to port 25 and to a control port of the same host at TTL 1, 2, …
(``portprobe.probe.trace``); each TTL's outcome on each port is one :data:`HopOutcome`.
:func:`hops_of` lines the two ladders up into the report's hops, and :func:`distance_of`
says how far the host is (the first TTL at which the control port reached a TCP endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from portprobe.vocab import Family

HopOutcome = Literal["time-exceeded", "silent", "reset", "prohibited", "answered", "unreachable"]
Where = Literal["this-machine", "local-network", "isp", "transit", "destination", "unknown"]
How = Literal["drop", "reset", "prohibited", "proxy"]
#: What a TTL probe can get from a TCP endpoint (the host, or something answering for it).
REACHED: frozenset[HopOutcome] = frozenset({"answered", "reset"})


@dataclass(frozen=True)
class HopProbe:
    """One TTL's answer on one port: the outcome, who sent it (an ICMP error's sender),
    whether that sender is this machine, and how long it took (ms; None when silent)."""

    ttl: int
    outcome: HopOutcome
    sender: str | None = None
    local: bool = False
    rtt_ms: float | None = None


@dataclass(frozen=True)
class Hop:
    ttl: int
    address: str | None
    port25: HopOutcome
    control: HopOutcome
    name: str | None = None
    asn: int | None = None
    as_name: str | None = None
    local: bool = False  # the address is this machine's own
    #: Who answered port 25 at this TTL when that was not a time-exceeded (an ACL's
    #: prohibited, this machine's own REJECT), and whether that is this machine.
    port25_from: str | None = None
    port25_local: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "ttl": self.ttl,
            "address": self.address,
            "name": self.name,
            "asn": self.asn,
            "as_name": self.as_name,
            "port25": self.port25,
            "control": self.control,
        }


@dataclass(frozen=True)
class Trace:
    family: Family
    host: str
    address: str
    control_port: int
    distance: int | None
    hops: tuple[Hop, ...]
    port: int = 25

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "host": self.host,
            "address": self.address,
            "port": self.port,
            "control_port": self.control_port,
            "distance": self.distance,
            "hops": [h.to_dict() for h in self.hops],
        }


@dataclass(frozen=True)
class Blocker:
    where: Where
    how: How
    hop: int | None
    address: str | None = None
    name: str | None = None
    asn: int | None = None
    as_name: str | None = None
    evidence: tuple[str, ...] = ()
    family: Family | None = None
    host: str | None = None  # the traced host the evidence is about

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "how": self.how,
            "hop": self.hop,
            "address": self.address,
            "name": self.name,
            "asn": self.asn,
            "as_name": self.as_name,
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True)
class PathReport:
    """``path`` in the report: what was traced, who stops port 25, what could not be done."""

    traces: tuple[Trace, ...] = ()
    blocker: Blocker | None = None
    notes: tuple[str, ...] = ()
    #: The blocker of each traced family (the report's ``blocker`` is the first one).
    blockers: Mapping[Family, Blocker] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "traces": [t.to_dict() for t in self.traces],
            "blocker": self.blocker.to_dict() if self.blocker is not None else None,
            "notes": list(self.notes),
        }


def distance_of(control: Sequence[HopProbe]) -> int | None:
    """The host's distance: the first TTL at which the control port reached it."""
    reached = [p.ttl for p in control if p.outcome in REACHED]
    return min(reached) if reached else None


def _by_ttl(ladder: Sequence[HopProbe]) -> dict[int, HopProbe]:
    out: dict[int, HopProbe] = {}
    for p in ladder:
        known = out.get(p.ttl)
        if known is None or (known.outcome == "silent" and p.outcome != "silent"):
            out[p.ttl] = p
    return out


def hops_of(
    port25: Sequence[HopProbe], control: Sequence[HopProbe], address: str
) -> tuple[Hop, ...]:
    """Both ladders, TTL by TTL, up to the host (or to the last TTL anything answered at,
    plus the first silent one after it)."""
    p25, ctl = _by_ttl(port25), _by_ttl(control)
    ttls = sorted(set(p25) | set(ctl))
    if not ttls:
        return ()
    distance = distance_of(control)
    top = distance if distance is not None else max(ttls)
    if distance is None:
        answering = [t for t in ttls if (p25.get(t) or ctl.get(t) or _SILENT).outcome != "silent"]
        top = min(max(ttls), (max(answering) + 1) if answering else 1)
    hops = []
    for ttl in ttls:
        if ttl > top:
            break
        a = p25.get(ttl) or HopProbe(ttl, "silent")
        c = ctl.get(ttl) or HopProbe(ttl, "silent")
        sender = c.sender if c.outcome == "time-exceeded" else None
        sender = sender or (a.sender if a.outcome == "time-exceeded" else None)
        if sender is None and distance is not None and ttl == distance:
            sender = address
        hops.append(
            Hop(
                ttl,
                sender,
                a.outcome,
                c.outcome,
                local=(c.local or a.local) and sender is not None,
                port25_from=a.sender if a.outcome != "time-exceeded" else None,
                port25_local=a.local if a.outcome != "time-exceeded" else False,
            )
        )
    return tuple(hops)


_SILENT = HopProbe(0, "silent")
