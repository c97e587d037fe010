"""What the ISP does to its customer's traffic: one entry per scenario.

A scenario is the router's complete iptables/ip6tables rule set (loaded atomically with
``iptables-restore``) plus two switches outside the router: whether the receivers
blocklist the client (a Postfix access table in the internet namespace) and whether the
client's uplink is down. Switching is therefore a rules swap and a conntrack flush.

Every rule set starts with the ICMP-error delay line (see ``delayline``): the router's
ICMP errors wait a few milliseconds, like they would on a real path.
"""

from __future__ import annotations

from dataclasses import dataclass

from .topology import (
    ASA_PROXY_PORT,
    ICMP_DELAY_QUEUE,
    ISP_RELAY_PORT,
    PATH_DELAY_QUEUE,
    SLOW_25_QUEUE,
    SLOW_PROVIDER,
)

#: Router interface names (fixed: they live inside the run's own namespace).
CUSTOMER_IF = "cust0"  # towards the client
UPLINK_IF = "wan0"  # towards the internet


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    forward_v4: tuple[str, ...] = ()  # filter/FORWARD rules, iptables syntax after "-A FORWARD"
    forward_v6: tuple[str, ...] = ()
    nat_v4: tuple[str, ...] = ()  # nat/PREROUTING rules
    nat_v6: tuple[str, ...] = ()
    forward_policy: str = "ACCEPT"
    blocklisted: bool = False  # receivers greet this client with 554 on port 25
    rate_limited: bool = False  # receivers' Postfix: 421 too many connections on port 25
    client_link_down: bool = False
    client_ipv6_route: bool = True  # False: IPv6 "unavailable", as in most homes

    def ruleset(self, family: int) -> str:
        v6 = family == 6
        icmp = (
            "-p ipv6-icmp --icmpv6-type destination-unreachable"
            if v6
            else "-p icmp --icmp-type destination-unreachable"
        )
        forward = self.forward_v6 if v6 else self.forward_v4
        nat = self.nat_v6 if v6 else self.nat_v4
        lines = [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            f":FORWARD {self.forward_policy} [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            f"-A OUTPUT {icmp} -j NFQUEUE --queue-num {ICMP_DELAY_QUEUE}",
            *(f"-A FORWARD {rule}" for rule in forward),
            "COMMIT",
            "*nat",
            ":PREROUTING ACCEPT [0:0]",
            ":INPUT ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]",
            *(f"-A PREROUTING {rule}" for rule in nat),
            "COMMIT",
        ]
        return "\n".join(lines) + "\n"


def _both_families(name: str, description: str, rule: str) -> Scenario:
    return Scenario(name, description, forward_v4=(rule,), forward_v6=(rule,))


def _redirected(name: str, description: str, port: int) -> Scenario:
    rule = f"-i {CUSTOMER_IF} -p tcp --dport 25 -j REDIRECT --to-ports {port}"
    return Scenario(name, description, nat_v4=(rule,), nat_v6=(rule,))


_SMTP_OUT = f"-i {CUSTOMER_IF} -p tcp --dport 25"


def _slow_25(family: int) -> tuple[str, ...]:
    # Both directions of port 25 to the slow provider wait in the slow delay line
    # (150 ms each way: ~300 ms round trip); every other port and provider is fast.
    address = SLOW_PROVIDER.ipv6 if family == 6 else SLOW_PROVIDER.ipv4
    queue = f"-j NFQUEUE --queue-num {SLOW_25_QUEUE}"
    return (
        f"-d {address} -p tcp --dport 25 {queue}",
        f"-s {address} -p tcp --sport 25 {queue}",
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("open", "nothing blocked"),
        _both_families(
            "dropped", "port 25 silently dropped (IPv4 and IPv6)", f"{_SMTP_OUT} -j DROP"
        ),
        _both_families(
            "reset",
            "port 25 answered with a TCP reset",
            f"{_SMTP_OUT} -j REJECT --reject-with tcp-reset",
        ),
        Scenario(
            "prohibited",
            "port 25 answered with ICMP administratively prohibited",
            forward_v4=(f"{_SMTP_OUT} -j REJECT --reject-with icmp-admin-prohibited",),
            forward_v6=(f"{_SMTP_OUT} -j REJECT --reject-with icmp6-adm-prohibited",),
        ),
        Scenario(
            "dropped-v4",
            "port 25 dropped on IPv4 only; IPv6 open",
            forward_v4=(f"{_SMTP_OUT} -j DROP",),
        ),
        _redirected(
            "isp-relay",
            "all port-25 traffic redirected to the ISP's own relay (no STARTTLS)",
            ISP_RELAY_PORT,
        ),
        _redirected(
            "asa",
            "inline ASA-style proxy: greeting masked, STARTTLS replaced by XXXXXXXA",
            ASA_PROXY_PORT,
        ),
        Scenario(
            "blocklisted",
            "receivers greet this client with 554 (blocked using zen.spamhaus.org) on 25",
            blocklisted=True,
        ),
        Scenario(
            "rate-limited",
            "receivers' Postfix answers this client 421 4.7.0 too many connections on 25",
            rate_limited=True,
        ),
        Scenario(
            "slow-25",
            f"port 25 of {SLOW_PROVIDER.key} only: ~300 ms round trip; everything else fast",
            forward_v4=_slow_25(4),
            forward_v6=_slow_25(6),
        ),
        Scenario(
            "no-ipv6", "nothing blocked, but the client has no IPv6 route", client_ipv6_route=False
        ),
        Scenario(
            "dropped-no-ipv6",
            "port 25 dropped, and the client has no IPv6 route",
            forward_v4=(f"{_SMTP_OUT} -j DROP",),
            client_ipv6_route=False,
        ),
        Scenario("offline", "the router forwards nothing at all", forward_policy="DROP"),
        Scenario("link-down", "the client's uplink is down (no route)", client_link_down=True),
        _both_families(
            "latency",
            "80 ms round trip (40 ms each way) and 1% loss each way, on everything",
            f"-j NFQUEUE --queue-num {PATH_DELAY_QUEUE}",
        ),
    )
}
