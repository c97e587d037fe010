"""The default command end to end (issue 12 §5): bare ``portprobe``, the built-in catalog.

Most users type ``portprobe`` with no arguments. The lab DNS answers for the catalog's
real names (MX with the real preference order, A/AAAA) with lab hosts that serve each
host's documented ports only (the rest silently dropped), certificates that verify for
the real names against the lab CA, and greetings in each provider's own style
(``catalog_world``). Then: verdict, exit code, the hosts probed, and that no genuine
host is ever flagged as tampered with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from portprobe.targets.catalog import load_catalog

from .catalog_world import probed_hosts
from .harness import Report, matches, run_portprobe
from .netlab import Lab

pytestmark = pytest.mark.lab


@dataclass(frozen=True)
class Expected:
    exit_code: int
    port25: str
    state25: str  # every port-25 probe
    reasons: str
    anomalies25: frozenset[str] = frozenset()  # every port-25 probe has at least these


EXPECTED = {
    "open": Expected(0, "open", "open", r"genuine"),
    "dropped": Expected(3, "blocked", "filtered", r"dropped"),
    "isp-relay": Expected(
        4,
        "intercepted",
        "open",
        r"middlebox|intercept",
        frozenset({"greeting-shared-across-providers"}),
    ),
    "asa": Expected(
        4,
        "intercepted",
        "open",
        r"XXXXXXXA|\*\*\*\*|masked",
        frozenset({"masked-greeting", "starttls-stripped"}),
    ),
}


@pytest.fixture(scope="module")
def bare_report(lab: Lab, portprobe_installed: None) -> Callable[[str], Report]:
    cache: dict[str, Report] = {}

    def get(name: str) -> Report:
        lab.switch(name)
        if name not in cache:
            cache[name] = run_portprobe(lab, domains=())
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(EXPECTED))
def test_default_catalog_run(name: str, lab: Lab, bare_report: Callable[[str], Report]) -> None:
    expected = EXPECTED[name]
    report = bare_report(name)
    why = report.summary()
    assert not any(a in ("--domain", "--target") for a in report.argv), report.argv
    assert report.exit_code == expected.exit_code, why
    assert report.verdict["port25"] == expected.port25, why
    assert report.verdict["families"] == {"ipv4": expected.port25, "ipv6": expected.port25}, why
    assert matches(expected.reasons, report.reasons), why

    # Exactly the catalog's hosts, at their lab addresses, on their documented and
    # negative ports: the first max_mx MX hosts by preference, never alt2..alt4.
    catalog = load_catalog()
    hosts = {h.name: h for h in probed_hosts(lab.catalog_hosts)}
    negative = {
        (h.name, port) for _p, h in catalog.hosts if not h.mail_domain for port in h.negative_ports
    }
    probed = {(p["host"], p["address"], p["port"]) for p in report.probes()}
    want = {(n, a, port) for n, h in hosts.items() for a in (h.ipv4, h.ipv6) for port in h.ports}
    want |= {(n, a, port) for n, port in negative for a in (hosts[n].ipv4, hosts[n].ipv6)}
    assert probed == want, why
    providers = {p.name for p in catalog.providers}
    for probe in report.probes():
        where = f"{probe['host']} [{probe['address']}]:{probe['port']}\n{why}"
        host = hosts[probe["host"]]
        assert probe["provider"] == host.provider and probe["provider"] in providers, where
        if (probe["host"], probe["port"]) in negative:
            # Documented closed, dropped like the real host drops it: never "answered".
            assert probe["state"] == "filtered", where
            assert probe["anomalies"] == [], where
            continue
        if probe["port"] != 25 or not expected.anomalies25:
            # A genuine host, reached: its own greeting, its real certificate, no flags.
            state = expected.state25 if probe["port"] == 25 else "open"
            assert probe["state"] == state, where
            assert probe["anomalies"] == [], where
            if state == "open":
                assert probe["greeting"]["text"] == host.greeting, where
                assert probe["tls"] is not None and probe["tls"]["verified"] is True, where
            continue
        assert probe["state"] == expected.state25, where
        assert expected.anomalies25 <= set(probe["anomalies"]), where
