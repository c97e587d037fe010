"""portprobe against each ISP behaviour, and against nmap, swaks and openssl in the same one.

For every scenario: the exit code, ``verdict.port25``, the family verdicts, each probe's
state, TLS verified against the lab CA, the anomalies, and that the reasons name the
failure mode (spec: "Verdict … and exit codes"). Then the peers: nmap's open / closed /
filtered per address and port, swaks's greeting and EHLO on port 25, openssl's TLS.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from .harness import Report, matches, run_portprobe
from .netlab import Lab
from .peers import OpenSSLResult, nmap_scan, openssl_s_client, swaks
from .topology import MAIL_PORTS, PROVIDERS, ROUTER_CLIENT_SIDE_V4, ROUTER_CLIENT_SIDE_V6

pytestmark = pytest.mark.lab

BOTH = ("ipv4", "ipv6")


@dataclass(frozen=True)
class Expected:
    exit_code: int
    port25: str
    families: dict[str, str]
    state25: dict[str, str]  # the state of every port-25 probe, per family
    reasons: str  # regex: the reasons must name this failure mode
    anomalies25: frozenset[str] = frozenset()  # every port-25 probe has at least these
    tls25: bool = True  # port-25 probes verify the provider's certificate
    starttls25: str = "offered"
    # The state of every probe on 465/587/2525, per family.
    state_other: dict[str, str] = field(default_factory=lambda: _same("open"))


def _same(value: str) -> dict[str, str]:
    return dict.fromkeys(BOTH, value)


NO_IPV6 = {"ipv4": "open", "ipv6": "unreachable"}  # ENETUNREACH: no route at all

EXPECTED = {
    "open": Expected(0, "open", _same("open"), _same("open"), r"genuine|reached"),
    "dropped": Expected(3, "blocked", _same("blocked"), _same("filtered"), r"dropped", tls25=False),
    "reset": Expected(3, "blocked", _same("blocked"), _same("refused"), r"\breset", tls25=False),
    "prohibited": Expected(
        3,
        "blocked",
        _same("blocked"),
        _same("unreachable"),
        r"administratively prohibited",
        tls25=False,
    ),
    "dropped-v4": Expected(
        6,
        "partial",
        {"ipv4": "blocked", "ipv6": "open"},
        {"ipv4": "filtered", "ipv6": "open"},
        r"IPv4.*IPv6|IPv6.*IPv4",
    ),
    "isp-relay": Expected(
        4,
        "intercepted",
        _same("intercepted"),
        _same("open"),
        r"middlebox|intercept",
        anomalies25=frozenset({"greeting-shared-across-providers"}),
        tls25=False,
        starttls25="not-offered",
    ),
    "asa": Expected(
        4,
        "intercepted",
        _same("intercepted"),
        _same("open"),
        r"XXXXXXXA|\*\*\*\*|masked",
        anomalies25=frozenset({"masked-greeting", "starttls-stripped"}),
        tls25=False,
        starttls25="stripped",
    ),
    "blocklisted": Expected(
        5,
        "restricted",
        _same("restricted"),
        _same("rejected"),
        r"refused this client|blocklist|blocked using",
        tls25=False,
        starttls25="n/a",
    ),
    "no-ipv6": Expected(
        0,
        "open",
        {"ipv4": "open", "ipv6": "unavailable"},
        NO_IPV6,
        r"IPv6.*unavailable",
        state_other=NO_IPV6,
    ),
    "dropped-no-ipv6": Expected(
        3,
        "blocked",
        {"ipv4": "blocked", "ipv6": "unavailable"},
        {"ipv4": "filtered", "ipv6": "unreachable"},
        r"dropped.*IPv6.*unavailable|IPv6.*unavailable.*dropped",
        tls25=False,
        state_other=NO_IPV6,
    ),
}
#: The scenarios the peers are compared in (nmap cannot scan a family with no route).
PEER_SCENARIOS = [name for name in EXPECTED if "no-ipv6" not in name]

#: Every (address, port) the default run must probe: the MX hosts' A and AAAA.
ALL_ENDPOINTS = {(a, port) for p in PROVIDERS for a in (p.ipv4, p.ipv6) for port in MAIL_PORTS}
CONNECTED = {"open", "rejected", "no-banner", "not-smtp", "tls-error"}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_verdict(name: str, scenario_report: Callable[[str], Report]) -> None:
    expected = EXPECTED[name]
    report = scenario_report(name)
    why = report.summary()
    assert report.exit_code == expected.exit_code, why
    assert report.verdict["port25"] == expected.port25, why
    assert report.verdict["families"] == expected.families, why
    assert matches(expected.reasons, report.reasons), why
    assert {(p["address"], p["port"]) for p in report.probes()} == ALL_ENDPOINTS, why
    for probe in report.probes():
        where = f"{probe['host']} [{probe['address']}]:{probe['port']}\n{why}"
        assert probe["provider"] is not None, where
        if probe["port"] != 25:
            # The controls answer genuinely, with certificates the lab CA vouches for.
            assert probe["state"] == expected.state_other[probe["family"]], where
            assert probe["anomalies"] == [], where
            if probe["state"] == "open":
                assert probe["tls"] is not None and probe["tls"]["verified"] is True, where
            continue
        assert probe["state"] == expected.state25[probe["family"]], where
        assert expected.anomalies25 <= set(probe["anomalies"]), where
        if expected.state25[probe["family"]] == "open" and not expected.anomalies25:
            assert probe["anomalies"] == [], where
            assert probe["greeting"]["text"].startswith(probe["host"]), where
        if expected.tls25 and expected.state25[probe["family"]] == "open":
            assert probe["starttls"] == "offered", where
            assert probe["tls"] is not None and probe["tls"]["verified"] is True, where
        elif probe["state"] in CONNECTED:
            assert probe["starttls"] == expected.starttls25, where
            assert probe["tls"] is None, where
        else:
            assert probe["greeting"] is None and probe["tls"] is None, where
    if name == "blocklisted":
        assert "zen.spamhaus.org" in "".join(p["greeting"]["text"] for p in report.probes(25))


@pytest.mark.parametrize("name", ["prohibited", "reset", "dropped"])
def test_port_25_probes_carry_the_router_s_icmp(
    name: str, scenario_report: Callable[[str], Report]
) -> None:
    """probes[].icmp: the ACL's administratively prohibited, from the router; a RST and a
    drop carry none. The reasons cite the ICMP and its sender."""
    report = scenario_report(name)
    router = {"ipv4": ROUTER_CLIENT_SIDE_V4, "ipv6": ROUTER_CLIENT_SIDE_V6}
    code = {"ipv4": (3, 13), "ipv6": (1, 1)}
    for probe in report.probes(25):
        if name != "prohibited":
            assert probe["icmp"] is None, probe
            continue
        family = probe["family"]
        assert probe["icmp"] == {
            "type": code[family][0],
            "code": code[family][1],
            "from": router[family],
            "meaning": "admin-prohibited",
        }, probe
    if name == "prohibited":
        assert matches(
            rf"administratively prohibited \(ICMP 3/13\) by {ROUTER_CLIENT_SIDE_V4}", report.reasons
        )
    else:
        assert not matches(r"\(ICMP \d+/\d+\)", report.reasons)


# -- the peers see the same picture ----------------------------------------------------

#: portprobe's connect outcome → what nmap -sT reports for it (state, reasons).
NMAP_EQUIVALENT = {
    "open": ("open", {"syn-ack"}),
    "rejected": ("open", {"syn-ack"}),
    "refused": ("closed", {"conn-refused", "reset"}),
    "filtered": ("filtered", {"no-response"}),
    # A connect() scan sees only the errno: EHOSTUNREACH for IPv4's ICMP "communication
    # administratively prohibited" (nmap: host-unreach), EACCES for ICMPv6's.
    "unreachable": ("filtered", {"admin-prohibited", "host-unreach"}),
}

#: portprobe's connect failure → the errno text swaks prints.
SWAKS_ERROR: dict[str, tuple[str, ...]] = {
    "refused": ("Connection refused",),
    "filtered": ("timeout",),
    "unreachable": ("No route to host", "Permission denied", "Network is unreachable"),
}


@pytest.mark.parametrize("name", PEER_SCENARIOS)
def test_nmap_agrees(
    name: str, lab_logs: Lab, scenario_report: Callable[[str], Report], peer_tools: None
) -> None:
    report = scenario_report(name)
    lab_logs.switch(name)
    addresses = [a for p in PROVIDERS for a in (p.ipv4, p.ipv6)]
    seen = nmap_scan(lab_logs.client_argv([]), addresses, MAIL_PORTS)
    for probe in report.probes():
        state, reasons = NMAP_EQUIVALENT[probe["state"]]
        nmap = seen[(probe["address"], probe["port"])]
        assert (nmap.state, nmap.reason in reasons) == (state, True), (
            f"{probe['address']}:{probe['port']}: portprobe {probe['state']}, nmap {nmap}"
        )


@pytest.mark.parametrize("name", PEER_SCENARIOS)
def test_swaks_agrees_on_port_25(
    name: str, lab_logs: Lab, scenario_report: Callable[[str], Report], peer_tools: None
) -> None:
    report = scenario_report(name)
    lab_logs.switch(name)
    probes = report.probes(25)
    prefix = lab_logs.client_argv([])
    with ThreadPoolExecutor(len(probes)) as pool:
        results = list(pool.map(lambda p: swaks(prefix, p["address"], 25), probes))
    for probe, peer in zip(probes, results, strict=True):
        where = f"{probe['address']}:25 portprobe {probe['state']}\n{peer.output}"
        assert peer.connected == (probe["state"] in CONNECTED), where
        if not peer.connected:
            assert peer.error is not None and peer.error.startswith(SWAKS_ERROR[probe["state"]]), (
                where
            )
            continue
        greeting = probe["greeting"]
        assert (peer.greeting_code, peer.greeting_text) == (greeting["code"], greeting["text"]), (
            where
        )
        if probe["state"] == "open":
            assert ("STARTTLS" in peer.ehlo) == (probe["starttls"] == "offered"), where
            assert ("XXXXXXXA" in peer.ehlo) == (probe["starttls"] == "stripped"), where


@pytest.mark.parametrize("name", ["open", "isp-relay", "asa"])
def test_openssl_agrees_on_tls(
    name: str, lab_logs: Lab, scenario_report: Callable[[str], Report], peer_tools: None
) -> None:
    report = scenario_report(name)
    lab_logs.switch(name)
    prefix, ca = lab_logs.client_argv([]), str(lab_logs.ca_file)
    probes = report.probes()

    def peer(probe: dict[str, Any]) -> OpenSSLResult:
        address, port, host = probe["address"], probe["port"], probe["host"]
        return openssl_s_client(prefix, address, port, host, ca, starttls=port != 465)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(peer, probes))
    for probe, tls in zip(probes, results, strict=True):
        where = (
            f"{probe['address']}:{probe['port']} portprobe tls={probe['tls']}\n{tls.output[-1500:]}"
        )
        if probe["tls"] is None:
            assert not tls.handshake, where
            continue
        assert tls.handshake and tls.verified == probe["tls"]["verified"], where
        assert tls.protocol == probe["tls"]["version"], where
        fingerprint = probe["tls"]["cert"].get("sha256")
        if fingerprint is not None:
            assert tls.cert_sha256 == fingerprint.replace(":", "").lower(), where


# -- scenarios with nothing to compare against -------------------------------------------


@dataclass(frozen=True)
class Offline:
    scenario: str
    args: tuple[str, ...]
    states: frozenset[str] = field(default_factory=frozenset)  # every probe's state


OFFLINE_CASES = {
    "offline-by-name": Offline("offline", (), frozenset({"dns-error"})),
    "offline-by-address": Offline(
        "offline",
        tuple(x for p in PROVIDERS for x in ("--target", p.ipv4, "--target", p.ipv6)),
        frozenset({"filtered"}),
    ),
    "link-down-by-name": Offline("link-down", (), frozenset({"dns-error"})),
    "link-down-by-address": Offline(
        "link-down",
        tuple(x for p in PROVIDERS for x in ("--target", p.ipv4, "--target", p.ipv6)),
        frozenset({"unreachable"}),
    ),
}


@pytest.mark.parametrize("case", list(OFFLINE_CASES))
def test_offline(case: str, lab: Lab, portprobe_installed: None) -> None:
    spec = OFFLINE_CASES[case]
    lab.switch(spec.scenario)
    report = run_portprobe(lab, *spec.args)
    why = report.summary()
    assert report.exit_code == 8, why
    assert report.verdict["port25"] == "offline", why
    assert {p["state"] for p in report.probes()} == spec.states, why
    # By address: 6 addresses x 4 ports; by name: 3 unresolved hosts x 4 ports.
    assert len(report.probes()) == (24 if spec.args else 12), why
    assert matches(r"network|DNS|resolv|nothing", report.reasons), why


def test_latency_and_loss(lab_logs: Lab, portprobe_installed: None) -> None:
    """80 ms round trip and 1% loss each way: slow is not blocked."""
    lab_logs.switch("latency")
    report = run_portprobe(lab_logs)
    why = report.summary()
    assert report.exit_code == 0, why
    assert report.verdict["port25"] == "open", why
    assert report.verdict["families"] == _same("open"), why
    probes = [p for p in report.probes() if p["state"] != "dns-error"]
    # A lost SYN costs a 1 s retransmission, never a "filtered": every host that was
    # probed answered, with verified TLS.
    assert {p["state"] for p in probes} == {"open"}, why
    assert all(p["tls"]["verified"] for p in probes), why
    # Each probe paid at least the lab's round trip for its TCP handshake.
    assert min(p["timings_ms"]["connect"] for p in probes) >= 2 * lab_logs.path_delay_ms * 0.95, why
    # A lost DNS datagram may cost a host (portprobe does not retransmit DNS queries
    # within --dns-timeout; ~1 run in 10 here): then it must say so, and the rest of
    # the hosts must still have been probed on both families.
    unresolved = [p for p in report.probes() if p["state"] == "dns-error"]
    if unresolved:
        assert matches(r"DNS", report.reasons), why
    assert len({(p["address"], p["port"]) for p in probes}) >= len(ALL_ENDPOINTS) - 8, why


# -- options that narrow or assert ----------------------------------------------------------


def test_family_flags_split_the_partial_block(lab: Lab, portprobe_installed: None) -> None:
    lab.switch("dropped-v4")
    only_v6 = run_portprobe(lab, "-6", "--ports", "25,587")
    assert (only_v6.exit_code, only_v6.verdict["port25"]) == (0, "open"), only_v6.summary()
    assert {p["family"] for p in only_v6.probes()} == {"ipv6"}, only_v6.summary()
    only_v4 = run_portprobe(lab, "-4", "--ports", "25,587")
    assert (only_v4.exit_code, only_v4.verdict["port25"]) == (3, "blocked"), only_v4.summary()
    assert {p["family"] for p in only_v4.probes()} == {"ipv4"}, only_v4.summary()


def test_targets_by_name_and_address(lab: Lab, portprobe_installed: None) -> None:
    lab.switch("reset")
    targets = ("smtp.alpha.example", PROVIDERS[1].ipv4, PROVIDERS[1].ipv6, "relay.gamma.example")
    args = [x for t in targets for x in ("--target", t)]
    report = run_portprobe(lab, *args)
    why = report.summary()
    assert (report.exit_code, report.verdict["port25"]) == (3, "blocked"), why
    assert {p["state"] for p in report.probes(25)} == {"refused"}, why
    assert {p["host"] for p in report.probes()} >= {"smtp.alpha.example", "relay.gamma.example"}
    # A host named on the command line is checked against its certificate by that name.
    alpha = [p for p in report.probes(587) if p["host"] == "smtp.alpha.example"]
    assert alpha and all(p["tls"]["verified"] for p in alpha), why


def test_expect_assertion(lab: Lab, portprobe_installed: None) -> None:
    lab.switch("reset")
    hit = run_portprobe(lab, "--ports", "25,587", "--expect", "blocked,intercepted")
    assert hit.exit_code == 0, hit.summary()
    miss = run_portprobe(lab, "--ports", "25,587", "--expect", "open")
    assert miss.exit_code == 9, miss.summary()
    assert miss.verdict["port25"] == "blocked", miss.summary()
