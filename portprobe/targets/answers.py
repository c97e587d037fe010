"""What one DNS lookup returns, and the seam through which the planner asks for it.

Pure data, no dnspython and no trio: the planner, its tests' fake resolvers and the real
:class:`~portprobe.targets.lookup.Lookups` all speak these types, and a run whose
targets are IP literals never imports dnspython (it costs ~65 ms before the first SYN).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from portprobe.model import DNSQuery

__all__ = ["Lookup", "Resolver", "null_mx"]


@dataclass(frozen=True)
class Lookup:
    """One lookup's evidence (``query``) and what the planner reads from its answer."""

    query: DNSQuery
    mx: tuple[tuple[int, str], ...] = ()  # (preference, exchange without final dot)
    addresses: tuple[str, ...] = ()


#: The DNS seam: ``await resolver(name, rdtype)`` with ``rdtype`` one of "MX", "A",
#: "AAAA". It must never raise for DNS trouble (NXDOMAIN, SERVFAIL, a timeout are a
#: :class:`Lookup` whose ``query.outcome`` says so) and must bound its own time.
#: ``Lookups(...).lookup`` is the real one; tests pass small async functions.
Resolver = Callable[[str, str], Awaitable[Lookup]]


def null_mx(result: Lookup) -> Lookup:
    """RFC 7505: an MX set whose every exchange is the root is a null MX."""
    if result.query.outcome == "ok" and result.mx and all(not ex for _, ex in result.mx):
        message = "null MX (RFC 7505): the domain accepts no mail"
        return dataclasses.replace(
            result, query=dataclasses.replace(result.query, outcome="null-mx", message=message)
        )
    return result
