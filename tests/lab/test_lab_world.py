"""The lab's world is right, independent of portprobe: the parts later tests stand on.

Each check asks a real server from the client namespace, with a tool that is not
portprobe (dnspython queries, swaks, nmap, a plain socket): the whoami, PTR and DNSBL
answers of every readiness world, Exim's EHLO echo, Postfix's own rate-limit 421, the
slow port-25 path, and the catalog's hosts (MX order, documented ports only).
"""

from __future__ import annotations

import ipaddress
import sys

import pytest

from .catalog_world import probed_hosts
from .netlab import Lab
from .peers import DnsAnswer, dns_queries, dns_query, nmap_scan, swaks
from .readiness_world import (
    CLEAN_NAME,
    ELSEWHERE_V4,
    GENERIC_V4,
    OTHER_EXIT_V4,
    PBL_SPAMHAUS,
    PUBLIC_RESOLVER_ERROR,
    TEST_LISTED,
    dnsbl_name,
)
from .topology import (
    CLIENT_V4,
    CLIENT_V6,
    ECHO_MX,
    ECHO_V4,
    ECHO_V6,
    MAIL_PORTS,
    PROVIDERS,
    RESOLVER_V4,
    RESOLVER_V6,
    SLOW_PROVIDER,
    WHOAMI_SERVERS,
)

pytestmark = pytest.mark.lab

OPENDNS_V4, OPENDNS_V6 = WHOAMI_SERVERS["resolver1.opendns.com"]
GOOGLE_V4, GOOGLE_V6 = WHOAMI_SERVERS["ns1.google.com"]
PTR_V4 = ipaddress.ip_address(CLIENT_V4).reverse_pointer
PTR_V6 = ipaddress.ip_address(CLIENT_V6).reverse_pointer


def ask(lab: Lab, name: str, rdtype: str, server: str = RESOLVER_V4) -> DnsAnswer:
    return dns_query(lab.client_argv([]), sys.executable, server, name, rdtype)


def answers(lab: Lab, name: str, rdtype: str, server: str = RESOLVER_V4) -> tuple[str, ...]:
    reply = ask(lab, name, rdtype, server)
    return reply.answers if reply.rcode == "NOERROR" else (reply.rcode,)


#: world -> the client's PTR (v4), the PTR name's A, and zen's answer for the client.
WORLD_DNS = {
    "clean": (f"{CLEAN_NAME}.", CLIENT_V4, "NXDOMAIN"),
    "generic-pbl": (f"{GENERIC_V4}.", CLIENT_V4, PBL_SPAMHAUS),
    "no-ptr": ("NXDOMAIN", None, "NXDOMAIN"),
    "ptr-fail": (f"{CLEAN_NAME}.", ELSEWHERE_V4, "NXDOMAIN"),
    "dnsbl-public-resolver": (f"{CLEAN_NAME}.", CLIENT_V4, PUBLIC_RESOLVER_ERROR),
    "whoami-disagrees": (f"{CLEAN_NAME}.", CLIENT_V4, "NXDOMAIN"),
}


