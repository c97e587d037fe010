"""The DNS client: one dnspython resolver under trio for every lookup of a run.

The planner (MX, A, AAAA) and the readiness checks (A, AAAA, PTR, TXT, and questions
put to one whoami server directly) both ask through :class:`DnsClient`, behind the
:class:`~portprobe.model.DnsLookup` seam. A query never raises: NXDOMAIN, NODATA,
SERVFAIL, a timeout, a missing resolv.conf all end as a :class:`~portprobe.model.DnsAnswer`
with its outcome, so a DNS failure reaches the report as what it is and never as a
port-25 block.

Each query is bounded by dnspython's ``lifetime`` and, as a backstop, a trio cancel scope;
dnspython picks its trio backend by itself (sniffio). Truncated UDP answers are retried
over TCP (RFC 7766 §5). dnspython (~65 ms to import) is imported by the first query, not
by this module, so a client can be built where no name may ever need resolving (a run
of IP literals).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

import trio

from portprobe.model import DnsAnswer, DnsLookup, format_nameserver
from portprobe.text import one_line
from portprobe.vocab import DnsOutcome

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.message
    import dns.resolver
    import dns.rrset

__all__ = ["ATTEMPTS", "DnsAnswer", "DnsClient", "DnsLookup"]

#: Tries per server within one lookup's lifetime: one lost UDP packet must not lose a name.
ATTEMPTS: Final = 3
#: ...but never an attempt so short that a slow recursive answer cannot make it.
MIN_ATTEMPT: Final = 0.3
#: Extra time the trio backstop grants beyond dnspython's own ``lifetime``.
BACKSTOP_GRACE: Final = 0.5
#: Strings kept of one TXT record, and bytes of them (a record may hold 64 KiB).
TXT_STRINGS: Final = 4
TXT_BYTES: Final = 255
_LOOPBACK: Final = {"A": "127.0.0.1", "AAAA": "::1"}


class DnsClient:
    """dnspython under trio, configured once; ``query`` is the :class:`DnsLookup` seam.

    ``nameservers`` empty means the system resolver, configured from ``resolv_conf`` when
    the first query needs it. One client may serve many runs and both the planner and the
    readiness checks: it keeps no answers (no cache) and no per-run state.
    """

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]],
        timeout: float,
        resolv_conf: str = "/etc/resolv.conf",
    ) -> None:
        self.nameservers = tuple(nameservers)
        self.timeout = timeout
        self.resolv_conf = resolv_conf
        #: dnspython's resolver once :meth:`configure` ran (None: no usable configuration).
        self.resolver: dns.asyncresolver.Resolver | None = None
        self.setup_error: str | None = None
        self.label: str | None = None  # the configured servers, as the report shows them
        self._configured = False

    def configure(self) -> None:
        """Build dnspython's resolver now (reads resolv.conf); the first query does it."""
        if self._configured:
            return
        self._configured = True
        import dns.exception
        import dns.nameserver

        try:
            resolver = _make_resolver(self.nameservers, self.resolv_conf)
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            # No resolv.conf, or one without a nameserver: every lookup fails the same
            # way, and each says so in the report instead of the run crashing.
            self.setup_error = one_line(
                f"no usable system resolver configuration ({self.resolv_conf}): {exc}"
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
        resolver.lifetime = self.timeout
        # Each attempt gets a share of the lifetime, so a lost UDP query is sent again
        # (as glibc's resolver does: RES_TIMEOUT, then retry) and a silent first server
        # leaves time for the next one. dnspython cycles through the servers.
        resolver.timeout = max(MIN_ATTEMPT, self.timeout / (ATTEMPTS * max(1, len(servers))))
        self.resolver = resolver

    async def query(
        self, name: str, rdtype: str, server: tuple[str, int] | None = None
    ) -> DnsAnswer:
        """Ask the configured resolver (``server`` None) or ``server`` directly; never raises."""
        if (
            server is None
            and rdtype in _LOOPBACK
            and (name == "localhost" or name.endswith(".localhost"))
        ):
            # RFC 6761 §6.3: localhost names are the loopback address and are not sent
            # to DNS (dnspython, unlike getaddrinfo, never reads /etc/hosts).
            why = "RFC 6761 §6.3: localhost is loopback; not sent to DNS"
            return DnsAnswer("ok", (_LOOPBACK[rdtype],), why, elapsed_ms=0.0)
        import dns.exception

        self.configure()
        if server is None and self.resolver is None:
            return DnsAnswer("error", message=self.setup_error, elapsed_ms=0.0)
        started = trio.current_time()
        asked = self.label if server is None else format_nameserver(*server)
        timed_out = DnsAnswer("timeout", message=f"no answer within {self.timeout:g} s")
        answer = timed_out
        with trio.move_on_after(self.timeout + BACKSTOP_GRACE):
            try:
                if server is None:
                    answer = await self._resolve(name, rdtype)
                else:
                    answer = await self._ask(name, rdtype, server)
            except dns.exception.Timeout:
                answer = timed_out
            except (dns.exception.DNSException, OSError, ValueError) as exc:
                answer = DnsAnswer("error", message=one_line(f"{type(exc).__name__}: {exc}"))
        elapsed = round((trio.current_time() - started) * 1000, 1)
        return dataclasses.replace(
            answer, nameserver=answer.nameserver or asked, elapsed_ms=elapsed
        )

    async def _resolve(self, name: str, rdtype: str) -> DnsAnswer:
        import dns.name
        import dns.resolver

        assert self.resolver is not None  # checked by query
        try:
            answer = await self.resolver.resolve(
                dns.name.from_text(name), rdtype, search=False, lifetime=self.timeout
            )
        except dns.resolver.NXDOMAIN:
            return DnsAnswer("nxdomain", message="the name does not exist (NXDOMAIN)")
        except dns.resolver.NoAnswer:
            return DnsAnswer("nodata", message=f"the name has no {rdtype} record (NODATA)")
        except dns.resolver.NoNameservers as exc:
            outcome: DnsOutcome = "servfail" if _servfail_in(exc) else "error"
            return DnsAnswer(outcome, message=one_line(str(exc)))
        server = None
        if answer.nameserver is not None:
            server = format_nameserver(str(answer.nameserver), answer.port or 53)
        message = None
        if answer.canonical_name != answer.qname:
            message = f"via CNAME to {answer.canonical_name.to_text()}"
        rrsets = [answer.rrset] if answer.rrset is not None else []
        return DnsAnswer("ok", _texts(rrsets, rdtype), message, nameserver=server)

    async def _ask(self, name: str, rdtype: str, server: tuple[str, int]) -> DnsAnswer:
        import dns.asyncquery
        import dns.message
        import dns.name
        import dns.rcode
        import dns.rdatatype

        query = dns.message.make_query(dns.name.from_text(name), rdtype)
        response, _ = await dns.asyncquery.udp_with_fallback(
            query, server[0], timeout=self.timeout, port=server[1]
        )
        rcode = response.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return DnsAnswer("nxdomain", message="the name does not exist (NXDOMAIN)")
        if rcode == dns.rcode.SERVFAIL:
            return DnsAnswer("servfail", message="the server answered SERVFAIL")
        if rcode != dns.rcode.NOERROR:
            return DnsAnswer("error", message=f"the server answered {dns.rcode.to_text(rcode)}")
        wanted = dns.rdatatype.from_text(rdtype)
        values = _texts((r for r in response.answer if r.rdtype == wanted), rdtype)
        if not values:
            return DnsAnswer("nodata", message=f"the name has no {rdtype} record (NODATA)")
        return DnsAnswer("ok", values)


def _make_resolver(
    nameservers: Sequence[tuple[str, int]], resolv_conf: str
) -> dns.asyncresolver.Resolver:
    """dnspython's resolver for these servers, or the system's (``resolv_conf``)."""
    import dns.asyncresolver
    import dns.nameserver

    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in nameservers]
        return resolver
    return dns.asyncresolver.Resolver(filename=resolv_conf)


