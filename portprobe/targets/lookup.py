"""DNS lookups as evidence: one dnspython resolver, every lookup a :class:`DNSQuery`.

A lookup never raises: NXDOMAIN, NODATA, SERVFAIL, a timeout, a missing resolv.conf all
end as a :class:`~portprobe.model.DNSQuery` with its outcome, so a DNS failure reaches
the report as what it is and never as a port-25 block. Each lookup is bounded by
dnspython's ``lifetime`` and, as a backstop, a trio cancel scope; dnspython picks its
trio backend by itself (sniffio). Truncated UDP answers are retried over TCP by
dnspython (RFC 7766 §5).
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdtypes.ANY.MX
import dns.resolver
import trio

from portprobe.model import DNSOutcome, DNSQuery
from portprobe.targets.answers import Lookup, null_mx
from portprobe.targets.names import format_nameserver
from portprobe.text import one_line

#: Tries per server within one lookup's lifetime: one lost UDP packet must not lose a name.
ATTEMPTS = 3
#: ...but never an attempt so short that a slow recursive answer cannot make it.
MIN_ATTEMPT = 0.3
#: Extra time the trio backstop grants beyond dnspython's own ``lifetime``.
_BACKSTOP_GRACE = 0.5
_LOOPBACK = {"A": "127.0.0.1", "AAAA": "::1"}

__all__ = ["Lookup", "Lookups", "null_mx"]


def _servfail_in(exc: dns.resolver.NoNameservers) -> bool:
    for error in exc.kwargs.get("errors") or ():
        response = error[4] if len(error) > 4 else None
        if response is not None and response.rcode() == dns.rcode.SERVFAIL:
            return True
        if str(error[3]) == "SERVFAIL":
            return True
    return False


def make_resolver(
    nameservers: Sequence[tuple[str, int]], resolv_conf: str
) -> dns.asyncresolver.Resolver:
    """dnspython's resolver for these servers, or the system's (``resolv_conf``).

    Raises what dnspython raises for a missing or unusable resolv.conf; each caller turns
    that into evidence ("no usable resolver") rather than a crash.
    """
    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in nameservers]
        return resolver
    return dns.asyncresolver.Resolver(filename=resolv_conf)


class Lookups:
    """One dnspython resolver shared by every lookup of a plan; lookups never raise.

    ``lookup`` is a :data:`~portprobe.targets.answers.Resolver`, the planner's default one.
    """

    def __init__(
        self, nameservers: Sequence[tuple[str, int]], timeout: float, resolv_conf: str
    ) -> None:
        self.timeout = timeout
        self.setup_error: str | None = None
        self.label: str | None = None
        self.resolver: dns.asyncresolver.Resolver | None = None
        try:
            resolver = make_resolver(nameservers, resolv_conf)
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            # No resolv.conf, or one without a nameserver: every lookup fails the same
            # way, and each says so in the report instead of the run crashing.
            self.setup_error = one_line(
                f"no usable system resolver configuration ({resolv_conf}): {exc}"
            )
            return
        servers = resolver.nameservers
        self.label = ", ".join(
            format_nameserver(ns.address, ns.port)
            if isinstance(ns, dns.nameserver.Do53Nameserver)
            else str(ns)
            for ns in servers
        )
        resolver.cache = None
        resolver.retry_servfail = False  # SERVFAIL is evidence, not something to wait out
        resolver.lifetime = timeout
        # Each attempt gets a share of the lifetime, so a lost UDP query is sent again
        # (as glibc's resolver does: RES_TIMEOUT, then retry) and a silent first server
        # leaves time for the next one. dnspython cycles through the servers.
        resolver.timeout = max(MIN_ATTEMPT, timeout / (ATTEMPTS * max(1, len(servers))))
        self.resolver = resolver

    async def lookup(self, name: str, rdtype: str) -> Lookup:
        started = trio.current_time()
        if rdtype in _LOOPBACK and (name == "localhost" or name.endswith(".localhost")):
            # RFC 6761 §6.3: localhost names are the loopback address and are not sent
            # to DNS (dnspython, unlike getaddrinfo, never reads /etc/hosts).
            loopback = _LOOPBACK[rdtype]
            why = "RFC 6761 §6.3: localhost is loopback; not sent to DNS"
            local = DNSQuery(name, rdtype, "ok", (loopback,), None, 0.0, why)
            return Lookup(local, addresses=(loopback,))
        if self.resolver is None:
            failed = DNSQuery(name, rdtype, "error", elapsed_ms=0.0, message=self.setup_error)
            return Lookup(failed)
        outcome: DNSOutcome = "error"
        message: str | None = None
        server = self.label
        mx: tuple[tuple[int, str], ...] = ()
        addresses: tuple[str, ...] = ()
        answers: tuple[str, ...] = ()
        with trio.move_on_after(self.timeout + _BACKSTOP_GRACE) as scope:
            try:
                answer = await self.resolver.resolve(
                    dns.name.from_text(name), rdtype, search=False, lifetime=self.timeout
                )
            except dns.resolver.NXDOMAIN:
                outcome, message = "nxdomain", "the name does not exist (NXDOMAIN)"
            except dns.resolver.NoAnswer:
                outcome, message = "nodata", f"the name has no {rdtype} record (NODATA)"
            except dns.resolver.NoNameservers as exc:
                outcome = "servfail" if _servfail_in(exc) else "error"
                message = one_line(str(exc))
            except dns.exception.Timeout:
                outcome = "timeout"
                message = f"no answer within {self.timeout:g} s"
            except (dns.exception.DNSException, OSError) as exc:
                outcome, message = "error", one_line(f"{type(exc).__name__}: {exc}")
            else:
                outcome = "ok"
                if answer.nameserver is not None:
                    server = format_nameserver(str(answer.nameserver), answer.port or 53)
                if answer.canonical_name != answer.qname:
                    message = f"via CNAME to {answer.canonical_name.to_text()}"
                rrset = answer.rrset if answer.rrset is not None else ()
                if rdtype == "MX":
                    records = sorted(
                        (rdata.preference, rdata.exchange)
                        for rdata in rrset
                        if isinstance(rdata, dns.rdtypes.ANY.MX.MX)
                    )
                    answers = tuple(f"{pref} {exchange.to_text()}" for pref, exchange in records)
                    mx = tuple(
                        (pref, "" if exchange == dns.name.root else exchange.to_text(True).lower())
                        for pref, exchange in records
                    )
                else:
                    addresses = tuple(str(rdata.address) for rdata in rrset)
                    answers = addresses
        if scope.cancelled_caught:
            outcome, message = "timeout", f"no answer within {self.timeout:g} s"
        elapsed = round((trio.current_time() - started) * 1000, 1)
        query = DNSQuery(name, rdtype, outcome, answers, server, elapsed, message)
        return null_mx(Lookup(query, mx, addresses))
