"""Mail readiness end to end (issue 13): portprobe's ``readiness`` in each lab world.

The readiness worlds (``readiness_world.WORLDS``) give the client's PTR and forward
records, the zen.spamhaus.org answers and the whoami servers' answers; Exim at
mx.echo.example echoes the client's address in its EHLO reply, the third method. Each
test runs the CLI as a user would (default readiness on, ``--nameserver`` the lab DNS)
against alpha, beta and echo.example, and reads ``readiness`` in the JSON report (the
shape of ``portprobe.readiness.model.Readiness.to_dict()``). The path is open in every
world: readiness never changes the port-25 verdict or the exit code.

``test_lab_world`` proves the same worlds right with plain DNS queries, without
portprobe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .harness import Report, matches, run_portprobe
from .netlab import Lab
from .readiness_world import (
    CLEAN_NAME,
    GENERIC_V4,
    OTHER_EXIT_V4,
    PBL_SPAMHAUS,
    PUBLIC_RESOLVER_ERROR,
    ZONE,
)
from .topology import CLIENT_V4, CLIENT_V6, DOMAINS, ECHO_DOMAIN, ECHO_MX

pytestmark = pytest.mark.lab

TARGET_DOMAINS = (*DOMAINS[:2], ECHO_DOMAIN)
CLIENT = {"ipv4": CLIENT_V4, "ipv6": CLIENT_V6}


@pytest.fixture(scope="module")
def readiness_report(
    lab: Lab, portprobe_installed: None, echo_receiver: None
) -> Callable[[str], Report]:
    cache: dict[str, Report] = {}

    def get(world: str) -> Report:
        lab.switch("open", readiness=world)
        if world not in cache:
            cache[world] = run_portprobe(lab, "--dns-timeout", "2", domains=TARGET_DOMAINS)
        return cache[world]

    return get


def _readiness(report: Report) -> dict[str, Any]:
    why = report.summary()
    # The path is open in every world, whatever readiness finds.
    assert report.exit_code == 0, why
    assert report.verdict["port25"] == "open", why
    readiness = report.data.get("readiness")
    assert isinstance(readiness, dict), f"no readiness in the report\n{why}"
    return readiness


def _ptr(readiness: dict[str, Any], address: str) -> dict[str, Any]:
    found = [p for p in readiness["ptr"] if p["address"] == address]
    assert len(found) == 1, readiness["ptr"]
    return found[0]


def _dnsbl(readiness: dict[str, Any], address: str) -> dict[str, Any]:
    found = [d for d in readiness["dnsbl"] if d["address"] == address and d["zone"] == ZONE]
    assert len(found) == 1, readiness["dnsbl"]
    return found[0]


def _sighted(readiness: dict[str, Any], method: str, family: str) -> set[str | None]:
    return {
        s["address"]
        for s in readiness["sightings"]
        if s["method"] == method and s["family"] == family
    }


def test_clean_is_ready(readiness_report: Callable[[str], Report]) -> None:
    readiness = _readiness(readiness_report("clean"))
    assert readiness["ready"] == "yes", readiness
    assert readiness["public_addresses"] == {"ipv4": [CLIENT_V4], "ipv6": [CLIENT_V6]}, readiness
    for family, address in CLIENT.items():
        for method in ("opendns", "google", "ehlo-echo"):
            assert _sighted(readiness, method, family) == {address}, (method, readiness)
        ptr = _ptr(readiness, address)
        assert (ptr["iprev"], ptr["names"], ptr["confirmed_name"]) == (
            "pass",
            [CLEAN_NAME],
            CLEAN_NAME,
        ), ptr
        assert _dnsbl(readiness, address)["status"] == "not-listed", readiness["dnsbl"]
    assert all(not g["generic"] for g in readiness["generic_name"]), readiness["generic_name"]
    echo = [s for s in readiness["sightings"] if s["method"] == "ehlo-echo"]
    assert all(s["source"] and ECHO_MX in s["source"] for s in echo), echo


def test_generic_ptr_and_pbl_listing_is_not_ready(
    readiness_report: Callable[[str], Report],
) -> None:
    readiness = _readiness(readiness_report("generic-pbl"))
    assert readiness["ready"] == "no", readiness
    ptr = _ptr(readiness, CLIENT_V4)
    assert (ptr["iprev"], ptr["names"]) == ("pass", [GENERIC_V4]), ptr
    generic = [g for g in readiness["generic_name"] if g["name"] == GENERIC_V4]
    assert generic and generic[0]["generic"] is True and generic[0]["matched"], generic
    listed = _dnsbl(readiness, CLIENT_V4)
    assert listed["status"] == "listed", listed
    assert listed["answers"] == [PBL_SPAMHAUS], listed
    assert matches(r"PBL", " ".join(listed["meanings"])), listed
    assert matches(r"PBL", " ".join(readiness["reasons"])), readiness["reasons"]
    assert _dnsbl(readiness, CLIENT_V6)["status"] == "not-listed", readiness["dnsbl"]


def test_no_ptr_is_permerror(readiness_report: Callable[[str], Report]) -> None:
    readiness = _readiness(readiness_report("no-ptr"))
    assert readiness["ready"] == "no", readiness
    for address in CLIENT.values():
        ptr = _ptr(readiness, address)
        assert (ptr["iprev"], ptr["names"]) == ("permerror", []), ptr
    assert matches(r"PTR|reverse", " ".join(readiness["reasons"])), readiness["reasons"]


def test_ptr_not_confirmed_is_fail(readiness_report: Callable[[str], Report]) -> None:
    readiness = _readiness(readiness_report("ptr-fail"))
    assert readiness["ready"] == "no", readiness
    for address in CLIENT.values():
        ptr = _ptr(readiness, address)
        assert (ptr["iprev"], ptr["names"], ptr["confirmed_name"]) == (
            "fail",
            [CLEAN_NAME],
            None,
        ), ptr


def test_dnsbl_public_resolver_answer_is_unknown(
    readiness_report: Callable[[str], Report],
) -> None:
    readiness = _readiness(readiness_report("dnsbl-public-resolver"))
    assert readiness["ready"] == "unknown", readiness
    entry = _dnsbl(readiness, CLIENT_V4)
    assert entry["status"] == "unknown", entry
    assert entry["answers"] == [PUBLIC_RESOLVER_ERROR], entry
    assert matches(r"public|open resolver", entry["reason"] or ""), entry
    assert _ptr(readiness, CLIENT_V4)["iprev"] == "pass", readiness["ptr"]


def test_whoami_disagreeing_with_ehlo_echo_is_reported(
    readiness_report: Callable[[str], Report],
) -> None:
    readiness = _readiness(readiness_report("whoami-disagrees"))
    assert _sighted(readiness, "opendns", "ipv4") == {OTHER_EXIT_V4}, readiness["sightings"]
    assert _sighted(readiness, "google", "ipv4") == {OTHER_EXIT_V4}, readiness["sightings"]
    assert _sighted(readiness, "ehlo-echo", "ipv4") == {CLIENT_V4}, readiness["sightings"]
    reasons = " ".join(readiness["reasons"])
    assert OTHER_EXIT_V4 in reasons and CLIENT_V4 in reasons, readiness["reasons"]
    assert matches(r"disagree|differ|split|NAT|VPN", reasons), readiness["reasons"]


def test_readiness_dns_timing_out_is_unknown(
    readiness_report: Callable[[str], Report],
) -> None:
    report = readiness_report("dns-timeout")
    readiness = _readiness(report)  # and the path verdict is unaffected: open, exit 0
    assert readiness["ready"] == "unknown", readiness
    for method in ("opendns", "google"):
        for family in CLIENT:
            assert _sighted(readiness, method, family) <= {None}, readiness["sightings"]
    assert all(p["iprev"] == "temperror" for p in readiness["ptr"]), readiness["ptr"]
    assert all(d["status"] == "unknown" for d in readiness["dnsbl"]), readiness["dnsbl"]
    assert report.verdict["families"] == {"ipv4": "open", "ipv6": "open"}, report.summary()


def test_no_readiness_skips_it(lab: Lab, portprobe_installed: None, echo_receiver: None) -> None:
    lab.switch("open", readiness="dns-timeout")
    report = run_portprobe(lab, "--no-readiness", domains=TARGET_DOMAINS)
    assert report.exit_code == 0, report.summary()
    assert report.data.get("readiness") is None, report.summary()


def test_stated_public_ip_is_used(lab: Lab, portprobe_installed: None, echo_receiver: None) -> None:
    lab.switch("open", readiness="clean")
    report = run_portprobe(lab, "--public-ip", CLIENT_V4, domains=TARGET_DOMAINS)
    readiness = _readiness(report)
    assert _sighted(readiness, "stated", "ipv4") == {CLIENT_V4}, readiness["sightings"]
    assert readiness["public_addresses"]["ipv4"] == [CLIENT_V4], readiness
    assert _ptr(readiness, CLIENT_V4)["iprev"] == "pass", readiness["ptr"]
