"""Mail readiness against a real dnsmasq on loopback: whoami, PTR/FCrDNS, DNSBL.

One dnsmasq (tests/dnsmasq_server.py) holds every scenario's records: each scenario has
its own public address in 198.51.100.0/24, its own whoami names, and the DNSBL zones
``bl.test`` (documented like Spamhaus ZEN), ``pub.test`` (answers 127.255.255.254, as
Spamhaus does through a public resolver) and ``lies.test`` (lists everyone). The whoami
"servers" are loopback: ``ns.whoami.test`` resolves, through the same resolver, to the
dnsmasq address, and every method names its port. Nothing leaves loopback.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import trio

from portprobe.model import ProbeResult, ProbeSpec, Reply
from portprobe.probe import ProbeConfig, probe
from portprobe.readiness.check import ReadinessCheck
from portprobe.readiness.model import Readiness
from portprobe.readiness.names import echoed_address
from portprobe.readiness.settings import (
    ReadinessSettings,
    WhoamiMethod,
    load_readiness_settings,
)
from tests.dnsmasq_server import DnsmasqServer, dnsmasq_binary, run_dnsmasq, silent_udp_server
from tests.servers import Transcript, serve_raw, spec

CLEAN, GENERIC, NO_PTR, MISMATCH, MANY = (
    "198.51.100.7",
    "198.51.100.8",
    "198.51.100.9",
    "198.51.100.10",
    "198.51.100.11",
)
ECHOED = "203.0.113.5"
DNS_TIMEOUT = 2.0
#: A guard against a hung test, far above what any scenario needs; not a timing assertion.
GUARD = 60


_SCHEMA = json.loads((Path(__file__).parent.parent / "reports/report.schema.json").read_text())
_READINESS_SCHEMA = {"$ref": "#/$defs/readiness", "$defs": _SCHEMA["$defs"]}


def _valid(r: Readiness) -> Readiness:
    """The report's ``readiness`` object follows reports/report.schema.json."""
    jsonschema.Draft202012Validator(_READINESS_SCHEMA).validate(r.to_dict())
    return r


def _rev(address: str) -> str:
    return ".".join(reversed(address.split("."))) + ".in-addr.arpa"


def _records(server: DnsmasqServer) -> list[str]:
    r = [
        f"--address=/ns.whoami.test/{server.address}",
        # whoami answers, per scenario: A (opendns style) and TXT (google style)
        f"--address=/myip.clean.test/{CLEAN}",
        f"--txt-record=txt.clean.test,{CLEAN}",
        f"--address=/myip.generic.test/{GENERIC}",
        f"--address=/myip.noptr.test/{NO_PTR}",
        f"--address=/myip.mismatch.test/{MISMATCH}",
        f"--address=/myip.many.test/{MANY}",
        "--txt-record=txt.garbage.test,\x1b[31mhello\x07",
        "--txt-record=txt.huge.test," + ",".join(f"s{i:04d}" for i in range(1000)),
        # reverse and forward
        f"--ptr-record={_rev(CLEAN)},mail.good.test",
        f"--address=/mail.good.test/{CLEAN}",
        f"--ptr-record={_rev(GENERIC)},198-51-100-8.dyn.isp.test",
        f"--address=/198-51-100-8.dyn.isp.test/{GENERIC}",
        f"--ptr-record={_rev(MISMATCH)},mail.other.test",
        "--address=/mail.other.test/198.51.100.99",
        # the DNSBLs
        "--address=/2.0.0.127.bl.test/127.0.0.2",
        f"--address=/{'.'.join(reversed(GENERIC.split('.')))}.bl.test/127.0.0.11",
        "--address=/pub.test/127.255.255.254",
        "--address=/lies.test/127.0.0.2",
    ]
    r += [f"--ptr-record={_rev(MANY)},n{i}.many.test" for i in range(50)]
    return r


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsmasqServer]:
    if dnsmasq_binary() is None:
        pytest.skip("dnsmasq is not installed (Debian: apt-get install dnsmasq-base)")
    log = tmp_path_factory.mktemp("dnsmasq") / "dnsmasq.log"
    with run_dnsmasq(_records, log) as server:
        yield server


