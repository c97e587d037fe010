"""Names to plans, against a real DNS server on loopback (tests/dns_server.py).

No test here resolves a public name or uses the system resolver: every build_plan call
passes ``nameservers=[server.address]`` (or needs no DNS at all).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from portprobe.model import DNSQuery, Plan, ProbeSpec
from portprobe.targets.catalog import Catalog, load_catalog, parse_catalog
from portprobe.targets.names import InputError, format_nameserver, parse_nameserver, parse_target
from portprobe.targets.resolve import PlanInput, build_plan
from tests.dns_server import DNSServer, SilentDNSServer

ALL = (25, 465, 587, 2525)


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DNSServer]:
    with DNSServer() as server:
        yield server


def queries(plan: Plan) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(q.name, q.rdtype, q.outcome, q.answers) for q in plan.dns]


def rows(specs: tuple[ProbeSpec, ...]) -> list[tuple[str, str | None, str | None, int]]:
    return [(s.host, s.address, s.family, s.port) for s in specs]


def query(plan: Plan, name: str, rdtype: str) -> DNSQuery:
    return next(q for q in plan.dns if (q.name, q.rdtype) == (name, rdtype))


# -- parse_target / parse_nameserver ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mx.example.net", ("mx.example.net", None)),
        ("  MX.Example.NET.  ", ("mx.example.net", None)),
        ("localhost", ("localhost", None)),
        ("xn--bcher-kva.example", ("xn--bcher-kva.example", None)),
        ("bücher.example", ("xn--bcher-kva.example", None)),
        ("192.0.2.1", ("192.0.2.1", "192.0.2.1")),
        ("2001:db8::1", ("2001:db8::1", "2001:db8::1")),
        ("[2001:DB8:0::1]", ("2001:db8::1", "2001:db8::1")),
        ("::1", ("::1", "::1")),
    ],
)
def test_parse_target_accepts(text: str, expected: tuple[str, str | None]) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("mx.example.net:25", "a port is not part of the name"),
        ("smtp://mx.example.net", "not a URL"),
        ("user@example.net", "not a URL"),
        ("mx example.net", "white space"),
        ("-mx.example.net", "label '-mx'"),
        ("mx_1.example.net", "label 'mx_1'"),
        ("a..b", "empty label"),
        ("a" * 64 + ".example", "at most 63"),
        (("a" * 60 + ".") * 5 + "net", "longer than 253"),
        ("192.0.2.1.5", "neither a valid IP address nor a host name"),
        ("192.0.2", "neither a valid IP address nor a host name"),
        ("[192.0.2.1]", "brackets hold an IPv6 address only"),
        ("[2001:db8::1", "brackets"),
        ("2001:db8::zz", "not a valid IPv6 address"),
        ("mx.example.net\x1b[31m", "label"),
    ],
)
def test_parse_target_rejects(text: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_target(text)
    message = str(caught.value)
    assert problem in message
    assert "\n" not in message and "\x1b" not in message  # one line, shown safely


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
        ("::1", ("::1", 53)),
        (" 127.0.0.1:65535 ", ("127.0.0.1", 65535)),
    ],
)
def test_parse_nameserver_accepts(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected
    assert parse_nameserver(format_nameserver(*expected)) == expected  # round trip


@pytest.mark.parametrize(
    "text",
    [
        "",
        "dns.example.net",
        "dns.example.net:53",
        "192.0.2.53:0",
        "192.0.2.53:65536",
        "192.0.2.53:dns",
        "192.0.2.53:",
        "[2001:db8::53]53",
        "[2001:db8::53",
        "[192.0.2.53]:53",
        "2001:db8::53:5353x",
        "192.0.2.1.5",
    ],
)
def test_parse_nameserver_rejects(text: str) -> None:
    with pytest.raises(InputError, match="nameserver"):
        parse_nameserver(text)


# -- --domain ------------------------------------------------------------------------------


async def test_domain_mx_sorted_by_preference_then_name(dns_server: DNSServer) -> None:
    plan = await build_plan(PlanInput(domains=["good.test"], nameservers=[dns_server.address]))
    server = format_nameserver(*dns_server.address)
    assert queries(plan) == [
        ("good.test", "MX", "ok", ("10 mx1.good.test.", "20 mx0.good.test.", "20 mx2.good.test.")),
        ("mx1.good.test", "A", "ok", ("192.0.2.10",)),
        ("mx1.good.test", "AAAA", "ok", ("2001:db8::10",)),
        ("mx0.good.test", "A", "nodata", ()),
        ("mx0.good.test", "AAAA", "ok", ("2001:db8::30",)),
        ("mx2.good.test", "A", "ok", ("192.0.2.20",)),
        ("mx2.good.test", "AAAA", "nodata", ()),
    ]
    assert all(q.nameserver == server for q in plan.dns)
    assert all(q.elapsed_ms is not None and q.elapsed_ms >= 0 for q in plan.dns)
    expected = [
        ("mx1.good.test", "192.0.2.10", "ipv4"),
        ("mx1.good.test", "2001:db8::10", "ipv6"),
        ("mx0.good.test", "2001:db8::30", "ipv6"),
        ("mx2.good.test", "192.0.2.20", "ipv4"),
    ]
    assert rows(plan.specs) == [(h, a, f, p) for h, a, f in expected for p in ALL]
    assert {(s.target, s.provider, s.negative, s.expect) for s in plan.specs} == {
        ("good.test", "good.test", False, None)
    }
    assert all(s.connect_port is None and s.dial_port == s.port for s in plan.specs)
    assert plan.unresolved == () and plan.notes == ()


async def test_null_mx_is_recorded_and_nothing_probed(dns_server: DNSServer) -> None:
    plan = await build_plan(PlanInput(domains=["nullmx.test"], nameservers=[dns_server.address]))
    assert queries(plan) == [("nullmx.test", "MX", "null-mx", ("0 .",))]
    assert "RFC 7505" in (plan.dns[0].message or "")
    assert plan.specs == () and plan.unresolved == ()
    assert plan.notes == (
        "nullmx.test: null MX (RFC 7505): the domain accepts no mail; not probed",
    )


async def test_no_mx_falls_back_to_the_domains_addresses(dns_server: DNSServer) -> None:
    plan = await build_plan(
        PlanInput(domains=["nomx.test"], ports=[25], nameservers=[dns_server.address])
    )
    assert queries(plan) == [
        ("nomx.test", "MX", "nodata", ()),
        ("nomx.test", "A", "ok", ("198.51.100.5",)),
        ("nomx.test", "AAAA", "ok", ("2001:db8::5",)),
    ]
    assert rows(plan.specs) == [
        ("nomx.test", "198.51.100.5", "ipv4", 25),
        ("nomx.test", "2001:db8::5", "ipv6", 25),
    ]
    assert any("RFC 5321 §5.1" in note for note in plan.notes)


@pytest.mark.parametrize(
    ("domain", "outcome"),
    [("nowhere.test", "nxdomain"), ("servfail.test", "servfail")],
)
async def test_failed_mx_lookup_gives_unresolved_specs(
    dns_server: DNSServer, domain: str, outcome: str
) -> None:
    plan = await build_plan(
        PlanInput(domains=[domain], ports=[25, 587], nameservers=[dns_server.address])
    )
    assert queries(plan) == [(domain, "MX", outcome, ())]  # no address lookups after it
    assert plan.specs == ()
    assert rows(plan.unresolved) == [(domain, None, None, 25), (domain, None, None, 587)]
    assert {(s.target, s.provider) for s in plan.unresolved} == {(domain, domain)}
    assert plan.notes == (f"{domain}: MX lookup failed ({outcome}); reported as dns-error",)


async def test_domain_that_exists_without_mx_or_address(dns_server: DNSServer) -> None:
    plan = await build_plan(
        PlanInput(domains=["empty.test"], ports=[25], nameservers=[dns_server.address])
    )
    assert [q.outcome for q in plan.dns] == ["nodata", "nodata", "nodata"]
    assert plan.specs == ()
    assert rows(plan.unresolved) == [("empty.test", None, None, 25)]


async def test_mx_hosts_that_do_not_resolve(dns_server: DNSServer) -> None:
    plan = await build_plan(
        PlanInput(domains=["mxbroken.test"], ports=[25], nameservers=[dns_server.address])
    )
    outcomes = {(q.name, q.rdtype): q.outcome for q in plan.dns}
    assert outcomes == {
        ("mxbroken.test", "MX"): "ok",
        ("missing.test", "A"): "nxdomain",
        ("missing.test", "AAAA"): "nxdomain",
        ("broken.test", "A"): "servfail",
        ("broken.test", "AAAA"): "servfail",
        ("mx1.good.test", "A"): "ok",
        ("mx1.good.test", "AAAA"): "ok",
    }
    assert rows(plan.unresolved) == [
        ("missing.test", None, None, 25),
        ("broken.test", None, None, 25),
    ]
    assert rows(plan.specs) == [
        ("mx1.good.test", "192.0.2.10", "ipv4", 25),
        ("mx1.good.test", "2001:db8::10", "ipv6", 25),
    ]


async def test_max_mx_limits_hosts_and_says_so(dns_server: DNSServer) -> None:
    plan = await build_plan(
        PlanInput(
            domains=["manymx.test"],
            ports=[25],
            families=["ipv4"],
            max_mx=2,
            nameservers=[dns_server.address],
        )
    )
    assert [s.host for s in plan.specs] == ["m1.manymx.test", "m2.manymx.test"]
    assert [q.name for q in plan.dns] == ["manymx.test", "m1.manymx.test", "m2.manymx.test"]
    assert plan.notes == (
        "manymx.test: probing 2 of 4 MX hosts (lowest preference first; limit max_mx)",
    )


async def test_mx_pointing_at_a_cname_chain(dns_server: DNSServer) -> None:
    plan = await build_plan(
        PlanInput(domains=["mxchain.test"], ports=[25], nameservers=[dns_server.address])
    )
    assert rows(plan.specs) == [
        ("chain.test", "203.0.113.7", "ipv4", 25),
        ("chain.test", "2001:db8::7", "ipv6", 25),
    ]


# -- --target ------------------------------------------------------------------------------


async def test_cname_chain_is_followed_and_noted(dns_server: DNSServer) -> None:
    plan = await build_plan(
        PlanInput(targets=["chain.test"], ports=[587], nameservers=[dns_server.address])
    )
    assert queries(plan) == [
        ("chain.test", "A", "ok", ("203.0.113.7",)),
        ("chain.test", "AAAA", "ok", ("2001:db8::7",)),
    ]
    assert all(q.message == "via CNAME to chain2.test." for q in plan.dns)
    assert [(s.target, s.provider, s.host) for s in plan.specs] == [("chain.test",) * 3] * 2


async def test_dangling_cname_is_nxdomain(dns_server: DNSServer) -> None:
    plan = await build_plan(
        PlanInput(targets=["dangling.test"], ports=[25], nameservers=[dns_server.address])
    )
    assert [q.outcome for q in plan.dns] == ["nxdomain", "nxdomain"]
    assert rows(plan.unresolved) == [("dangling.test", None, None, 25)]


async def test_truncated_udp_answer_is_retried_over_tcp(dns_server: DNSServer) -> None:
    plan = await build_plan(
        PlanInput(
            targets=["big.test"], ports=[25], families=["ipv4"], nameservers=[dns_server.address]
        )
    )
    assert query(plan, "big.test", "A").outcome == "ok"
    assert rows(plan.specs) == [
        ("big.test", "198.18.0.1", "ipv4", 25),
        ("big.test", "198.18.0.2", "ipv4", 25),
    ]
    assert ("big.test.", "A", "udp") in dns_server.queries
    assert ("big.test.", "A", "tcp") in dns_server.queries


async def test_max_addresses_keeps_the_lowest(dns_server: DNSServer) -> None:
    plan = await build_plan(
        PlanInput(
            targets=["many.test"],
            ports=[25],
            families=["ipv4"],
            max_addresses=2,
            nameservers=[dns_server.address],
        )
    )
    assert [s.address for s in plan.specs] == ["192.0.2.1", "192.0.2.2"]
    assert len(query(plan, "many.test", "A").answers) == 6  # the evidence keeps them all
    assert plan.notes == (
        "many.test: probing 2 of 6 A addresses (the lowest; limit max_addresses)",
    )


async def test_family_filter_queries_only_that_family(dns_server: DNSServer) -> None:
    plan = await build_plan(
        PlanInput(
            targets=["v4only.test", "v6only.test"],
            ports=[25],
            families=["ipv6"],
            nameservers=[dns_server.address],
        )
    )
    assert queries(plan) == [
        ("v4only.test", "AAAA", "nodata", ()),
        ("v6only.test", "AAAA", "ok", ("2001:db8::66",)),
    ]
    assert rows(plan.specs) == [("v6only.test", "2001:db8::66", "ipv6", 25)]
    # No address in the asked family: reported, not silently dropped.
    assert rows(plan.unresolved) == [("v4only.test", None, None, 25)]


async def test_ip_literals_need_no_dns_and_obey_the_family_filter() -> None:
    plan = await build_plan(
        PlanInput(
            targets=["192.0.2.7", "[2001:db8::7]", "2001:DB8::7"],
            ports=[25, 465],
            families=["ipv4"],
            nameservers=[("127.0.0.1", 9)],
        )
    )
    assert plan.dns == ()
    assert rows(plan.specs) == [
        ("192.0.2.7", "192.0.2.7", "ipv4", 25),
        ("192.0.2.7", "192.0.2.7", "ipv4", 465),
    ]
    assert plan.specs[0].provider == "192.0.2.7"
    assert plan.notes == ("2001:db8::7: an ipv6 address, skipped by the address-family filter",)
    both = await build_plan(
        PlanInput(targets=["[2001:db8::7]"], ports=[25], nameservers=[("127.0.0.1", 9)])
    )
    assert rows(both.specs) == [("2001:db8::7", "2001:db8::7", "ipv6", 25)]


async def test_port_map_sets_the_dialled_port() -> None:
    plan = await build_plan(
        PlanInput(
            targets=["127.0.0.1"],
            ports=[25, 587],
            port_map={25: 20025},
            nameservers=[("127.0.0.1", 9)],
        )
    )
    assert [(s.port, s.connect_port, s.dial_port, s.mode) for s in plan.specs] == [
        (25, 20025, 20025, "starttls"),
        (587, None, 587, "starttls"),
    ]


async def test_specs_are_deduplicated_first_one_wins(dns_server: DNSServer) -> None:
    plan = await build_plan(
        PlanInput(
            domains=["good.test", "GOOD.test."],
            targets=["mx1.good.test"],
            ports=[25],
            nameservers=[dns_server.address],
        )
    )
    assert len(plan.specs) == 4
    assert {s.target for s in plan.specs} == {"good.test"}
    assert [q.name for q in plan.dns].count("good.test") == 1  # each lookup made once


# -- failures of DNS itself ------------------------------------------------------------------


async def test_silent_nameserver_is_a_timeout_not_a_hang() -> None:
    """Real sockets, real time: the outcome is the point here, the bound is pinned below."""
    with SilentDNSServer() as silent:
        plan = await build_plan(
            PlanInput(
                domains=["good.test"], ports=[25], nameservers=[silent.address], dns_timeout=0.5
            )
        )
    assert queries(plan) == [("good.test", "MX", "timeout", ())]
    assert plan.dns[0].message == "no answer within 0.5 s"
    assert plan.dns[0].nameserver == format_nameserver(*silent.address)
    assert rows(plan.unresolved) == [("good.test", None, None, 25)]
    assert silent.queries >= 1


class _HangingResolver:
    """Stands in for dnspython's resolver: never answers, ignores its own lifetime."""

    async def resolve(self, *args: object, **kwargs: object) -> None:
        await trio.sleep_forever()


