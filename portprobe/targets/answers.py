"""What the planner reads from one DNS answer: pure, no dnspython and no trio.

The planner asks through the one DNS seam (:class:`~portprobe.model.DnsLookup`, whose
real implementation is :class:`~portprobe.probe.dnsclient.DnsClient`) and keeps each
answer as a :class:`Lookup`: the report's evidence plus the MX records or addresses it
plans from. A run whose targets are IP literals asks nothing and never imports dnspython
(it costs ~65 ms before the first SYN).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeAlias

from portprobe.model import DnsAnswer, DnsLookup, DNSQuery

__all__ = ["Lookup", "Resolver", "null_mx", "read_answer"]

#: The planner's name for the DNS seam, kept for ``Pipeline(lookup=...)``'s annotation:
#: the same :class:`~portprobe.model.DnsLookup` the readiness checks take.
Resolver: TypeAlias = DnsLookup


@dataclass(frozen=True)
class Lookup:
    """One lookup's evidence (``query``) and what the planner reads from its answer."""

    query: DNSQuery
    mx: tuple[tuple[int, str], ...] = ()  # (preference, exchange without final dot)
    addresses: tuple[str, ...] = ()


def read_answer(name: str, rdtype: str, answer: DnsAnswer) -> Lookup:
    """The planner's reading of ``answer``: MX records parsed, a null MX named as such."""
    query = answer.evidence(name, rdtype)
    if answer.outcome != "ok":
        return Lookup(query)
    if rdtype == "MX":
        return null_mx(Lookup(query, mx=tuple(_mx_records(answer.values))))
    return Lookup(query, addresses=answer.values)


def _mx_records(values: tuple[str, ...]) -> list[tuple[int, str]]:
    """``"10 mx.example.net."`` → ``(10, "mx.example.net")``; the root ``"0 ."`` → ``(0, "")``.

    The order is the answer's (the client sorts by preference, then name); a value that
    is not ``PREFERENCE EXCHANGE`` is skipped.
    """
    records: list[tuple[int, str]] = []
    for value in values:
        preference, _, exchange = value.partition(" ")
        if not preference.isdigit() or not exchange:
            continue
        exchange = exchange[:-1] if exchange.endswith(".") else exchange
        records.append((int(preference), exchange.lower()))
    return records


def null_mx(result: Lookup) -> Lookup:
    """RFC 7505: an MX set whose every exchange is the root is a null MX."""
    if result.query.outcome == "ok" and result.mx and all(not ex for _, ex in result.mx):
        message = "null MX (RFC 7505): the domain accepts no mail"
        return dataclasses.replace(
            result, query=dataclasses.replace(result.query, outcome="null-mx", message=message)
        )
    return result