@pytest.mark.parametrize("world", list(WORLD_DNS))
def test_readiness_world_dns(world: str, lab: Lab) -> None:
    lab.switch("open", readiness=world)
    ptr, forward, listed = WORLD_DNS[world]
    public = world == "dnsbl-public-resolver"
    seen_v4 = OTHER_EXIT_V4 if world == "whoami-disagrees" else CLIENT_V4
    # (server, name, type) -> the answers, or the rcode when there are none.
    expected = {
        (RESOLVER_V4, PTR_V4, "PTR"): (ptr,),
        (RESOLVER_V4, dnsbl_name(CLIENT_V4), "A"): (listed,),
        # The zone's own test entries: 127.0.0.2 listed, 127.0.0.1 not (or the error
        # code for everything, as Spamhaus answers public resolvers).
        (RESOLVER_V4, dnsbl_name("127.0.0.2"), "A"): (
            (PUBLIC_RESOLVER_ERROR,) if public else tuple(sorted(TEST_LISTED))
        ),
        (RESOLVER_V4, dnsbl_name("127.0.0.1"), "A"): (
            (PUBLIC_RESOLVER_ERROR,) if public else ("NXDOMAIN",)
        ),
        # whoami: the servers' names through the lab DNS, then each asked directly;
        # each answers the address of the family it was asked over.
        (RESOLVER_V4, "resolver1.opendns.com", "A"): (OPENDNS_V4,),
        (RESOLVER_V4, "ns1.google.com", "AAAA"): (GOOGLE_V6,),
        (OPENDNS_V4, "myip.opendns.com", "A"): (seen_v4,),
        (OPENDNS_V6, "myip.opendns.com", "AAAA"): (CLIENT_V6,),
        (GOOGLE_V4, "o-o.myaddr.l.google.com", "TXT"): (f'"{seen_v4}"',),
        (GOOGLE_V6, "o-o.myaddr.l.google.com", "TXT"): (f'"{CLIENT_V6}"',),
    }
    if forward is not None:
        expected[(RESOLVER_V4, ptr.rstrip("."), "A")] = (forward,)
    queries = [*expected, (RESOLVER_V6, PTR_V6, "PTR")]
    replies = dns_queries(lab.client_argv([]), sys.executable, queries)
    got = {
        q: r.answers if r.rcode == "NOERROR" else (r.rcode,)
        for q, r in zip(queries, replies, strict=True)
    }
    v6_ptr = got.pop((RESOLVER_V6, PTR_V6, "PTR"))
    assert got == expected
    assert v6_ptr[0].endswith(".") == (ptr != "NXDOMAIN"), v6_ptr


def test_readiness_dns_timeout_world(lab: Lab) -> None:
    lab.switch("open", readiness="dns-timeout")
    # The whoami servers never answer, nor does the lab DNS for the readiness names...
    silent = [
        (OPENDNS_V4, "myip.opendns.com", "A"),
        (GOOGLE_V6, "o-o.myaddr.l.google.com", "TXT"),
        (RESOLVER_V4, PTR_V4, "PTR"),
        (RESOLVER_V6, PTR_V6, "PTR"),
        (RESOLVER_V4, dnsbl_name(CLIENT_V4), "A"),
        (RESOLVER_V4, CLEAN_NAME, "A"),
    ]
    replies = dns_queries(lab.client_argv([]), sys.executable, silent, timeout=1)
    assert [r.rcode for r in replies] == ["TIMEOUT"] * len(silent)
    # ...while the probes' own lookups still work.
    assert answers(lab, "alpha.example", "MX") == ("10 mx.alpha.example.",)
    assert "5 gmail-smtp-in.l.google.com." in answers(lab, "gmail.com", "MX")


def test_exim_echoes_the_client_address_in_ehlo(
    lab: Lab, peer_tools: None, echo_receiver: None
) -> None:
    lab.switch("open")
    # By address: swaks would pick IPv6 for the name where it can (IO::Socket::INET6).
    seen = swaks(lab.client_argv([]), ECHO_V4, 25)
    assert seen.greeting_code == 220 and "Exim" in (seen.greeting_text or ""), seen.output
    assert f"250-{ECHO_MX} Hello lab-client.example [{CLIENT_V4}]" in seen.output, seen.output
    assert "STARTTLS" in seen.ehlo, seen.output
    reply = _smtp_ehlo(lab, ECHO_V6, 25)
    assert f"Hello lab-client.example [{CLIENT_V6}]" in reply, reply


#: Greeting, then (after a 2xx greeting) the EHLO reply, over a plain socket: swaks here
#: lacks IPv6 support (no IO::Socket::INET6).
_EHLO_SCRIPT = """
import socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
data = sock.recv(4096)
if data.startswith(b"2"):
    sock.sendall(b"EHLO lab-client.example\\r\\n")
    reply = b""
    while not (reply.startswith(b"250 ") or b"\\n250 " in reply) or not reply.endswith(b"\\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    data += reply
print(data.decode(errors="replace"))
"""


