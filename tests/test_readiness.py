"""Mail readiness, pure parts: generic names, DNSBL decoding, iprev, echoes, settings,
and the assessment; plus ``ReadinessCheck`` over a fake DNS seam (what it asks, and
that it asks nothing it should not)."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from portprobe.errors import CatalogError, InputError
from portprobe.model import DnsAnswer, ProbeResult, ProbeSpec, Reply
from portprobe.readiness.assess import assess, check_ehlo_name, decide_iprev
from portprobe.readiness.check import ReadinessCheck
from portprobe.readiness.dnsbl import decode, query_name
from portprobe.readiness.model import DnsblCheck, GenericNameCheck, PtrCheck
from portprobe.readiness.names import echoed_address, echoed_in, generic_name
from portprobe.readiness.settings import (
    DnsblZone,
    ReadinessSettings,
    WhoamiMethod,
    load_readiness_settings,
    parse_dnsbl_zone,
    parse_public_ip,
    parse_readiness_sections,
)
from portprobe.targets.catalog import parse_catalog

# --- generic names ---------------------------------------------------------------------

# The addresses below are only text that a host name is compared with (generic_name is
# pure): never dialled, never queried.
EC2_ADDRESS = "1.2.3.4"  # address-text
RR_ADDRESS = "24.210.34.53"  # address-text
KABEL_ADDRESS = "213.170.244.11"  # address-text
GENERIC_CASES = [
    # (name, address, generic, matched, rule)
    ("ec2-1-2-3-4.compute-1.amazonaws.com", EC2_ADDRESS, True, "1-2-3-4", "address-in-name"),
    ("ec2-1-2-3-4.compute-1.amazonaws.com", None, True, "1-2-3-4", "address-in-name"),
    ("c-67-168-174-61.hsd1.wa.comcast.net", None, True, "67-168-174-61", "address-in-name"),
    ("dhcp024-210-034-053.columbus.rr.com", RR_ADDRESS, True, "024-210-034-053", None),
    ("4.3.2.1.in.example.org", EC2_ADDRESS, True, "4.3.2.1", "address-in-name"),  # address-text
    ("host024210034053.example.net", RR_ADDRESS, True, "024210034053", None),
    ("0xd5aaf40b.dhcp.kabelnettet.dk", None, True, "0xd5aaf40b", "hex-address-in-name"),
    ("d5aaf40b.cust.example.dk", KABEL_ADDRESS, True, "d5aaf40b", "hex-address-in-name"),
    ("dyn-77.pool.example.net", None, True, "dyn", "dynamic-label"),
    ("adsl.customers.example.net", None, True, "adsl", "dynamic-label"),
    ("ppp12.example.net", None, True, "ppp12", "dynamic-label"),
    ("mail.example.com", EC2_ADDRESS, False, None, None),
    ("mx1.mail.example.org", EC2_ADDRESS, False, None, None),
    ("host.example.org", None, False, None, None),  # "host" alone says nothing
    ("static-1-2-3-4.example.net", EC2_ADDRESS, False, "static", "static-exempt"),
    ("1-2-3-4.fixip.pool.example.net", EC2_ADDRESS, False, "fixip", "static-exempt"),
    ("prefix.pool.example.com", None, True, "pool", "dynamic-label"),  # "prefix" != fix
]


@pytest.mark.parametrize(("name", "address", "generic", "matched", "rule"), GENERIC_CASES)
def test_generic_names(
    name: str, address: str | None, generic: bool, matched: str | None, rule: str | None
) -> None:
    check = generic_name(name, address)
    assert check.generic is generic
    assert check.matched == matched
    if rule is not None:
        assert check.rule == rule


# --- DNSBL decoding --------------------------------------------------------------------

ZEN = load_readiness_settings(None, dns_timeout=1).dnsbl[0]
OK_TESTS = {
    "test_listed": DnsAnswer("ok", ("127.0.0.2",)),
    "test_clean": DnsAnswer("nxdomain"),
}


def test_query_names_follow_rfc_5782() -> None:
    assert query_name("192.0.2.99", "zen.spamhaus.org") == "99.2.0.192.zen.spamhaus.org"
    v6 = query_name("2001:db8:1:2::1", "bl.test")
    assert v6.startswith("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.")
    assert v6.endswith(".bl.test")


@pytest.mark.parametrize(
    ("answers", "status", "meaning_or_reason"),
    [
        (("127.0.0.2",), "listed", "SBL"),
        (("127.0.0.3",), "listed", "CSS"),
        (("127.0.0.4",), "listed", "XBL"),
        (("127.0.0.9",), "listed", "DROP"),
        (("127.0.0.10",), "listed", "PBL"),
        (("127.0.0.11",), "listed", "PBL"),
        (("127.0.0.30",), "listed", "BCL"),
        (("127.0.0.4", "127.0.0.11"), "listed", "XBL"),
        (("127.255.255.252",), "unknown", "typing error"),
        (("127.255.255.254",), "unknown", "your resolver is a public one"),
        (("127.255.255.255",), "unknown", "excessive"),
        (("127.0.0.77",), "unknown", "does not document"),
        (("127.0.0.10", "127.255.255.254"), "unknown", "public one"),
        (("not-an-address\x1b[31m",), "unknown", "does not document"),
    ],
)
def test_spamhaus_answers_are_decoded_from_the_table(
    answers: tuple[str, ...], status: str, meaning_or_reason: str
) -> None:
    check = decode(ZEN, "198.51.100.7", DnsAnswer("ok", answers), **OK_TESTS)
    assert check.status == status
    if status == "listed":
        assert any(meaning_or_reason in m for m in check.meanings)
    else:
        assert check.reason is not None and meaning_or_reason in check.reason
        assert "\x1b" not in check.reason and "\x1b" not in "".join(check.answers)


def test_not_listed_and_failures() -> None:
    clean = decode(ZEN, "198.51.100.7", DnsAnswer("nxdomain"), **OK_TESTS)
    assert clean.status == "not-listed"
    slow = decode(ZEN, "198.51.100.7", DnsAnswer("timeout", message="no answer within 1 s"))
    assert slow.status == "unknown" and "no answer" in (slow.reason or "")


def test_a_zone_that_lists_its_clean_test_entry_lies() -> None:
    """SpamCop 2021: the lapsed domain answered for every address."""
    check = decode(
        ZEN,
        "198.51.100.7",
        DnsAnswer("ok", ("127.0.0.2",)),
        test_listed=DnsAnswer("ok", ("127.0.0.2",)),
        test_clean=DnsAnswer("ok", ("127.0.0.2",)),
    )
    assert check.status == "unknown"
    assert "clean test entry 127.0.0.1" in (check.reason or "")


def test_a_zone_that_does_not_list_its_test_entry_is_not_trusted() -> None:
    check = decode(
        ZEN,
        "198.51.100.7",
        DnsAnswer("nxdomain"),
        test_listed=DnsAnswer("nxdomain"),
        test_clean=DnsAnswer("nxdomain"),
    )
    assert check.status == "unknown" and "test entry 127.0.0.2" in (check.reason or "")


def test_a_bare_zone_reads_loopback_answers_as_listings() -> None:
    bare = DnsblZone("bl.example.net")
    assert decode(bare, "198.51.100.7", DnsAnswer("ok", ("127.0.0.5",))).status == "listed"
    outside = decode(bare, "198.51.100.7", DnsAnswer("ok", ("10.0.0.1",)))
    assert outside.status == "unknown" and "outside 127.0.0.0/8" in (outside.reason or "")


# --- iprev -----------------------------------------------------------------------------

ADDR = "198.51.100.7"


@pytest.mark.parametrize(
    ("ptr", "forwards", "iprev"),
    [
        (
            DnsAnswer("ok", ("mail.good.test",)),
            {"mail.good.test": DnsAnswer("ok", (ADDR,))},
            "pass",
        ),
        (DnsAnswer("nxdomain"), {}, "permerror"),
        (DnsAnswer("nodata"), {}, "permerror"),
        (DnsAnswer("servfail"), {}, "temperror"),
        (DnsAnswer("timeout"), {}, "temperror"),
        (
            DnsAnswer("ok", ("mail.bad.test",)),
            {"mail.bad.test": DnsAnswer("ok", ("198.51.100.8",))},
            "fail",
        ),
        (DnsAnswer("ok", ("gone.test",)), {"gone.test": DnsAnswer("nxdomain")}, "fail"),
        (DnsAnswer("ok", ("slow.test",)), {"slow.test": DnsAnswer("timeout")}, "temperror"),
        (
            DnsAnswer("ok", ("a.test", "b.test")),
            {"a.test": DnsAnswer("nxdomain"), "b.test": DnsAnswer("ok", (ADDR,))},
            "pass",
        ),
    ],
)
def test_iprev_words(ptr: DnsAnswer, forwards: dict[str, DnsAnswer], iprev: str) -> None:
    assert decide_iprev(ADDR, ptr, forwards).iprev == iprev


def test_iprev_checks_only_the_first_few_of_fifty_names() -> None:
    names = tuple(f"n{i}.many.test" for i in range(50))
    forwards = {n: DnsAnswer("nxdomain") for n in names}
    forwards["n49.many.test"] = DnsAnswer("ok", (ADDR,))  # never reached
    check = decide_iprev(ADDR, DnsAnswer("ok", names, truncated=True), forwards)
    assert check.iprev == "fail"
    assert len(check.names) == 4 and "checked the first 4" in (check.message or "")


# --- EHLO echoes and the EHLO name -----------------------------------------------------


def _probe(greeting: str = "mx.test ESMTP", ehlo_hello: str | None = None) -> ProbeResult:
    spec = ProbeSpec("t", "mx.test", "192.0.2.1", "ipv4", 25)
    return ProbeResult(spec, "open", Reply(220, (greeting,)), ehlo_hello=ehlo_hello)


@pytest.mark.parametrize(
    ("greeting", "hello", "expected"),
    [
        ("mx.test ESMTP", "mx.google.com at your service, [203.0.113.5]", ("ipv4", "203.0.113.5")),
        ("mx.test ESMTP", "mail.test Hello client.test [203.0.113.6]", ("ipv4", "203.0.113.6")),
        ("mx.test ESMTP", "outlook.test Hello [2001:db8::5]", ("ipv6", "2001:db8::5")),
        ("mx.test ESMTP", "mx.test Hello [IPv6:2001:db8::6]", ("ipv6", "2001:db8::6")),
        ("mx.test ESMTP ready [203.0.113.9]", None, ("ipv4", "203.0.113.9")),
        ("mx.test ESMTP", "mx.test Hello [999.1.1.1]", None),
        ("mx.test ESMTP", "mx.test Hello [not an address]", None),
        ("mx.test ESMTP", None, None),
    ],
)
def test_echoed_address(greeting: str, hello: str | None, expected: object) -> None:
    assert echoed_address(_probe(greeting, hello)) == expected


def test_ehlo_name_check() -> None:
    good = check_ehlo_name("mail.good.test", [DnsAnswer("ok", (ADDR,))], [ADDR], ["mail.good.test"])
    assert good.resolves_to_public is True and good.matches_ptr is True
    other = check_ehlo_name(
        "other.test", [DnsAnswer("ok", ("192.0.2.50",))], [ADDR], ["mail.good.test"]
    )
    assert other.resolves_to_public is False and other.matches_ptr is False
    literal = check_ehlo_name(f"[{ADDR}]", [], [ADDR], [])
    assert literal.resolves_to_public is True


# --- the assessment --------------------------------------------------------------------

PASS = PtrCheck(ADDR, ("mail.good.test",), "pass", "mail.good.test")
CLEAN = GenericNameCheck("mail.good.test", False)
NOT_LISTED = DnsblCheck("zen.spamhaus.org", ADDR, "not-listed")
PBL = DnsblCheck(
    "zen.spamhaus.org", ADDR, "listed", ("127.0.0.11",), ("PBL (Spamhaus maintained): ...",)
)


def test_ready_yes_only_when_everything_passed() -> None:
    r = assess({"ipv4": (ADDR,)}, (), [PASS], [CLEAN], None, [NOT_LISTED], port25="open")
    assert r.ready == "yes"
    assert any("direct delivery can work" in a.text for a in r.advice)


def test_port_25_open_and_pbl_means_relay_through_a_smarthost() -> None:
    r = assess({"ipv4": (ADDR,)}, (), [PASS], [CLEAN], None, [PBL], port25="open")
    assert r.ready == "no"
    assert any("listed on zen.spamhaus.org" in x for x in r.reasons)
    assert any(
        "direct delivery will be refused; relay through a smarthost on 587" in a.text
        for a in r.advice
    )


def test_port_25_blocked_makes_readiness_moot_for_direct_delivery() -> None:
    r = assess({"ipv4": (ADDR,)}, (), [PASS], [CLEAN], None, [PBL], port25="blocked")
    assert any("moot for direct delivery" in a.text for a in r.advice)


def test_no_ptr_and_generic_names_are_no_and_unknowns_are_unknown() -> None:
    no_ptr = PtrCheck(ADDR, (), "permerror", message="no PTR")
    assert assess({"ipv4": (ADDR,)}, (), [no_ptr], [], None, [NOT_LISTED]).ready == "no"
    generic = GenericNameCheck("ec2-1-2-3-4.compute-1.amazonaws.com", True, "1-2-3-4", "x")
    r = assess({"ipv4": (ADDR,)}, (), [PASS], [generic], None, [NOT_LISTED])
    assert r.ready == "no" and any("'1-2-3-4'" in x for x in r.reasons)
    unknown = DnsblCheck("zen.spamhaus.org", ADDR, "unknown", reason="timeout")
    assert assess({"ipv4": (ADDR,)}, (), [PASS], [CLEAN], None, [unknown]).ready == "unknown"
    assert assess({}, (), [], [], None, []).ready == "unknown"


# --- settings and bad input -------------------------------------------------------------


def test_parse_public_ip_and_zone() -> None:
    assert parse_public_ip("198.51.100.7") == "198.51.100.7"
    assert parse_public_ip("[2001:DB8::1]") == "2001:db8::1"
    assert parse_dnsbl_zone("Bl.Example.NET.") == "bl.example.net"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("10.1.2.3", "a private address (RFC 1918)"),  # address-text
        ("192.168.0.10", "a private address (RFC 1918)"),  # address-text
        ("100.64.1.1", "a carrier-grade NAT address (RFC 6598)"),  # address-text
        ("127.0.0.1", "a loopback address"),
        ("fd00::25", "a unique local address (RFC 4193)"),
        ("::ffff:172.16.0.9", "a private address (RFC 1918)"),  # address-text
        ("fe80::1", "a link-local address"),
    ],
)
def test_a_private_public_ip_is_refused_and_never_sent_to_a_dnsbl(value: str, kind: str) -> None:
    with pytest.raises(InputError) as info:
        parse_public_ip(value)
    assert kind in str(info.value) and str(info.value).startswith("--public-ip ")


@pytest.mark.parametrize("value", ["198.51.100", "mail.example.com", "", "1.2.3.4\x1b[2J"])
def test_bad_public_ip_is_one_line_naming_it(value: str) -> None:
    with pytest.raises(InputError) as info:
        parse_public_ip(value)
    message = str(info.value)
    assert message.startswith("--public-ip ") and "\n" not in message and "\x1b" not in message


@pytest.mark.parametrize("value", ["localhost", "bad_zone.example", "-x.example", "a..b", "é.fr"])
def test_bad_dnsbl_zone_is_one_line_naming_it(value: str) -> None:
    with pytest.raises(InputError, match=r"^--dnsbl "):
        parse_dnsbl_zone(value)


def test_builtin_settings_and_extras() -> None:
    s = load_readiness_settings(
        None,
        extra_zones=["bl.example.net", "zen.spamhaus.org"],
        dns_timeout=2,
        public_ips=["198.51.100.7", "198.51.100.7"],
    )
    assert [m.server for m in s.whoami] == ["resolver1.opendns.com", "ns1.google.com"]
    assert [z.zone for z in s.dnsbl] == ["zen.spamhaus.org", "bl.example.net"]
    assert s.public_ips == ("198.51.100.7",)
    zen = s.dnsbl[0]
    assert zen.listed["127.0.0.10"].startswith("PBL") and "127.255.255.254" in zen.errors


def test_a_catalog_without_the_sections_gets_the_defaults(tmp_path: Path) -> None:
    own = tmp_path / "own.toml"
    own.write_text(
        '[[provider]]\nname = "x"\n[[provider.host]]\nhost = "mx.x.test"\n'
        'ports = [25]\nsource = "s"\n'
    )
    s = load_readiness_settings(own, dns_timeout=1)
    assert s.dnsbl[0].zone == "zen.spamhaus.org" and len(s.whoami) == 2


def test_a_catalog_with_its_own_sections_replaces_them_and_still_loads(tmp_path: Path) -> None:
    text = (
        '[[provider]]\nname = "x"\n[[provider.host]]\nhost = "mx.x.test"\nrole = "mx"\n'
        "ports = [25]\n"
        'source = "s"\n\n[[whoami]]\nstyle = "google"\nserver = "ns.whoami.test"\n'
        'query = "me.whoami.test"\nport = 5353\n\n[[dnsbl]]\nzone = "bl.test"\n'
        'test_listed = "127.0.0.2"\n[dnsbl.listed]\n"127.0.0.2" = "listed"\n'
    )
    own = tmp_path / "own.toml"
    own.write_text(text)
    s = load_readiness_settings(own, dns_timeout=1)
    assert s.whoami == (WhoamiMethod("google", "ns.whoami.test", "me.whoami.test", 5353),)
    assert [z.zone for z in s.dnsbl] == ["bl.test"]
    assert parse_catalog(text).providers[0].name == "x"  # the catalog loader accepts them
    # The catalog as loaded carries them: no second read of the file (it is gone now).
    loaded = parse_catalog(text, str(own))
    own.unlink()
    again = load_readiness_settings(own, catalog=loaded, dns_timeout=1)
    assert (again.whoami, again.dnsbl) == (s.whoami, s.dnsbl)


def test_a_bad_section_of_a_loaded_catalog_names_the_catalog_file() -> None:
    text = (
        '[[provider]]\nname = "x"\n[[provider.host]]\nhost = "mx.x.test"\nrole = "mx"\n'
        "ports = [25]\n"
        'source = "s"\n[[whoami]]\nstyle = "akamai"\nserver = "a.test"\nquery = "b.test"\n'
    )
    with pytest.raises(CatalogError, match=r"^own.toml: whoami #1: style 'akamai' is not one of"):
        load_readiness_settings(None, catalog=parse_catalog(text, "own.toml"), dns_timeout=1)


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ('[[dnsbl]]\nzone = "bl.test"\n[dnsbl.listed]\n"127.0.0.x" = "y"\n', "127.0.0.x"),
        ('[[dnsbl]]\nzone = "bl.test"\n[dnsbl.listed]\n"127.0.0.2" = ""\n', "127.0.0.2"),
        ('[[dnsbl]]\nzone = "bl.test"\nlisted = "127.0.0.2"\n', "listed must be a table"),
        (
            '[[dnsbl]]\nzone = "bl.test"\n[dnsbl.listed]\n"127.0.0.2" = "a"\n'
            '[dnsbl.errors]\n"127.0.0.2" = "b"\n',
            "both",
        ),
        ('[[dnsbl]]\nzone = "not a zone"\n', "not a zone"),
        ('[[dnsbl]]\nzone = "bl.test"\ncolour = 1\n', "colour"),
        ('[[dnsbl]]\nzone = "bl.test"\ntest_listed = "x"\n', "test_listed"),
        ('[[whoami]]\nstyle = "akamai"\nserver = "a.test"\nquery = "b.test"\n', "akamai"),
        ('[[whoami]]\nstyle = "google"\nserver = "a.test"\nquery = "b.test"\nport = 0\n', "port"),
    ],
)
def test_a_bad_section_is_one_catalog_error_line(section: str, needle: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_readiness_sections(section, "own.toml")
    message = str(info.value)
    assert message.startswith("own.toml: ") and needle in message and "\n" not in message


# --- ReadinessCheck over a fake seam ----------------------------------------------------


class FakeDns:
    """Answers from a table; records every query asked."""

    def __init__(self, table: dict[tuple[str, str], DnsAnswer]) -> None:
        self.table = table
        self.asked: list[tuple[str, str, tuple[str, int] | None]] = []

    async def query(
        self, name: str, rdtype: str, server: tuple[str, int] | None = None
    ) -> DnsAnswer:
        self.asked.append((name, rdtype, server))
        await trio.lowlevel.checkpoint()
        return self.table.get((name, rdtype), DnsAnswer("nxdomain"))


def _settings(**kw: object) -> ReadinessSettings:
    base = load_readiness_settings(None, dns_timeout=1, families=("ipv4",))
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


async def test_disabled_readiness_sends_nothing() -> None:
    fake = FakeDns({})
    check = ReadinessCheck(_settings(enabled=False), lookup=fake)
    done = trio.Event()
    done.set()
    await check.run(done)
    assert fake.asked == []


async def test_stated_addresses_skip_whoami_only() -> None:
    fake = FakeDns({})
    check = ReadinessCheck(_settings(public_ips=(ADDR,)), lookup=fake)
    done = trio.Event()
    done.set()
    await check.run(done)
    names = {name for name, _, _ in fake.asked}
    assert not {"resolver1.opendns.com", "ns1.google.com", "myip.opendns.com"} & names
    assert "7.100.51.198.in-addr.arpa" in names  # PTR still checked
    assert "7.100.51.198.zen.spamhaus.org" in names  # and the DNSBL
    r = check.result()
    assert r.ready == "no" and r.ptr[0].iprev == "permerror"
    assert r.sightings[0].method == "stated"


async def test_an_echo_is_folded_in_once_the_probes_are_done() -> None:
    fake = FakeDns({})
    check = ReadinessCheck(_settings(whoami=()), lookup=fake)
    check.observe(_probe(ehlo_hello="mx.test Hello [203.0.113.5]"))
    check.observe(_probe(ehlo_hello="mx.test Hello [10.1.2.3]"))  # NAT: noted, not checked
    done = trio.Event()
    done.set()
    await check.run(done)
    r = check.result()
    assert r.public_addresses == {"ipv4": ("203.0.113.5",)}
    assert any("private address" in x for x in r.reasons)


async def test_result_after_an_outside_cancel_is_unknown(autojump_clock: object) -> None:
    class Stuck(FakeDns):
        async def query(self, name: str, rdtype: str, server: object = None) -> DnsAnswer:
            await trio.sleep_forever()
            raise AssertionError

    check = ReadinessCheck(_settings(public_ips=(ADDR,)), lookup=Stuck({}))
    with trio.move_on_after(5):
        await check.run(trio.Event())
    r = check.result("open")
    assert r.ready == "unknown"
    assert r.dnsbl[0].status == "unknown" and r.dnsbl[0].reason == "not finished"


# --- layers and hostile text -------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        "portprobe.readiness.settings",
        "portprobe.readiness.names",
        "portprobe.readiness.dnsbl",
        "portprobe.readiness.assess",
    ],
)
def test_pure_readiness_modules_import_no_io(module: str) -> None:
    from tests.test_layers import FORBIDDEN, imported_by

    loaded = imported_by(module)
    bad = sorted(n for n in loaded if any(n == f or n.startswith(f + ".") for f in FORBIDDEN))
    assert not bad, f"{module} imports {bad}"


@given(st.text(max_size=300), st.one_of(st.none(), st.ip_addresses().map(str)))
@settings(max_examples=300, deadline=None)
def test_generic_name_never_raises(name: str, address: str | None) -> None:
    check = generic_name(name, address)
    assert check.matched is None or check.matched.lower() in name.lower()


@given(st.lists(st.text(max_size=600), max_size=6))
@settings(max_examples=300, deadline=None)
def test_echo_parsing_never_raises_and_only_returns_addresses(lines: list[str]) -> None:
    found = echoed_in(tuple(lines))
    if found is not None:
        family, address = found
        assert ipaddress.ip_address(address).version == (4 if family == "ipv4" else 6)


def test_checks_lists_one_row_per_check() -> None:
    r = assess(
        {"ipv4": (ADDR,)},
        (),
        [PASS],
        [CLEAN],
        check_ehlo_name("other.test", [DnsAnswer("ok", ("192.0.2.50",))], [ADDR], []),
        [PBL, DnsblCheck("bl.test", ADDR, "unknown", reason="timeout")],
    )
    rows = {name: passed for name, passed, _ in r.checks()}
    assert rows == {
        f"ptr {ADDR}": True,
        "generic-name mail.good.test": True,
        "ehlo-name other.test": False,
        f"dnsbl zen.spamhaus.org {ADDR}": False,
        f"dnsbl bl.test {ADDR}": None,
    }


# --- one DNS seam for the planner and readiness -------------------------------------------


async def test_the_planners_fake_dns_serves_readiness_too() -> None:
    """Pipeline(lookup=) and ReadinessCheck(lookup=) take the same DnsLookup."""
    from tests.fake_dns import ZONE, FakeDNS

    fake = FakeDNS({**ZONE, "7.100.51.198.in-addr.arpa": {"PTR": ["mail.good.test"]}})
    check = ReadinessCheck(_settings(public_ips=(ADDR,), dnsbl=()), lookup=fake)
    done = trio.Event()
    done.set()
    await check.run(done)
    assert ("7.100.51.198.in-addr.arpa", "PTR") in fake.asked
    assert ("mail.good.test", "A") in fake.asked
    assert check.result().ptr[0].names == ("mail.good.test",)


async def test_answers_are_bounded_before_readiness_reads_them() -> None:
    many = DnsAnswer("ok", tuple(f"n{i}.{'x' * 300}.test" for i in range(50)), "a\nb\x1b[2J")
    check = ReadinessCheck(_settings(public_ips=(ADDR,), dnsbl=()), lookup=FakeDns({}))
    check._lookup = FakeDns({("7.100.51.198.in-addr.arpa", "PTR"): many})
    answer = await check._query("7.100.51.198.in-addr.arpa", "PTR")
    assert len(answer.values) == 16 and answer.truncated
    assert all(len(v) == 255 for v in answer.values)
    assert answer.message == "a b\\x1b[2J"
