"""Real DNS servers on loopback for tests: one authoritative, one that never answers.

:class:`DNSServer` serves a zone (dnspython's zone parser, message API) over UDP *and*
TCP on one ephemeral port of 127.0.0.1, from a background thread: trio tests and
subprocess CLI tests (``--nameserver 127.0.0.1:PORT``) can both use it::

    with DNSServer() as server:
        plan = await build_plan(PlanInput(domains=["good.test"], nameservers=[server.address]))

:class:`SilentDNSServer` binds a UDP port, reads every query and drops it: a resolver
that times out. Both record what they received in ``queries``.

Zone data uses only loopback and documentation addresses (RFC 5737, RFC 3849): a repo
hook flags any other IPv4 literal under tests/.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections.abc import Iterable
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone

from portprobe.targets.names import format_nameserver

#: The test zone. Every case build_plan must handle has a name here.
TEST_ZONE = """\
$ORIGIN test.
$TTL 60
@               SOA   ns.test. hostmaster.test. 1 3600 600 86400 60
@               NS    ns.test.
ns              A     127.0.0.1

; MX with a preference tie (mx0 and mx2 at 20: sorted by name) and mixed families
good            MX    20 mx2.good.test.
good            MX    10 mx1.good.test.
good            MX    20 mx0.good.test.
mx1.good        A     192.0.2.10
mx1.good        AAAA  2001:db8::10
mx2.good        A     192.0.2.20
mx0.good        AAAA  2001:db8::30

; RFC 7505 null MX
nullmx          MX    0 .

; no MX: RFC 5321 §5.1 implicit MX, the domain's own addresses
nomx            A     198.51.100.5
nomx            AAAA  2001:db8::5

; neither MX nor address: a name that exists with nothing to probe
empty           TXT   "nothing here"

; CNAME chain (two hops) to the addresses
chain           CNAME chain1.test.
chain1          CNAME chain2.test.
chain2          A     203.0.113.7
chain2          AAAA  2001:db8::7
mxchain         MX    10 chain.test.

; a CNAME to nowhere
dangling        CNAME gone.test.

; more addresses than max_addresses (listed out of order on purpose)
many            A     192.0.2.6
many            A     192.0.2.2
many            A     192.0.2.4
many            A     192.0.2.1
many            A     192.0.2.5
many            A     192.0.2.3

; more MX hosts than max_mx
manymx          MX    10 m1.manymx.test.
manymx          MX    20 m2.manymx.test.
manymx          MX    30 m3.manymx.test.
manymx          MX    40 m4.manymx.test.
m1.manymx       A     198.51.100.1
m2.manymx       A     198.51.100.2
m3.manymx       A     198.51.100.3
m4.manymx       A     198.51.100.4

; MX hosts that do not resolve: one NXDOMAIN, one SERVFAIL, one fine
mxbroken        MX    10 missing.test.
mxbroken        MX    20 broken.test.
mxbroken        MX    30 mx1.good.test.

; IPv4 only / IPv6 only hosts
v4only          A     192.0.2.44
v6only          AAAA  2001:db8::66

; a name whose A answer is truncated over UDP (the resolver must retry over TCP)
big             A     198.18.0.1
big             A     198.18.0.2
big             AAAA  2001:db8::b16