def _smtp_ehlo(lab: Lab, address: str, port: int) -> str:
    proc = lab.run_client([sys.executable, "-c", _EHLO_SCRIPT, address, str(port)], timeout=30)
    return proc.stdout + proc.stderr


def test_postfix_rate_limit_answers_421(lab: Lab, peer_tools: None) -> None:
    lab.switch("rate-limited")
    prefix = lab.client_argv([])
    for provider in PROVIDERS:
        seen = swaks(prefix, provider.ipv4, 25)
        assert seen.greeting_code == 421, seen.output
        assert seen.greeting_text == (
            f"4.7.0 {provider.mx} Error: too many connections from {CLIENT_V4}"
        ), seen.output
        greeting = _smtp_ehlo(lab, provider.ipv6, 25)
        assert greeting.startswith(
            f"421 4.7.0 {provider.mx} Error: too many connections from {CLIENT_V6}"
        ), greeting
    # The limit is the receivers' own: the same servers greet 220 in every other scenario.
    lab.switch("open")
    assert swaks(prefix, PROVIDERS[0].ipv4, 25).greeting_code == 220


_HANDSHAKE_SCRIPT = """
import socket, sys, time
start = time.monotonic()
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10).close()
print((time.monotonic() - start) * 1000)
"""


def _handshake_ms(lab: Lab, address: str, port: int) -> float:
    proc = lab.run_client([sys.executable, "-c", _HANDSHAKE_SCRIPT, address, str(port)], timeout=30)
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout)


def test_slow_25_delays_only_port_25_of_one_provider(lab: Lab) -> None:
    lab.switch("slow-25")
    # A floor the delay line imposes (150 ms each way), not a race: the kernel cannot
    # complete the handshake before the queued SYN/ACK is released.
    for address in (SLOW_PROVIDER.ipv4, SLOW_PROVIDER.ipv6):
        assert _handshake_ms(lab, address, 25) >= 295
    # The other ports and providers are untouched (nmap: open, by syn-ack). (nmap itself
    # may call the slow port 25 "filtered": its timeout adapts to the fast ports' RTT.)
    seen = nmap_scan(lab.client_argv([]), [SLOW_PROVIDER.ipv4, PROVIDERS[0].ipv4], MAIL_PORTS)
    fast = {key: port for key, port in seen.items() if key != (SLOW_PROVIDER.ipv4, 25)}
    assert len(fast) == 2 * len(MAIL_PORTS) - 1
    assert {(p.state, p.reason) for p in fast.values()} == {("open", "syn-ack")}


def test_catalog_hosts_serve_documented_ports_only(lab: Lab, peer_tools: None) -> None:
    lab.switch("open")
    hosts = probed_hosts(lab.catalog_hosts)
    # MX records with the real preference order.
    assert answers(lab, "gmail.com", "MX")[0] == "10 alt1.gmail-smtp-in.l.google.com."
    assert "5 gmail-smtp-in.l.google.com." in answers(lab, "gmail.com", "MX")
    seen = nmap_scan(lab.client_argv([]), [a for h in hosts for a in (h.ipv4, h.ipv6)], MAIL_PORTS)
    for host in hosts:
        for address in (host.ipv4, host.ipv6):
            for port in MAIL_PORTS:
                state = seen[(address, port)]
                want = ("open", "syn-ack") if port in host.ports else ("filtered", "no-response")
                assert (state.state, state.reason) == want, f"{host.name} {address}:{port}"
    # Each greets in its provider's own style, on its real name.
    for host in hosts:
        if 25 in host.ports:
            assert swaks(lab.client_argv([]), host.name, 25).greeting_text == host.greeting
