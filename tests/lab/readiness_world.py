"""The DNS a readiness check meets: the client's PTR and forward names, a DNSBL, whoami.

Spec "Mail readiness" asks the internet three things about this client, and the lab
answers each from real DNS servers (dnsmasq) at lab addresses:

* **whoami**: ``myip.opendns.com`` A/AAAA asked of ``resolver1.opendns.com``, and TXT
  ``o-o.myaddr.l.google.com`` asked of ``ns1.google.com``. The lab DNS resolves those two
  names to ``WHOAMI_SERVERS``; the internet namespace DNATs queries for them to a whoami
  instance: one that answers what the client's IPv4 address is, one for IPv6 (like the
  real servers, each answers the family it was asked over), or one that names another
  address (split routing / carrier-grade NAT: "whoami disagrees with the EHLO echo").
* **PTR and forward records** of the client (``198.18.1.2``, ``2001:db8:1::2``), and the
  **DNSBL** zone ``zen.spamhaus.org`` with real Spamhaus return codes, including the
  test entries (127.0.0.2 listed, 127.0.0.1 not). The lab DNS forwards these zones to
  ``READINESS_UPSTREAM_V4``, DNATed to the current world's zone instance.

A *world* picks one zone instance and the whoami instances; switching is a NAT rules
swap in the internet namespace plus a conntrack flush, as for the ISP scenarios. In
``dns-timeout`` nothing answers: the upstream and whoami addresses drop every query, so
readiness times out while the MX/A lookups of the probes still work.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .topology import (
    CLIENT_V4,
    CLIENT_V6,
    READINESS_SERVER_BASE,
    READINESS_UPSTREAM_V4,
    RESOLVER_V4,
    RESOLVER_V6,
    WHOAMI_SERVERS,
)

ZONE = "zen.spamhaus.org"
#: Names under which the client's forward records live (forwarded by the lab DNS).
CLIENT_DOMAINS = ("client.example", "customers.isp.example")
CLEAN_NAME = "mail.client.example"
GENERIC_V4 = "198-18-1-2.dynamic.customers.isp.example"
GENERIC_V6 = "2001-db8-1--2.dynamic.customers.isp.example"
#: Where the "fail" world's PTR name really points: not back at the client.
ELSEWHERE_V4, ELSEWHERE_V6 = "198.18.9.9", "2001:db8:9::9"
#: The address the lying whoami reports (another exit of a split-routed network).
OTHER_EXIT_V4 = "198.18.77.7"

#: Spamhaus ZEN return codes (docs.spamhaus.com): .2 SBL, .4 XBL, .10/.11 PBL;
#: 127.255.255.254 = "queried through a public resolver", an error, never a listing.
PBL_SPAMHAUS = "127.0.0.11"
PUBLIC_RESOLVER_ERROR = "127.255.255.254"
TEST_LISTED = ("127.0.0.2", "127.0.0.4", "127.0.0.10")  # what 127.0.0.2 returns


def dnsbl_name(address: str, zone: str = ZONE) -> str:
    """``2.1.18.198.zen.spamhaus.org`` (reverse octets, or nibbles for IPv6)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return ".".join(reversed(address.split("."))) + f".{zone}"
    return ".".join(reversed(ip.exploded.replace(":", ""))) + f".{zone}"


def _wire_suffix(name: str) -> str:
    """``zen.spamhaus.org`` -> ``|03|zen|08|spamhaus|03|org|00|`` (iptables hex-string)."""
    return "".join(f"|{len(label):02x}|{label}" for label in name.split(".")) + "|00|"


def reverse_zones() -> tuple[str, ...]:
    """The reverse zones of the client's networks (198.18.0.0/15's /16s, 2001:db8::/32)."""
    return ("18.198.in-addr.arpa", "19.198.in-addr.arpa", "8.b.d.0.1.0.0.2.ip6.arpa")


@dataclass(frozen=True)
class Server:
    """One dnsmasq instance: ``argv`` records, at 198.51.100.(70+index)."""

    name: str
    index: int
    records: tuple[str, ...]

    @property
    def ipv4(self) -> str:
        return f"198.51.100.{READINESS_SERVER_BASE + self.index}"

    @property
    def ipv6(self) -> str:
        return f"2001:db8:5100::{READINESS_SERVER_BASE + self.index}"


def _ptr(address: str, name: str) -> str:
    return f"--ptr-record={ipaddress.ip_address(address).reverse_pointer},{name}"


def _listed(address: str, *answers: str) -> tuple[str, ...]:
    return tuple(f"--address=/{dnsbl_name(address)}/{a}" for a in answers)


_TEST_ENTRIES = _listed("127.0.0.2", *TEST_LISTED)  # 127.0.0.1: NXDOMAIN, as in real ZEN
_CLEAN_PTR = (f"--host-record={CLEAN_NAME},{CLIENT_V4},{CLIENT_V6}",)  # A, AAAA and PTR


def _whoami(address: str) -> tuple[str, ...]:
    return (
        f"--address=/myip.opendns.com/{address}",
        f"--txt-record=o-o.myaddr.l.google.com,{address}",
    )


_READINESS_QNAME_SUFFIXES = tuple(
    _wire_suffix(zone) for zone in (ZONE, *reverse_zones(), *CLIENT_DOMAINS)
)

