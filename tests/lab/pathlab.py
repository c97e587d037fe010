"""A deeper path for the path trace: who stops port 25, hop by hop.

    client ── home router ── ISP router ── transit ── destination router ── hosts
    192.168.1.2  192.168.1.1   198.18.20.1   198.18.21.2  198.18.22.2      203.0.113.10/20/30
    fd00:1::2    fd00:1::1     2001:db8:20::1 …:21::2     …:22::2          2001:db8:113::10/20/30
                 NAT (v4, v6)                                              + the lab DNS

The client sits behind a home router with a private (RFC 1918 / ULA) address and NAT, as
at home; the ISP, the transit network and the destination each have their own AS, served
by the lab's dnsmasq under Team Cymru's names (``…origin.asn.cymru.com``,
``AS<n>.asn.cymru.com``), with PTR names for the routers. The hosts are the main lab's
providers (same names and addresses), each a minimal SMTP receiver on 25 and 587.

A scenario is one rule set per namespace (``iptables-restore``), so a switch is a swap.
Separate from the main lab (tests/lab/netlab.py), whose one-router topology the other lab
tests measure; namespaces are named ``pplab<pid>-…`` so a stale one is removed the same way.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from shutil import rmtree

from . import netns
from .dnsmasq import start_dnsmasq
from .netns import LabError, Namespace
from .topology import PROVIDERS, RESOLVER_V4, RESOLVER_V6

_COUNTER = itertools.count(1)

# The home LAN is private (RFC 1918 / ULA), as a real one is: that is what makes the home
# router's hop "local-network". These addresses exist only on veth pairs created inside
# this lab's own namespaces (no link to the machine's namespace), so traffic to them never
# leaves the lab.
CLIENT_V4, HOME_LAN_V4, HOME_WAN_V4 = "192.168.1.2", "192.168.1.1", "198.18.20.2"
CLIENT_V6, HOME_LAN_V6, HOME_WAN_V6 = "fd00:1::2", "fd00:1::1", "2001:db8:20::2"
ISP_V4, ISP_V6 = "198.18.20.1", "2001:db8:20::1"
ISP_UP_V4, ISP_UP_V6 = "198.18.21.1", "2001:db8:21::1"
TRANSIT_V4, TRANSIT_V6 = "198.18.21.2", "2001:db8:21::2"
TRANSIT_DOWN_V4, TRANSIT_DOWN_V6 = "198.18.22.1", "2001:db8:22::1"
DESTGW_V4, DESTGW_V6 = "198.18.22.2", "2001:db8:22::2"
DESTGW_DOWN_V4, DESTGW_DOWN_V6 = "198.18.23.1", "2001:db8:23::1"
HOSTS_V4, HOSTS_V6 = "198.18.23.2", "2001:db8:23::2"
#: The hop each router is at from the client; the hosts are at HOST_DISTANCE.
HOPS = {"home": 1, "isp": 2, "transit": 3, "destgw": 4}
HOST_DISTANCE = 5
ISP_AS, TRANSIT_AS, DEST_AS = 64500, 64510, 64511
AS_NAMES = {ISP_AS: "EXAMPLE-ISP", TRANSIT_AS: "EXAMPLE-TRANSIT", DEST_AS: "EXAMPLE-MAIL"}
#: Every public address a trace can meet, with its AS (Cymru origin data).
ORIGINS = {
    HOME_WAN_V4: ISP_AS,
    HOME_WAN_V6: ISP_AS,
    ISP_V4: ISP_AS,
    ISP_V6: ISP_AS,
    TRANSIT_V4: TRANSIT_AS,
    TRANSIT_V6: TRANSIT_AS,
    DESTGW_V4: DEST_AS,
    DESTGW_V6: DEST_AS,
    **{p.ipv4: DEST_AS for p in PROVIDERS},
    **{p.ipv6: DEST_AS for p in PROVIDERS},
}
PTR_NAMES = {
    ISP_V4: "edge1.isp.example",
    ISP_V6: "edge1.isp.example",
    TRANSIT_V4: "core.transit.example",
    TRANSIT_V6: "core.transit.example",
    DESTGW_V4: "gw.mail.example",
    DESTGW_V6: "gw.mail.example",
}
PROXY_PORT = 10025
SMTP_OUT = "-p tcp --dport 25"


def origin_txt_name(address: str) -> str:
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return ".".join(reversed(address.split("."))) + ".origin.asn.cymru.com"
    return ".".join(reversed(ip.exploded.replace(":", ""))) + ".origin6.asn.cymru.com"


def dns_records() -> list[str]:
    """dnsmasq arguments: Cymru origin and AS-name TXT records, and the routers' PTRs."""
    out = []
    for address, asn in ORIGINS.items():
        prefix = ipaddress.ip_network(f"{address}/{24 if ':' not in address else 64}", strict=False)
        out.append(
            f"--txt-record={origin_txt_name(address)},{asn} | {prefix} | ZZ | lab | 2026-01-01"
        )
    for asn, name in AS_NAMES.items():
        out.append(f"--txt-record=AS{asn}.asn.cymru.com,{asn} | ZZ | lab | 2026-01-01 | {name}")
    for address, name in PTR_NAMES.items():
        reverse = ipaddress.ip_address(address).reverse_pointer
        out.append(f"--ptr-record={reverse},{name}")
    return out


