"""Receivers that are slow or that limit, with real Postfix (issue 12 §1, §2).

* ``rate-limited``: every port-25 connection of this client is over the receivers'
  ``smtpd_client_connection_rate_limit``, so Postfix's smtpd itself answers ``421 4.7.0
  <name> Error: too many connections from <address>``: the receivers restrict this
  client; the path is fine (spec: ``restricted``, exit 5, the reason naming the limit).
* ``slow-25``: port 25 to one provider has a ~300 ms round trip, all else is fast. Slow
  is not dropped: that provider's port 25 must never be called ``filtered``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .harness import Report, matches
from .topology import CLIENT_V4, CLIENT_V6, MAIL_PORTS, SLOW_PROVIDER

pytestmark = pytest.mark.lab


def test_rate_limited_is_restricted(scenario_report: Callable[[str], Report]) -> None:
    report = scenario_report("rate-limited")
    why = report.summary()
    assert report.exit_code == 5, why
    assert report.verdict["port25"] == "restricted", why
    assert report.verdict["families"] == {"ipv4": "restricted", "ipv6": "restricted"}, why
    assert matches(r"rate.limit|too many connections", report.reasons), why
    assert not matches(r"blocklist|spamhaus", report.reasons), why
    for probe in report.probes(25):
        where = f"{probe['host']} [{probe['address']}]\n{why}"
        assert probe["state"] == "rejected", where
        client = CLIENT_V6 if probe["family"] == "ipv6" else CLIENT_V4
        assert probe["greeting"]["code"] == 421, where
        assert probe["greeting"]["text"] == (
            f"4.7.0 {probe['host']} Error: too many connections from {client}"
        ), where
        assert "rate-limited" in probe["anomalies"], where
    for probe in report.probes():
        if probe["port"] != 25:
            assert probe["state"] == "open" and probe["anomalies"] == [], why


def test_slow_port_25_is_not_filtered(scenario_report: Callable[[str], Report]) -> None:
    report = scenario_report("slow-25")
    why = report.summary()
    assert report.exit_code == 0, why
    assert report.verdict["port25"] == "open", why
    assert report.verdict["families"] == {"ipv4": "open", "ipv6": "open"}, why
    slow = [
        p for p in report.probes(25) if p["address"] in (SLOW_PROVIDER.ipv4, SLOW_PROVIDER.ipv6)
    ]
    assert len(slow) == 2, why
    for probe in report.probes():
        assert probe["state"] == "open", why
    for probe in slow:
        assert probe["tls"] is not None and probe["tls"]["verified"] is True, why
        # The delay line's floor (150 ms each way), which the probe cannot beat: proof
        # that this probe really crossed the slow path.
        assert probe["timings_ms"]["connect"] >= 295, why
    assert {p["port"] for p in report.probes()} == set(MAIL_PORTS), why