_SERVERS = (
    Server("zones-clean", 0, (*_CLEAN_PTR, *_TEST_ENTRIES)),
    Server(
        "zones-generic-pbl",
        1,
        (
            f"--host-record={GENERIC_V4},{CLIENT_V4}",
            f"--host-record={GENERIC_V6},{CLIENT_V6}",
            *_listed(CLIENT_V4, PBL_SPAMHAUS),
            *_TEST_ENTRIES,
        ),
    ),
    Server("zones-no-ptr", 2, _TEST_ENTRIES),
    Server(
        "zones-ptr-fail",
        3,
        (
            _ptr(CLIENT_V4, CLEAN_NAME),
            _ptr(CLIENT_V6, CLEAN_NAME),
            f"--host-record={CLEAN_NAME},{ELSEWHERE_V4},{ELSEWHERE_V6}",
            *_TEST_ENTRIES,
        ),
    ),
    # Spamhaus answers every query from a public resolver this way, test entries too.
    Server(
        "zones-dnsbl-public-resolver",
        4,
        (*_CLEAN_PTR, f"--address=/{ZONE}/{PUBLIC_RESOLVER_ERROR}"),
    ),
    Server("whoami-v4", 5, _whoami(CLIENT_V4)),
    Server("whoami-v6", 6, _whoami(CLIENT_V6)),
    Server("whoami-other-exit", 7, _whoami(OTHER_EXIT_V4)),
)
SERVERS = {s.name: s for s in _SERVERS}


@dataclass(frozen=True)
class World:
    name: str
    description: str
    zones: str | None  # a SERVERS key; None: queries dropped (time out)
    whoami_v4: str | None = "whoami-v4"
    whoami_v6: str | None = "whoami-v6"
    expected: dict[str, str] = field(default_factory=dict)  # for the docs and tests

    def nat_rules(self, family: int) -> list[str]:
        """nat rules (``-A CHAIN ...``) sending this world's queries to its servers."""
        rules = []
        whoami = self.whoami_v6 if family == 6 else self.whoami_v4
        for addresses in WHOAMI_SERVERS.values():
            if whoami is None:
                continue
            server = SERVERS[whoami]
            target = server.ipv6 if family == 6 else server.ipv4
            for proto in ("udp", "tcp"):
                rules.append(
                    f"-A PREROUTING -d {addresses[1 if family == 6 else 0]} -p {proto} "
                    f"--dport 53 -j DNAT --to-destination {target}"
                )
        if family == 4 and self.zones is not None:
            for proto in ("udp", "tcp"):
                rules.append(
                    f"-A OUTPUT -d {READINESS_UPSTREAM_V4} -p {proto} --dport 53 "
                    f"-j DNAT --to-destination {SERVERS[self.zones].ipv4}"
                )
        return rules

    def filter_rules(self, family: int) -> list[str]:
        """filter rules dropping the queries of the servers this world lacks."""
        rules = []
        whoami = self.whoami_v6 if family == 6 else self.whoami_v4
        if whoami is None:
            for addresses in WHOAMI_SERVERS.values():
                for proto in ("udp", "tcp"):
                    address = addresses[1 if family == 6 else 0]
                    rules.append(f"-A INPUT -d {address} -p {proto} --dport 53 -j DROP")
        if self.zones is None:
            # The lab DNS itself goes silent for the readiness names (matched in the
            # query's wire-format name), so the client's own queries time out, while it
            # still answers the probes' MX/A/AAAA lookups.
            resolver = RESOLVER_V6 if family == 6 else RESOLVER_V4
            for suffix in _READINESS_QNAME_SUFFIXES:
                rules.append(
                    f"-A INPUT -d {resolver} -p udp --dport 53 -m string --algo bm --icase "
                    f'--hex-string "{suffix}" -j DROP'
                )
        return rules


WORLDS: dict[str, World] = {
    w.name: w
    for w in (
        World("clean", "PTR mail.client.example, forward-confirmed; not listed", "zones-clean"),
        World(
            "generic-pbl",
            "PTR 198-18-1-2.dynamic.customers.isp.example; listed in Spamhaus PBL (127.0.0.11)",
            "zones-generic-pbl",
        ),
        World("no-ptr", "no PTR for the client (iprev permerror)", "zones-no-ptr"),
        World(
            "ptr-fail",
            "PTR mail.client.example, whose A/AAAA name other addresses (iprev fail)",
            "zones-ptr-fail",
        ),
        World(
            "dnsbl-public-resolver",
            "zen.spamhaus.org answers 127.255.255.254 to everything (public resolver)",
            "zones-dnsbl-public-resolver",
        ),
        World(
            "whoami-disagrees",
            f"whoami (IPv4) says {OTHER_EXIT_V4}; the EHLO echo says {CLIENT_V4}",
            "zones-clean",
            whoami_v4="whoami-other-exit",
        ),
        World(
            "dns-timeout",
            "readiness DNS (zones and whoami) drops every query: it times out",
            None,
            whoami_v4=None,
            whoami_v6=None,
        ),
    )
}


def main_dnsmasq_args() -> list[str]:
    """What the lab's own DNS needs: the whoami names, and forwarding of the zones."""
    args = [f"--host-record={name},{v4},{v6}" for name, (v4, v6) in WHOAMI_SERVERS.items()]
    forwarded = "/".join((ZONE, *reverse_zones(), *CLIENT_DOMAINS))
    args.append(f"--server=/{forwarded}/{READINESS_UPSTREAM_V4}")
    return args


def server_argv(binary: str, server: Server, log_file: str) -> list[str]:
    local = "/".join((ZONE, *reverse_zones(), *CLIENT_DOMAINS, "opendns.com", "google.com"))
    return [
        binary,
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        f"--listen-address={server.ipv4}",
        f"--listen-address={server.ipv6}",
        "--port=53",
        "--user=root",
        "--pid-file=",
        f"--local=/{local}/",
        "--cache-size=0",
        "--log-queries",
        f"--log-facility={log_file}",
        *server.records,
    ]