; loopback, for tests that probe a local server by name
local           A     127.0.0.1
local           AAAA  ::1
"""

#: Names (relative to the zone) answered with SERVFAIL, and truncated over UDP.
SERVFAIL_NAMES = ("servfail", "broken")
TRUNCATED_NAMES = ("big",)


def _absolute(names: Iterable[str], origin: dns.name.Name) -> frozenset[dns.name.Name]:
    return frozenset(dns.name.from_text(name, origin) for name in names)


class _Bound:
    """A server bound to ``host``:``port``, named the ways the tests pass it on."""

    host: str
    port: int

    @property
    def address(self) -> tuple[str, int]:
        """``(ip, port)`` as ``PlanInput(nameservers=[...])`` takes it."""
        return self.host, self.port

    @property
    def spec(self) -> str:
        """``IP:PORT`` as ``--nameserver`` takes it."""
        return format_nameserver(self.host, self.port)


class DNSServer(_Bound):
    """An authoritative server for one zone on ``host`` (UDP and TCP, one port)."""

    def __init__(
        self,
        zone_text: str = TEST_ZONE,
        origin: str = "test.",
        *,
        servfail: Iterable[str] = SERVFAIL_NAMES,
        truncate: Iterable[str] = TRUNCATED_NAMES,
        host: str = "127.0.0.1",
    ) -> None:
        self.origin = dns.name.from_text(origin)
        self.zone = dns.zone.from_text(zone_text, self.origin, relativize=False)
        self.servfail = _absolute(servfail, self.origin)
        self.truncate = _absolute(truncate, self.origin)
        self.host = host
        self.port = 0
        #: (query name, type, "udp"|"tcp") for every query received, in order.
        self.queries: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> DNSServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(50):  # find a port free for both UDP and TCP
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((self.host, 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            break
        else:
            raise RuntimeError("no port free for both UDP and TCP")
        tcp.listen(16)
        self.port = port
        self._udp, self._tcp = udp, tcp
        self._wake_r, self._wake_w = socket.socketpair()
        thread = threading.Thread(target=self._serve, name="dns-server", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
        for thread in self._threads:
            thread.join(timeout=5)
        for sock in (self._udp, self._tcp, self._wake_r, self._wake_w):
            sock.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._udp, selectors.EVENT_READ, "udp")
            selector.register(self._tcp, selectors.EVENT_READ, "tcp")
            selector.register(self._wake_r, selectors.EVENT_READ, "stop")
            while not self._stop.is_set():
                for key, _ in selector.select():
                    if key.data == "udp":
                        wire, peer = self._udp.recvfrom(65535)
                        reply = self.answer(wire, "udp")
                        if reply is not None:
                            self._udp.sendto(reply, peer)
                    elif key.data == "tcp":
                        conn, _ = self._tcp.accept()
                        worker = threading.Thread(target=self._serve_tcp, args=(conn,), daemon=True)
                        worker.start()
                        self._threads.append(worker)

    def _serve_tcp(self, conn: socket.socket) -> None:
        # RFC 1035 §4.2.2 / RFC 7766: each message prefixed by its two-octet length.
        with conn:
            conn.settimeout(5)
            try:
                while not self._stop.is_set():
                    header = _recv_exactly(conn, 2)
                    if header is None:
                        return
                    wire = _recv_exactly(conn, struct.unpack("!H", header)[0])
                    if wire is None:
                        return
                    reply = self.answer(wire, "tcp")
                    if reply is not None:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return

    # -- answering -----------------------------------------------------------------------

    def answer(self, wire: bytes, transport: str) -> bytes | None:
        """The reply to one query in wire format (None: drop a message we cannot parse)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        with self._lock:
            self.queries.append((qname.to_text(), dns.rdatatype.to_text(qtype), transport))
        if qname in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if not qname.is_subdomain(self.origin):
            response.set_rcode(dns.rcode.REFUSED)
            return response.to_wire()
        response.flags |= dns.flags.AA
        if qname in self.truncate and transport == "udp":
            response.flags |= dns.flags.TC  # RFC 2181 §9: "too big for UDP, ask over TCP"
            return response.to_wire()
        self._resolve(response, qname, qtype)
        return response.to_wire()

    def _resolve(
        self, response: dns.message.Message, qname: dns.name.Name, qtype: dns.rdatatype.RdataType
    ) -> None:
        name = qname
        for _ in range(8):  # follow a CNAME chain inside the zone, as BIND does
            node = self.zone.get_node(name)
            if node is None:
                response.set_rcode(dns.rcode.NXDOMAIN)  # RFC 6604: rcode of the last name
                break
            rdataset = node.get_rdataset(dns.rdataclass.IN, qtype)
            if rdataset is not None:
                response.answer.append(_rrset(name, rdataset))
                return
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is None:
                break  # NODATA
            response.answer.append(_rrset(name, cname))
            name = next(iter(cname)).target
        soa = self.zone.get_rdataset(self.origin, dns.rdatatype.SOA)
        if soa is not None:
            response.authority.append(_rrset(self.origin, soa))  # RFC 2308 negative answer


def _rrset(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))


def _recv_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class SilentDNSServer(_Bound):
    """A UDP port on loopback that reads every query and never answers."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.queries = 0
        self._stop = threading.Event()

    def __enter__(self) -> SilentDNSServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.bind((self.host, 0))
        self.port = self._sock.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._drop, name="silent-dns", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        for sock in (self._sock, self._wake_r, self._wake_w):
            sock.close()

    def _drop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ, "udp")
            selector.register(self._wake_r, selectors.EVENT_READ, "stop")
            while not self._stop.is_set():
                for key, _ in selector.select():
                    if key.data == "udp":
                        self._sock.recvfrom(65535)
                        self.queries += 1