@dataclass(frozen=True)
class PathScenario:
    """Rules per namespace: filter OUTPUT (client) / FORWARD (routers) / INPUT (hosts),
    nat PREROUTING; each a list of iptables arguments after the chain, for both families
    unless ``v4_only``."""

    name: str
    where: str | None  # what path.blocker.where must say (None: nothing placed)
    how: str | None
    hop: int | None
    output: tuple[str, ...] = ()  # client OUTPUT
    forward: dict[str, tuple[str, ...]] = field(default_factory=dict)  # router -> FORWARD
    host_input: tuple[str, ...] = ()  # hosts INPUT
    redirect: str | None = None  # router whose PREROUTING redirects port 25 to its proxy
    v4_only: bool = False


SCENARIOS = {
    s.name: s
    for s in (
        PathScenario("open", None, None, None),
        PathScenario(
            "local-drop-v4",
            "this-machine",
            "drop",
            0,
            output=(f"{SMTP_OUT} -j DROP",),
            v4_only=True,
        ),
        PathScenario("local-drop", "this-machine", "drop", 0, output=(f"{SMTP_OUT} -j DROP",)),
        PathScenario(
            "local-reject", "this-machine", "prohibited", 0, output=(f"{SMTP_OUT} -j REJECT",)
        ),
        PathScenario(
            "home-drop", "local-network", "drop", 1, forward={"home": (f"{SMTP_OUT} -j DROP",)}
        ),
        PathScenario("isp-drop", "isp", "drop", 2, forward={"isp": (f"{SMTP_OUT} -j DROP",)}),
        PathScenario(
            "isp-reset",
            "isp",
            "reset",
            2,
            forward={"isp": (f"{SMTP_OUT} -j REJECT --reject-with tcp-reset",)},
        ),
        PathScenario(
            "isp-prohibited",
            "isp",
            "prohibited",
            2,
            forward={"isp": (f"{SMTP_OUT} -j REJECT --reject-with ADMIN",)},
        ),
        PathScenario(
            "transit-drop", "transit", "drop", 3, forward={"transit": (f"{SMTP_OUT} -j DROP",)}
        ),
        PathScenario(
            "one-destination-drop",
            "destination",
            "drop",
            HOST_DISTANCE,
            host_input=(f"-d BETA {SMTP_OUT} -j DROP",),
        ),
        PathScenario("proxy-hop1", "local-network", "proxy", 1, redirect="home"),
        PathScenario("proxy-hop2", "isp", "proxy", 2, redirect="isp"),
    )
}


def _rules(family: int, filter_rules: dict[str, tuple[str, ...]], nat: tuple[str, ...]) -> str:
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for chain, rules in filter_rules.items():
        for rule in rules:
            admin = "icmp6-adm-prohibited" if family == 6 else "icmp-admin-prohibited"
            beta = PROVIDERS[1].ipv6 if family == 6 else PROVIDERS[1].ipv4
            rule = rule.replace("ADMIN", admin).replace("BETA", beta)
            if family == 6:
                rule = rule.replace(
                    "-j REJECT --reject-with tcp-reset", "-j REJECT --reject-with tcp-reset"
                )
            lines.append(f"-A {chain} {rule}")
    lines += ["COMMIT", "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]"]
    lines += [":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", *nat, "COMMIT"]
    return "\n".join(lines) + "\n"