async def test_a_lookup_is_bounded_even_when_dnspython_hangs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The trio backstop: dns_timeout plus a fixed grace, on the mock clock (no sockets)."""
    from portprobe.probe.dnsclient import BACKSTOP_GRACE, DnsClient

    client = DnsClient([("127.0.0.1", 9)], 2.0, "/nonexistent")
    client.configure()
    client.resolver = _HangingResolver()  # type: ignore[assignment]
    started = trio.current_time()
    result = await client.query("good.test", "MX")
    assert trio.current_time() - started == pytest.approx(2.0 + BACKSTOP_GRACE)
    assert result.outcome == "timeout"
    assert result.message == "no answer within 2 s"
    assert result.elapsed_ms == pytest.approx((2.0 + BACKSTOP_GRACE) * 1000)


async def test_second_nameserver_answers_when_the_first_is_silent(dns_server: DNSServer) -> None:
    with SilentDNSServer() as silent:
        plan = await build_plan(
            PlanInput(
                targets=["v4only.test"],
                ports=[25],
                families=["ipv4"],
                nameservers=[silent.address, dns_server.address],
                dns_timeout=3.0,
            )
        )
    assert queries(plan) == [("v4only.test", "A", "ok", ("192.0.2.44",))]
    assert plan.dns[0].nameserver == format_nameserver(*dns_server.address)


async def test_missing_resolv_conf_is_evidence_not_a_crash(tmp_path: Path) -> None:
    plan = await build_plan(
        PlanInput(domains=["good.test"], ports=[25], resolv_conf=str(tmp_path / "resolv.conf"))
    )
    assert queries(plan) == [("good.test", "MX", "error", ())]
    assert "no usable system resolver configuration" in (plan.dns[0].message or "")
    assert rows(plan.unresolved) == [("good.test", None, None, 25)]


# -- the catalog -----------------------------------------------------------------------------

USER_CATALOG = """
[limits]
max_mx = 1
max_addresses = 1

