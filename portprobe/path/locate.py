"""Who stops port 25 (spec "Path"): pure rules over one trace's hops.

- a reset or a prohibited answer is placed at the hop it came from; a proxy at the TTL at
  which port 25 first answers, when that is less than the control port's distance;
- a silent drop at the last hop that answered port 25 ("dropped after hop k"); at TTL 1
  with the control port answered there, the SYN never left this machine;
- ``where`` from the hop's address: this machine's own; a private address before the first
  public hop (the local network); the AS of this machine's public address (the ISP; the
  first public hop's AS when that address is not known), the destination's AS (or the
  host's own distance), or another (transit); ``unknown`` without AS data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from portprobe.path.asn import is_private
from portprobe.path.model import Blocker, Hop, How, Trace, Where

_STOPS = frozenset({"prohibited", "unreachable", "reset", "answered"})


def _anonymous(hop: Hop) -> bool:
    """Both ports failed alike at this TTL with no ICMP details (Linux before 5.8): a
    router's time-exceeded the kernel did not describe, not a port-25 rule."""
    return (
        hop.port25 == "unreachable"
        and hop.control == "unreachable"
        and hop.port25_from is None
        and hop.address is None
    )


def _label(hop: Hop) -> str:
    where = hop.address or "an unnamed router"
    if hop.name:
        where += f" ({hop.name})"
    if hop.asn is not None:
        where += f", AS{hop.asn}" + (f" {hop.as_name}" if hop.as_name else "")
    return where


def place(
    hop: Hop | None, hops: Sequence[Hop], *, own_asn: int | None, dest_asn: int | None
) -> Where:
    """``where`` for a blocking hop (None: this machine)."""
    if hop is None or hop.local:
        return "this-machine"
    if hop.address is None:
        return "unknown"
    before = [h for h in hops if h.ttl < hop.ttl and h.address is not None]
    public_before = [h for h in before if not is_private(h.address or "")]
    if is_private(hop.address):
        if not public_before:
            return "local-network"
        hop = public_before[-1]  # a carrier's private hop: its public neighbour's network
    if own_asn is None:
        first_public = next(
            (h for h in hops if h.address is not None and not is_private(h.address)), None
        )
        own_asn = first_public.asn if first_public is not None else None
    if hop.asn is None:
        return "unknown"
    if hop.asn == own_asn:
        return "isp"
    if hop.asn == dest_asn:
        return "destination"
    return "transit"


def _blocker(where: Where, how: How, hop: Hop | None, trace: Trace, evidence: list[str]) -> Blocker:
    if hop is not None and hop.address is not None and not hop.local:
        evidence.append(f"Hop {hop.ttl} is {_label(hop)}.")
    return Blocker(
        where=where,
        how=how,
        hop=hop.ttl if hop is not None else 0,
        address=hop.address if hop is not None else None,
        name=hop.name if hop is not None else None,
        asn=hop.asn if hop is not None else None,
        as_name=hop.as_name if hop is not None else None,
        evidence=tuple(evidence),
        family=trace.family,
        host=trace.host,
    )


SHARED: Final = (
    "Port 25 fails at every provider in this family, so the hop before the hosts that "
    "stops it is shared by all of them, not each receiver's own."
)