class PathLab:
    """The path lab: :meth:`up`, :meth:`switch`, :meth:`run_client`, :meth:`down`."""

    ROLES = ("client", "home", "isp", "transit", "destgw", "hosts")

    def __init__(self) -> None:
        stem = f"{netns.NAMESPACE_PREFIX}{os.getpid()}-{next(_COUNTER)}p"
        self.ns = {role: Namespace(f"{stem}-{role}") for role in self.ROLES}
        self.workdir = Path(tempfile.gettempdir()) / f"{stem}-pathlab"
        self._made: list[Namespace] = []
        self._processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> PathLab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> PathLab:
        netns.remove_stale_namespaces()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._build()
            self._start()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        netns.end_processes([p.pid for p in self._processes], grace=2.0)
        for proc in self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
                proc.wait(timeout=1)
        self._processes.clear()
        for ns in reversed(self._made):
            netns.delete_namespace(ns)
        self._made.clear()
        rmtree(self.workdir, ignore_errors=True)

    def _link(self, a: str, a_if: str, b: str, b_if: str) -> None:
        self.ns[a].ip([f"link add {a_if} type veth peer {b_if} netns {self.ns[b].name}"])

    def _build(self) -> None:
        resolv = f"nameserver {RESOLVER_V4}\nnameserver {RESOLVER_V6}\noptions timeout:1\n"
        for role in self.ROLES:
            self._made.append(netns.create_namespace(self.ns[role].name, resolv))
            self.ns[role].sysctl(
                {
                    "net.ipv6.conf.all.accept_dad": 0,
                    "net.ipv6.conf.default.accept_dad": 0,
                    "net.ipv6.conf.all.accept_ra": 0,
                    "net.ipv6.conf.default.accept_ra": 0,
                }
            )
        for role in ("home", "isp", "transit", "destgw"):
            self.ns[role].sysctl(
                {
                    "net.ipv4.ip_forward": 1,
                    "net.ipv6.conf.all.forwarding": 1,
                    "net.ipv4.icmp_ratelimit": 0,
                    "net.ipv6.icmp.ratelimit": 0,
                }
            )
        self._link("client", "up0", "home", "lan0")
        self._link("home", "wan0", "isp", "cust0")
        self._link("isp", "up0", "transit", "a0")
        self._link("transit", "b0", "destgw", "c0")
        self._link("destgw", "d0", "hosts", "e0")
        lab_v4 = ("203.0.113.0/24", "198.51.100.0/24")
        lab_v6 = ("2001:db8:113::/64", "2001:db8:5100::/64")

        def iface(name: str, v4: str, v6: str, plen6: int = 64) -> list[str]:
            return [
                f"addr add {v4}/24 dev {name}",
                f"addr add {v6}/{plen6} dev {name} nodad",
                f"link set {name} up",
            ]

        self.ns["client"].ip(
            [
                "link set lo up",
                *iface("up0", CLIENT_V4, CLIENT_V6),
                f"route add default via {HOME_LAN_V4}",
                f"route add default via {HOME_LAN_V6}",
            ]
        )
        self.ns["home"].ip(
            [
                "link set lo up",
                *iface("lan0", HOME_LAN_V4, HOME_LAN_V6),
                *iface("wan0", HOME_WAN_V4, HOME_WAN_V6),
                f"route add default via {ISP_V4}",
                f"route add default via {ISP_V6}",
            ]
        )
        self.ns["isp"].ip(
            [
                "link set lo up",
                *iface("cust0", ISP_V4, ISP_V6),
                *iface("up0", ISP_UP_V4, ISP_UP_V6),
                *(
                    f"route add {p} via {TRANSIT_V4}"
                    for p in (*lab_v4, "198.18.22.0/24", "198.18.23.0/24")
                ),
                *(
                    f"route add {p} via {TRANSIT_V6}"
                    for p in (*lab_v6, "2001:db8:22::/64", "2001:db8:23::/64")
                ),
            ]
        )
        self.ns["transit"].ip(
            [
                "link set lo up",
                *iface("a0", TRANSIT_V4, TRANSIT_V6),
                *iface("b0", TRANSIT_DOWN_V4, TRANSIT_DOWN_V6),
                *(f"route add {p} via {DESTGW_V4}" for p in (*lab_v4, "198.18.23.0/24")),
                *(f"route add {p} via {DESTGW_V6}" for p in (*lab_v6, "2001:db8:23::/64")),
                f"route add 198.18.20.0/24 via {ISP_UP_V4}",
                f"route add 2001:db8:20::/64 via {ISP_UP_V6}",
            ]
        )
        self.ns["destgw"].ip(
            [
                "link set lo up",
                *iface("c0", DESTGW_V4, DESTGW_V6),
                *iface("d0", DESTGW_DOWN_V4, DESTGW_DOWN_V6),
                *(f"route add {p} via {HOSTS_V4}" for p in lab_v4),
                *(f"route add {p} via {HOSTS_V6}" for p in lab_v6),
                f"route add default via {TRANSIT_DOWN_V4}",
                f"route add default via {TRANSIT_DOWN_V6}",
            ]
        )
        on_lo = [(p.ipv4, p.ipv6) for p in PROVIDERS] + [(RESOLVER_V4, RESOLVER_V6)]
        self.ns["hosts"].ip(
            [
                "link set lo up",
                *iface("e0", HOSTS_V4, HOSTS_V6),
                *(f"addr add {v4}/32 dev lo" for v4, _ in on_lo),
                *(f"addr add {v6}/128 dev lo" for _, v6 in on_lo),
                f"route add default via {DESTGW_DOWN_V4}",
                f"route add default via {DESTGW_DOWN_V6}",
            ]
        )

    def _serve(self, role: str, name: str, endpoints: list[str]) -> None:
        server = Path(__file__).with_name("pathserve.py")
        argv = [sys.executable, str(server), name, *endpoints]
        log = self.workdir / f"serve-{role}-{name}.log"
        self._processes.append(self.ns[role].popen(argv, log=log))

    def _start(self) -> None:
        self._processes.append(start_dnsmasq(self.ns["hosts"], self.workdir, dns_records()))
        for p in PROVIDERS:
            endpoints = [f"{a}:{port}" for a in (p.ipv4, f"[{p.ipv6}]") for port in (25, 587)]
            self._serve("hosts", p.mx, endpoints)
        self._serve("home", "relay.home.example", [f"0.0.0.0:{PROXY_PORT}", f"[::]:{PROXY_PORT}"])
        self._serve("isp", "smtp.isp.example", [f"0.0.0.0:{PROXY_PORT}", f"[::]:{PROXY_PORT}"])
        self.switch("open")
        deadline = time.monotonic() + 10
        want = {f"{p.ipv4}:25" for p in PROVIDERS} | {f"{RESOLVER_V4}:53"}
        while time.monotonic() < deadline:
            listening = self.ns["hosts"].run(["ss", "-Hltn"], check=False).stdout
            if all(w in listening for w in want):
                return
            time.sleep(0.05)
        raise LabError("path lab: the receivers or the DNS did not start")

    def switch(self, name: str) -> None:
        s = SCENARIOS[name]
        inbound = {"home": "lan0", "isp": "cust0"}
        for family in (4, 6):
            tool = "iptables-restore" if family == 4 else "ip6tables-restore"
            applies = family == 4 or not s.v4_only
            for role in self.ROLES:
                chains: dict[str, tuple[str, ...]] = {}
                nat: list[str] = []
                if applies and role == "client":
                    chains["OUTPUT"] = s.output
                if applies and role in s.forward:
                    chains["FORWARD"] = s.forward[role]
                if applies and role == "hosts":
                    chains["INPUT"] = s.host_input
                if role == "home":
                    nat.append("-A POSTROUTING -o wan0 -j MASQUERADE")
                if s.redirect == role:
                    redirect = f"-j REDIRECT --to-ports {PROXY_PORT}"
                    nat.append(f"-A PREROUTING -i {inbound[role]} {SMTP_OUT} {redirect}")
                self.ns[role].run([tool], input=_rules(family, chains, tuple(nat)))
        for role in self.ROLES:
            for family in ("ipv4", "ipv6"):
                self.ns[role].run(["conntrack", "-F", "-f", family], check=False)

    def run_client(
        self, argv: list[str], *, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return netns.run(self.ns["client"].argv(argv), check=False, timeout=timeout)