[[provider]]
name = "alpha"
[[provider.host]]
domain = "good.test"
ports = [25]
source = "test"
expect = { starttls = true }

[[provider]]
name = "beta"
[[provider.host]]
host = "many.test"
role = "relay"
ports = [25, 587, 2525]
negative_ports = [465]
source = "test"
expect = { greeting_pattern = '^beta ', cert_name = "many.test" }
[[provider.host]]
host = "192.0.2.99"
role = "submission"
ports = [587]
source = "test"
"""


async def test_catalog_plan(dns_server: DNSServer) -> None:
    catalog = parse_catalog(USER_CATALOG, "user.toml")
    plan = await build_plan(
        PlanInput(
            catalog=catalog, ports=[25, 465], families=["ipv4"], nameservers=[dns_server.address]
        )
    )
    assert [(s.target, s.provider, s.host, s.address, s.port, s.negative) for s in plan.specs] == [
        ("alpha", "alpha", "mx1.good.test", "192.0.2.10", 25, False),
        ("beta", "beta", "many.test", "192.0.2.1", 25, False),
        ("beta", "beta", "many.test", "192.0.2.1", 465, True),
    ]
    assert plan.specs[0].expect is not None and plan.specs[0].expect.starttls is True
    assert plan.specs[1].expect is not None and plan.specs[1].expect.cert_name == "many.test"
    # The catalog's [limits] (1 MX, 1 address) cap the larger defaults.
    assert {n.split(":")[0] for n in plan.notes} == {"good.test", "many.test"}
    # 192.0.2.99 documents only 587, which was not asked for: not even looked at.
    assert all(s.host != "192.0.2.99" for s in plan.specs)


async def test_domains_or_targets_replace_the_catalog(dns_server: DNSServer) -> None:
    catalog = parse_catalog(USER_CATALOG, "user.toml")
    plan = await build_plan(
        PlanInput(
            targets=["v4only.test"],
            catalog=catalog,
            ports=[25],
            families=["ipv4"],
            nameservers=[dns_server.address],
        )
    )
    assert [s.provider for s in plan.specs] == ["v4only.test"]


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"targets": ["bad_name.test"]}, "invalid target"),
        ({"domains": ["192.0.2.1"]}, "use --target for an address"),
        ({"domains": ["a..b"]}, "invalid domain"),
        ({"targets": ["192.0.2.1"], "ports": [26]}, "port 26 is not one of 25, 465, 587, 2525"),
        ({"targets": ["192.0.2.1"], "ports": []}, "no port"),
        ({"targets": ["192.0.2.1"], "families": []}, "no address family"),
        ({"targets": ["192.0.2.1"], "dns_timeout": 0}, "DNS timeout"),
    ],
)
async def test_bad_input_raises_input_error_before_any_lookup(
    kwargs: dict[str, object], problem: str
) -> None:
    with pytest.raises(InputError, match=problem):
        await build_plan(PlanInput(nameservers=[("127.0.0.1", 9)], **kwargs))  # type: ignore[arg-type]


def builtin_catalog_zone(catalog: Catalog) -> str:
    """A root zone giving every built-in catalog name three MX hosts or three A and two
    AAAA records (benchmark addresses, RFC 2544), so the shipped catalog can be planned
    against loopback DNS alone."""
    lines = [
        "$ORIGIN .",
        "$TTL 60",
        "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60",
        "@ NS ns.test.",
    ]
    counter = 0

    def addresses(name: str) -> None:
        nonlocal counter
        for _ in range(3):
            counter += 1
            lines.append(f"{name}. A 198.18.{counter // 250}.{counter % 250 + 1}")
        lines.append(f"{name}. AAAA 2001:db8::{counter:x}")
        lines.append(f"{name}. AAAA 2001:db8::1:{counter:x}")

    for _, host in catalog.hosts:
        if host.mail_domain:
            for preference in (10, 20, 30):
                exchange = f"mx{preference}.{host.name}"
                lines.append(f"{host.name}. MX {preference} {exchange}.")
                addresses(exchange)
        else:
            addresses(host.name)
    return "\n".join(lines) + "\n"


async def test_builtin_catalog_plan_against_loopback_dns() -> None:
    catalog = load_catalog()
    with DNSServer(builtin_catalog_zone(catalog), origin=".", servfail=(), truncate=()) as server:
        plan = await build_plan(PlanInput(catalog=catalog, nameservers=[server.address]))
    assert plan.unresolved == ()
    assert all(q.outcome == "ok" for q in plan.dns)
    assert {s.provider for s in plan.specs} == {p.name for p in catalog.providers}
    assert all(s.target == s.provider for s in plan.specs)
    # The catalog's limits: 2 MX hosts per domain, 2 addresses per host and family.
    gmail_hosts = {s.host for s in plan.specs if s.provider == "google" and s.port == 25}
    assert gmail_hosts == {"mx10.gmail.com", "mx20.gmail.com"}
    per_host_family = Counter((s.host, s.family, s.port) for s in plan.specs)
    assert set(per_host_family.values()) == {2}
    expected = sum(
        (len(h.ports) + len(h.negative_ports)) * 2 * 2 * (2 if h.mail_domain else 1)
        for _, h in catalog.hosts
    )
    assert len(plan.specs) == expected
    assert 60 <= len(plan.specs) <= 150
    assert [s.port for s in plan.specs if s.negative] and all(
        s.port not in next(h for _, h in catalog.hosts if h.name == s.host).ports
        for s in plan.specs
        if s.negative
    )


async def test_localhost_is_loopback_without_dns() -> None:
    with SilentDNSServer() as silent:
        plan = await build_plan(
            PlanInput(
                targets=["localhost", "smtp.localhost"], ports=[25], nameservers=[silent.address]
            )
        )
    assert silent.queries == 0
    assert rows(plan.specs) == [
        ("localhost", "127.0.0.1", "ipv4", 25),
        ("localhost", "::1", "ipv6", 25),
        ("smtp.localhost", "127.0.0.1", "ipv4", 25),
        ("smtp.localhost", "::1", "ipv6", 25),
    ]
    assert {q.outcome for q in plan.dns} == {"ok"}


def test_dns_server_serves_other_processes(dns_server: DNSServer) -> None:
    """CLI tests run portprobe in a subprocess with ``--nameserver server.spec``."""
    code = (
        "import sys, dns.message, dns.query\n"
        "ip, port = sys.argv[1], int(sys.argv[2])\n"
        "q = dns.message.make_query('v4only.test', 'A')\n"
        "for send in (dns.query.udp, dns.query.tcp):\n"
        "    print(send(q, ip, port=port, timeout=5).answer[0][0].address)\n"
    )
    ip, port = dns_server.address
    result = subprocess.run(
        [sys.executable, "-c", code, ip, str(port)], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["192.0.2.44", "192.0.2.44"]
    assert parse_nameserver(dns_server.spec) == dns_server.address
