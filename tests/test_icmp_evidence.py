"""ICMP evidence on every probe: ``probes[].icmp`` in the JSON and reasons that cite it."""

from __future__ import annotations

import struct
from dataclasses import replace

from portprobe.model import ErrorInfo, IcmpReport, ProbeResult
from portprobe.probe.connect import is_own_address, parse_extended_error
from tests.builders import PROVIDERS, dropped, healthy, prohibited, report_for, reset


def _with_icmp(result: ProbeResult, icmp: IcmpReport) -> ProbeResult:
    assert result.error is not None
    return replace(result, error=replace(result.error, icmp=icmp))


ADMIN = IcmpReport("ipv4", 3, 13, "198.18.1.1", "EHOSTUNREACH")


def _blocked(make: object, icmp: IcmpReport | None) -> dict[str, object]:
    results = []
    for p in PROVIDERS:
        r = make(p)  # type: ignore[operator]
        results.append(_with_icmp(r, icmp) if icmp is not None else r)
        results += healthy(p)
    return report_for(results)


def test_a_probe_carries_its_icmp_in_the_spec_s_shape() -> None:
    report = _blocked(prohibited, ADMIN)
    icmps = [p["icmp"] for p in report["probes"] if p["port"] == 25]
    assert (
        icmps == [{"type": 3, "code": 13, "from": "198.18.1.1", "meaning": "admin-prohibited"}] * 3
    )
    assert all(p["icmp"] is None for p in report["probes"] if p["port"] != 25)


def test_reasons_cite_the_icmp_and_its_sender() -> None:
    reasons = " ".join(_blocked(prohibited, ADMIN)["verdict"]["reasons"])  # type: ignore[index]
    assert "administratively prohibited (ICMP 3/13) by 198.18.1.1" in reasons
    # One line per distinct (meaning, sender), not one per probe.
    assert reasons.count("(ICMP 3/13)") == 1


def test_an_icmp_from_this_machine_says_so() -> None:
    mine = IcmpReport("ipv4", 3, 3, "10.0.0.2", "ECONNREFUSED", local=True)  # address-text
    reasons = " ".join(_blocked(reset, mine)["verdict"]["reasons"])  # type: ignore[index]
    assert "port unreachable (ICMP 3/3) sent by this machine itself" in reasons


def test_a_reset_without_icmp_stays_a_reset() -> None:
    report = _blocked(reset, None)
    assert all(p["icmp"] is None for p in report["probes"])
    reasons = " ".join(report["verdict"]["reasons"])  # type: ignore[index]
    assert "ICMP 3/" not in reasons and "reset" in reasons


def test_a_drop_has_no_icmp() -> None:
    report = _blocked(dropped, None)
    assert "(ICMP" not in " ".join(report["verdict"]["reasons"])  # type: ignore[index]


def test_error_info_to_dict_is_unchanged() -> None:
    assert ErrorInfo("connect", "x", "EHOSTUNREACH", ADMIN).to_dict() == {
        "kind": "connect",
        "errno": "EHOSTUNREACH",
        "message": "x",
    }


def _cmsg(origin: int, icmp_type: int, code: int, offender: bytes) -> bytes:
    return struct.pack("=IBBBBII", 113, origin, icmp_type, code, 0, 0, 0) + offender


def test_the_error_queue_parser_is_bounded_against_junk() -> None:
    v4 = b"\x02\x00\x00\x00" + bytes([198, 18, 1, 1]) + bytes(8)
    assert parse_extended_error(_cmsg(2, 3, 13, v4)) == ADMIN
    assert parse_extended_error(b"") is None
    assert parse_extended_error(b"\xff" * 7) is None
    assert parse_extended_error(_cmsg(2, 3, 13, b"\x02\x00")) is None  # short offender
    assert parse_extended_error(_cmsg(1, 3, 13, v4)) is None  # a local error, no ICMP
    unknown = parse_extended_error(_cmsg(2, 250, 250, v4))
    assert unknown is not None and unknown.meaning == "other"


def test_own_addresses_are_recognised_without_traffic() -> None:
    assert is_own_address("127.0.0.1") and is_own_address("::1")
    assert not is_own_address("192.0.2.200")
    assert not is_own_address("not an address")