def _servfail_in(exc: dns.resolver.NoNameservers) -> bool:
    import dns.rcode

    for error in exc.kwargs.get("errors") or ():
        response = error[4] if len(error) > 4 else None
        if response is not None and response.rcode() == dns.rcode.SERVFAIL:
            return True
        if str(error[3]) == "SERVFAIL":
            return True
    return False


def _texts(rrsets: Iterable[dns.rrset.RRset], rdtype: str) -> tuple[str, ...]:
    """Each record of ``rrsets`` as :class:`DnsAnswer` values spell it (see there)."""
    import dns.rdtypes.ANY.MX

    rdatas = [rdata for rrset in rrsets for rdata in rrset]
    if rdtype == "MX":
        records = sorted(
            (rdata.preference, rdata.exchange)
            for rdata in rdatas
            if isinstance(rdata, dns.rdtypes.ANY.MX.MX)
        )
        return tuple(f"{pref} {exchange.to_text()}" for pref, exchange in records)
    if rdtype in ("A", "AAAA"):
        return tuple(str(rdata.address) for rdata in rdatas)
    if rdtype == "PTR":
        return tuple(rdata.target.to_text(omit_final_dot=True) for rdata in rdatas)
    if rdtype == "TXT":
        joined = (b"".join(rdata.strings[:TXT_STRINGS])[:TXT_BYTES] for rdata in rdatas)
        return tuple(raw.decode("ascii", "backslashreplace") for raw in joined)
    return tuple(rdata.to_text() for rdata in rdatas)