def _settings(
    server: DnsmasqServer, scenario: str, *, zones: tuple[str, ...] = ("bl.test",), **kw: object
) -> ReadinessSettings:
    base = load_readiness_settings(None, dns_timeout=DNS_TIMEOUT, families=("ipv4",))
    zen = base.dnsbl[0]
    whoami = (
        WhoamiMethod("opendns", "ns.whoami.test", f"myip.{scenario}.test", server.port),
        WhoamiMethod("google", "ns.whoami.test", f"txt.{scenario}.test", server.port),
    )
    settings = dataclasses.replace(
        base,
        whoami=whoami,
        dnsbl=tuple(dataclasses.replace(zen, zone=z, name=z) for z in zones),
        nameservers=(server.nameserver,),
        echo_wait=0.0,
    )
    return dataclasses.replace(settings, **kw)  # type: ignore[arg-type]


async def _run(settings: ReadinessSettings, *echoes: str) -> ReadinessCheck:
    check = ReadinessCheck(settings)
    for echo in echoes:
        spec = ProbeSpec("t", "mx.echo.test", "192.0.2.1", "ipv4", 25)
        hello = f"mx.echo.test Hello client [{echo}]"
        check.observe(ProbeResult(spec, "open", Reply(220, ("mx ESMTP",)), ehlo_hello=hello))
    done = trio.Event()
    done.set()
    with trio.fail_after(GUARD):
        await check.run(done)
    return check


async def test_clean_address_is_ready(dnsmasq: DnsmasqServer) -> None:
    check = await _run(_settings(dnsmasq, "clean", ehlo_name="mail.good.test"))
    r = _valid(check.result("open"))
    assert r.public_addresses == {"ipv4": (CLEAN,)}
    methods = {(s.method, s.address) for s in r.sightings}
    assert methods == {("opendns", CLEAN), ("google", CLEAN)}
    assert r.ptr[0].iprev == "pass" and r.ptr[0].confirmed_name == "mail.good.test"
    assert r.generic_name[0].generic is False
    assert r.dnsbl[0].status == "not-listed"
    assert r.ehlo_name is not None
    assert r.ehlo_name.resolves_to_public is True and r.ehlo_name.matches_ptr is True
    assert r.ready == "yes", r.reasons


async def test_generic_ptr_and_pbl_listing_is_not_ready(dnsmasq: DnsmasqServer) -> None:
    r = _valid((await _run(_settings(dnsmasq, "generic"))).result("open"))
    assert r.ptr[0].iprev == "pass"
    assert r.generic_name[0].generic and r.generic_name[0].matched == "198-51-100-8"
    assert r.dnsbl[0].status == "listed" and "PBL" in r.dnsbl[0].meanings[0]
    assert r.ready == "no"
    assert any("direct delivery will be refused" in a.text for a in r.advice)


async def test_no_ptr_is_permerror(dnsmasq: DnsmasqServer) -> None:
    r = (await _run(_settings(dnsmasq, "noptr"))).result()
    assert r.ptr[0].iprev == "permerror" and r.ready == "no"


async def test_ptr_whose_forward_does_not_come_back_is_fail(dnsmasq: DnsmasqServer) -> None:
    r = (await _run(_settings(dnsmasq, "mismatch"))).result()
    assert r.ptr[0].iprev == "fail" and r.ptr[0].names == ("mail.other.test",)
    assert r.ready == "no"


async def test_dnsbl_refusing_a_public_resolver_is_unknown(dnsmasq: DnsmasqServer) -> None:
    r = (await _run(_settings(dnsmasq, "clean", zones=("pub.test",)))).result()
    assert r.dnsbl[0].status == "unknown"
    assert "your resolver is a public one" in (r.dnsbl[0].reason or "")
    assert r.ready == "unknown"
    assert any("DQS" in a.text for a in r.advice)