def locate(trace: Trace, *, own_asn: int | None = None, everywhere: bool = False) -> Blocker | None:
    """The blocker of port 25 on ``trace``; None when port 25 reaches the host.

    ``everywhere``: port 25 fails at every provider of this family (``blocked``). A block
    at the host's own distance is then placed at the last hop before it: every receiver
    refusing alike is not credible, a filter they are all behind is."""
    hops, d, cp = trace.hops, trace.distance, trace.control_port
    if not hops:
        return None
    by_ttl = {h.ttl: h for h in hops}
    dest = by_ttl.get(d) if d is not None else None
    dest_asn = dest.asn if dest is not None else None

    def where_of(hop: Hop | None) -> Where:
        if hop is not None and d is not None and hop.ttl >= d:
            return "destination"
        return place(hop, hops, own_asn=own_asn, dest_asn=dest_asn)

    host = f"{trace.host} ({trace.address})" if trace.host != trace.address else trace.address
    reach = (
        f"port {cp} reaches {host} at hop {d}"
        if d is not None
        else f"port {cp} never reached {host}"
    )
    stop = next((h for h in hops if h.port25 in _STOPS and not _anonymous(h)), None)
    if stop is not None:
        t = stop.ttl
        if stop.port25 == "answered":
            if d is not None and t >= d:
                return None  # port 25 reaches the host like the control port does
            far = f"the server is {d} hops away" if d is not None else "the server was not reached"
            hop = by_ttl.get(t)
            evidence = [
                f"The port-25 greeting comes from hop {t}, {far} (on port {cp}): "
                f"something at hop {t} answers for the host."
            ]
            return _blocker(
                where_of(hop) if t > 0 else "this-machine", "proxy", hop, trace, evidence
            )
        if stop.port25 == "reset":
            # A RST at TTL t came from before router t's TTL check: the filter of hop
            # t-1 (or a box right behind it); at TTL 1, from this machine itself.
            evidence = [f"Port 25 got a TCP reset at TTL {t}; {reach}."]
            if d is not None and t >= d and not everywhere:
                return _blocker("destination", "reset", dest, trace, evidence)
            if d is not None and t >= d:
                evidence.append(SHARED)
            hop = by_ttl.get(t - 1)
            if hop is None:
                return _blocker("this-machine", "reset", None, trace, evidence)
            return _blocker(where_of(hop), "reset", hop, trace, evidence)
        # prohibited / unreachable: an ICMP error (or a local refusal) at TTL t.
        sender = stop.port25_from
        if stop.port25_local or (sender is None and stop.port25 == "prohibited" and t == 1):
            evidence = [
                f"Port 25 was refused by this machine itself ({sender or 'a local error'}) "
                f"while {reach}: a local firewall rule, container or pod policy."
            ]
            return _blocker("this-machine", "prohibited", None, trace, evidence)
        hop = next((h for h in hops if sender is not None and h.address == sender), None)
        hop = hop or by_ttl.get(t - 1) or stop
        what = "administratively prohibited" if stop.port25 == "prohibited" else "unreachable"
        evidence = [
            f"Port 25 at TTL {t} was answered {what} by {sender or 'an unnamed router'}; {reach}."
        ]
        if d is not None and t >= d and sender == trace.address:
            return _blocker("destination", "prohibited", dest, trace, evidence)
        return _blocker(where_of(hop), "prohibited", hop, trace, evidence)
    # No answer on port 25 but time-exceeded: a silent drop after the last hop that answered.
    answered = [h.ttl for h in hops if h.port25 == "time-exceeded" or _anonymous(h)]
    k = max(answered) if answered else 0
    if d is not None and k >= d:
        return None
    if k == 0:
        first = by_ttl.get(1)
        if first is not None and first.control != "silent":
            evidence = [
                f"At TTL 1 port 25 gets no answer while port {cp} gets time-exceeded"
                + (f" from {first.address}" if first.address else "")
                + ": the SYN to port 25 never left this machine (a local firewall rule, "
                "container or pod policy)."
            ]
            return _blocker("this-machine", "drop", None, trace, evidence)
        evidence = [f"Nothing answered port 25 or port {cp} at TTL 1."]
        return _blocker("unknown", "drop", None, trace, evidence)
    hop = by_ttl[k]
    after = by_ttl.get(k + 1)
    if after is not None and after.port25 == "silent" and after.control == "silent" and d is None:
        evidence = [f"Both port 25 and port {cp} go silent after hop {k}: not a port-25 rule."]
        return _blocker("unknown", "drop", hop, trace, evidence)
    evidence = [
        f"Port 25 is dropped after hop {k}: it gets time-exceeded up to hop {k} "
        f"and nothing after; {reach}."
    ]
    if d is not None and k + 1 >= d and everywhere:
        evidence.append(SHARED)
    elif d is not None and k + 1 >= d:
        evidence[0] = (
            f"Port 25 dies at the host's own distance (hop {d}): {reach}, "
            "port 25 gets no answer there."
        )
        return _blocker("destination", "drop", dest, trace, evidence)
    return _blocker(where_of(hop), "drop", hop, trace, evidence)
