"""The lab's address plan: pure data, importable by tests and benchmark scripts alike.

Every address comes from the ranges the IETF reserved for documentation and benchmarks
(RFC 5737: 198.51.100.0/24, 203.0.113.0/24; RFC 2544: 198.18.0.0/15; RFC 3849:
2001:db8::/32), so nothing here can collide with a real host, and the namespaces carry
routes for these ranges only: a packet to any other address has no route and never
leaves the process that tried to send it.

    client ns ──veth── router ns ("the ISP") ──veth── internet ns
    198.18.1.2          198.18.1.1 | 198.18.2.1        198.18.2.2
    2001:db8:1::2       2001:db8:1::1 | 2001:db8:2::1  2001:db8:2::2
                                                      + provider and resolver
                                                        addresses on lo
"""

from __future__ import annotations

from dataclasses import dataclass

#: The ranges the lab may use, and the only ones routed between its namespaces.
LAB_PREFIXES_V4 = ("198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24")
LAB_PREFIXES_V6 = ("2001:db8::/32",)

CLIENT_V4, ROUTER_CLIENT_SIDE_V4 = "198.18.1.2", "198.18.1.1"
CLIENT_V6, ROUTER_CLIENT_SIDE_V6 = "2001:db8:1::2", "2001:db8:1::1"
INTERNET_V4, ROUTER_INTERNET_SIDE_V4 = "198.18.2.2", "198.18.2.1"
INTERNET_V6, ROUTER_INTERNET_SIDE_V6 = "2001:db8:2::2", "2001:db8:2::1"

#: The lab's only DNS server (dnsmasq, no upstream), in the internet namespace.
RESOLVER_V4, RESOLVER_V6 = "198.51.100.53", "2001:db8:5100::53"

#: Where the router's own services listen; REDIRECT sends port-25 traffic here.
ISP_RELAY_PORT = 10025  # the ISP's relay (Postfix in the router namespace)
ASA_PROXY_PORT = 10026  # the ASA-style masking proxy
ISP_RELAY_NAME = "smtp.isp.example"
#: Where each provider's Postfix answers a blocklisted client with 554 (receivers' DNAT).
BLOCKLIST_PORT = 10554
#: Where each provider's Postfix rate-limits connections (one per hour per client), and
#: the lab has already used this client's one: Postfix's own "421 4.7.0 … Error: too
#: many connections from …" (receivers' DNAT of port 25, "rate-limited" scenario).
RATE_LIMIT_PORT = 10421

#: NFQUEUE numbers in the router namespace.
ICMP_DELAY_QUEUE = 1  # every ICMP error the router sends, held a few ms (see delayline)
PATH_DELAY_QUEUE = 2  # every forwarded packet in the "latency" scenario
SLOW_25_QUEUE = 3  # port 25 to and from the slow provider ("slow-25" scenario)

MAIL_PORTS = (25, 465, 587, 2525)


@dataclass(frozen=True)
class Provider:
    """A mail provider in the lab's internet: one address per family, four ports."""

    key: str
    mx: str  # the MX host of ``domain``, and the name Postfix greets with
    other_names: tuple[str, ...]  # further names on the same address (submission, relay)
    ipv4: str
    ipv6: str

    @property
    def domain(self) -> str:
        return f"{self.key}.example"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.mx, *self.other_names)


PROVIDERS = (
    Provider(
        "alpha", "mx.alpha.example", ("smtp.alpha.example",), "203.0.113.10", "2001:db8:113::10"
    ),
    Provider("beta", "mx.beta.example", ("smtp.beta.example",), "203.0.113.20", "2001:db8:113::20"),
    Provider(
        "gamma", "mx.gamma.example", ("relay.gamma.example",), "203.0.113.30", "2001:db8:113::30"
    ),
)

DOMAINS = tuple(p.domain for p in PROVIDERS)

#: The provider whose port 25 is slow (~300 ms round trip) in the "slow-25" scenario.
SLOW_PROVIDER = PROVIDERS[2]

#: An extra receiver, not one of PROVIDERS (the scenario tests count their probes): Exim,
#: whose EHLO reply echoes the client's address ("Hello name [198.18.1.2]").
ECHO_DOMAIN, ECHO_MX = "echo.example", "mx.echo.example"
ECHO_V4, ECHO_V6 = "203.0.113.40", "2001:db8:113::40"

#: Readiness: the whoami servers' names resolve (through the lab DNS) to these; the
#: internet namespace DNATs them to the whoami instance of the current readiness world.
WHOAMI_SERVERS = {
    "resolver1.opendns.com": ("198.51.100.61", "2001:db8:5100::61"),
    "ns1.google.com": ("198.51.100.62", "2001:db8:5100::62"),
}
#: Where the lab DNS forwards the readiness zones (the client's PTR and forward names,
#: zen.spamhaus.org): DNATed to the current world's zone server.
READINESS_UPSTREAM_V4 = "198.51.100.60"
#: Each readiness zone / whoami server instance gets 198.51.100.(70+n), 2001:db8:5100::(70+n).
READINESS_SERVER_BASE = 70
#: The catalog's hosts (tests/lab/catalog_world.py): 203.0.113.(100+n), 2001:db8:113::1nn.
CATALOG_BASE = 100


def provider_by_address(address: str) -> Provider:
    for provider in PROVIDERS:
        if address in (provider.ipv4, provider.ipv6):
            return provider
    raise KeyError(address)