async def test_a_zone_listing_everyone_is_not_believed(dnsmasq: DnsmasqServer) -> None:
    r = (await _run(_settings(dnsmasq, "clean", zones=("lies.test",)))).result()
    assert r.dnsbl[0].status == "unknown" and "clean test entry" in (r.dnsbl[0].reason or "")


async def test_whoami_disagreeing_with_an_ehlo_echo_is_reported(dnsmasq: DnsmasqServer) -> None:
    r = (await _run(_settings(dnsmasq, "clean"), ECHOED)).result()
    assert set(r.public_addresses["ipv4"]) == {CLEAN, ECHOED}
    assert any("disagree" in x and ECHOED in x and CLEAN in x for x in r.reasons)
    assert ECHOED in r.redaction_terms() and "mail.good.test" in r.redaction_terms()


async def test_stated_address_skips_whoami(dnsmasq: DnsmasqServer, tmp_path: Path) -> None:
    r = (await _run(_settings(dnsmasq, "noptr", public_ips=(CLEAN,)))).result()
    assert [(s.method, s.address) for s in r.sightings] == [("stated", CLEAN)]
    assert r.ready == "yes"


async def test_dns_that_never_answers_is_unknown_within_the_bound(
    dnsmasq: DnsmasqServer,
) -> None:
    with silent_udp_server() as silent:
        settings = _settings(dnsmasq, "clean", nameservers=(silent,), dns_timeout=0.5)
        check = await _run(settings)
    r = _valid(check.result("open"))
    assert r.ready == "unknown" and r.public_addresses == {}
    assert all(s.address is None and s.error for s in r.sightings)
    assert any("could not be learned" in x for x in r.reasons)


async def test_garbage_and_huge_answers_are_bounded_unknowns(dnsmasq: DnsmasqServer) -> None:
    garbage = (await _run(_settings(dnsmasq, "garbage"))).result()
    huge = (await _run(_settings(dnsmasq, "huge"))).result()
    many = (await _run(_settings(dnsmasq, "many"))).result()
    for r in (garbage, huge, many):
        _valid(r)
    for r in (garbage, huge):
        assert r.ready == "unknown" and r.public_addresses == {}
        assert all(s.address is None for s in r.sightings)
    text = json.dumps([garbage.to_dict(), huge.to_dict(), many.to_dict()])
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b" in json.dumps(garbage.to_dict())  # shown, made visible
    assert len(json.dumps(huge.to_dict())) < 4000  # 1,000 strings did not come through
    # 50 PTR names: a few checked, none confirms (they do not resolve): fail, bounded.
    assert len(many.ptr[0].names) <= 4 and many.ptr[0].iprev == "fail"
    assert many.ready == "no"


async def test_a_real_probe_keeps_the_ehlo_echo() -> None:
    """An Exim-style server echoes the client address in the EHLO reply's first line;
    the probe keeps that line and readiness reads the address from it."""

    async def exim_like(stream: trio.SocketStream, t: Transcript) -> None:
        await stream.send_all(b"220 mx.echo.test ESMTP Exim 4.97\r\n")
        buf = bytearray()
        while (line := await t.read_line(stream, buf)) is not None:
            if line.upper().startswith(b"EHLO"):
                await stream.send_all(
                    b"250-mx.echo.test Hello client.test [127.0.0.1]\r\n250 SIZE 52428800\r\n"
                )
            elif line.upper().startswith(b"QUIT"):
                await stream.send_all(b"221 bye\r\n")
                return

    async with trio.open_nursery() as nursery:
        port, _ = await serve_raw(nursery, exim_like)
        result = await probe(spec(port, role=587), ProbeConfig(timeout=10.0))
        nursery.cancel_scope.cancel()
    assert result.state == "open" and result.ehlo == ("SIZE 52428800",)
    assert echoed_address(result) == ("ipv4", "127.0.0.1")
    check = ReadinessCheck(load_readiness_settings(None, dns_timeout=1))
    check.observe(result)
    r = check.result()
    # Seen, reported, and not taken for a public address: loopback is nobody's sender.
    assert [(s.method, s.address) for s in r.sightings] == [("ehlo-echo", "127.0.0.1")]
    assert r.public_addresses == {}
