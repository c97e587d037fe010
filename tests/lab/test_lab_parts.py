"""The lab's own moving parts, without root: the ASA rewriting, netlink framing, scenarios."""

from __future__ import annotations

import ipaddress
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from portprobe.targets.catalog import load_catalog, parse_catalog

from .catalog_world import MX, catalog_hosts, dropped_ports_rules, probed_hosts
from .delayline import NFNL_SUBSYS_QUEUE, NFQA_PACKET_HDR, NFQNL_MSG_PACKET, Queue, _attr, _message
from .interceptors import mask_greeting_line, strip_starttls_line
from .netlab import _internet_rules
from .readiness_world import SERVERS, WORLDS, _wire_suffix, dnsbl_name
from .scenarios import SCENARIOS

REPO = Path(__file__).resolve().parents[2]


def test_asa_masks_the_greeting_text_but_not_the_code() -> None:
    assert mask_greeting_line(b"220 mx.alpha.example ESMTP Postfix\r\n") == (
        b"220 **************** ***** *******\r\n"
    )
    assert mask_greeting_line(b"220-first\n").startswith(b"220-*****")


def test_asa_replaces_starttls_with_same_length_keyword() -> None:
    assert strip_starttls_line(b"250-STARTTLS\r\n") == b"250-XXXXXXXA\r\n"
    assert strip_starttls_line(b"250 starttls\r\n") == b"250 XXXXXXXA\r\n"
    assert strip_starttls_line(b"250-PIPELINING\r\n") == b"250-PIPELINING\r\n"
    assert strip_starttls_line(b"250-STARTTLSX\r\n") == b"250-STARTTLSX\r\n"


def test_delayline_reads_packet_ids_from_netlink_frames() -> None:
    frames = b"".join(
        _message(
            NFQNL_MSG_PACKET, 0, 0, 2, 7, _attr(NFQA_PACKET_HDR, struct.pack("!IHB", pid, 0x800, 1))
        )
        for pid in (41, 42)
    )
    queue = Queue.__new__(Queue)  # the parser needs no socket
    assert queue.packet_ids(frames) == [41, 42]
    assert (NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET) == 0x300


def test_every_scenario_has_a_complete_ruleset() -> None:
    for scenario in SCENARIOS.values():
        for family in (4, 6):
            rules = scenario.ruleset(family)
            assert rules.count("COMMIT") == 2
            assert "NFQUEUE --queue-num 1" in rules  # ICMP errors always go through the delay


def test_cli_lists_scenarios() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.lab", "scenarios"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert [line.split()[0] for line in proc.stdout.splitlines()] == list(SCENARIOS)


def test_catalog_world_follows_the_catalog() -> None:
    catalog = load_catalog()
    hosts = catalog_hosts(catalog)
    names = {h.name for h in hosts}
    # Every host entry of the catalog, and every MX of its mail domains, has a lab host.
    for _provider, entry in catalog.hosts:
        if entry.mail_domain:
            assert {mx for _pref, mx in MX[entry.name]} <= names
        else:
            assert entry.name in names
    # Only the first max_mx MX hosts by preference get listeners (the rest: DNS only).
    gmail = [h for h in hosts if h.mx_of == "gmail.com"]
    assert [h.name for h in probed_hosts(tuple(gmail))] == [
        "gmail-smtp-in.l.google.com",
        "alt1.gmail-smtp-in.l.google.com",
    ][: catalog.max_mx]
    # Lab addresses only, each host its own.
    assert len({h.ipv4 for h in hosts}) == len(hosts) == len({h.ipv6 for h in hosts})
    for h in hosts:
        assert ipaddress.ip_address(h.ipv4) in ipaddress.ip_network("203.0.113.0/24")
        assert ipaddress.ip_address(h.ipv6) in ipaddress.ip_network("2001:db8::/32")
    # The catalog's greeting expectations hold for the lab's greetings, and the
    # certificates cover the documented names.
    for provider, entry in catalog.hosts:
        lab_hosts = [
            h for h in probed_hosts(hosts) if h.name == entry.name or h.mx_of == entry.name
        ]
        for h in lab_hosts:
            assert h.provider == provider.name
            if entry.expect and entry.expect.greeting_pattern:
                assert re.search(entry.expect.greeting_pattern, h.greeting or "", re.I)
            if entry.expect and entry.expect.cert_name:
                assert entry.expect.cert_name in h.cert_names
    # Undocumented ports (and negative ones) are dropped, documented ones never.
    postmark = next(h for h in hosts if h.name == "smtp.postmarkapp.com")
    rules = dropped_ports_rules((postmark,), 4)
    assert rules == [f"-d {postmark.ipv4} -p tcp --dport 465 -j DROP"]


def test_catalog_world_refuses_a_domain_it_cannot_serve() -> None:
    text = (
        'schema = 1\n[[provider]]\nname = "x"\ndescription = "x"\n[[provider.host]]\n'
        'domain = "unknown-mail.example.net"\nports = [25]\nsource = "https://example.net"\n'
    )
    with pytest.raises(LookupError, match=r"unknown-mail\.example\.net"):
        catalog_hosts(parse_catalog(text))


def test_readiness_worlds_use_known_servers_and_exact_qname_suffixes() -> None:
    assert _wire_suffix("zen.spamhaus.org") == "|03|zen|08|spamhaus|03|org|00|"
    assert dnsbl_name("198.18.1.2") == "2.1.18.198.zen.spamhaus.org"
    assert dnsbl_name("2001:db8:1::2").startswith("2.0.0.0.")
    assert dnsbl_name("2001:db8:1::2").endswith(".1.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org")
    for world in WORLDS.values():
        for name in (world.zones, world.whoami_v4, world.whoami_v6):
            assert name is None or name in SERVERS
        for family in (4, 6):
            rules = world.nat_rules(family) + world.filter_rules(family)
            if world.zones is None:
                # Nothing answers: every readiness query is dropped, none redirected.
                assert not world.nat_rules(family)
                assert any("--hex-string" in r for r in rules)
            else:
                assert all("DNAT" in r for r in world.nat_rules(family))
                assert not world.filter_rules(family)
    assert len({s.ipv4 for s in SERVERS.values()}) == len(SERVERS)


def test_every_scenario_internet_ruleset_is_complete() -> None:
    for scenario in SCENARIOS.values():
        for world in WORLDS.values():
            for family in (4, 6):
                rules = _internet_rules(scenario, world, family)
                assert rules.count("COMMIT") == 2
                assert ("--to-destination" in rules) == (
                    scenario.blocklisted
                    or scenario.rate_limited
                    or world.zones is not None
                    or any(w is not None for w in (world.whoami_v4, world.whoami_v6))
                )
