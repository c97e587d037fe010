"""Readiness wired into the command: real dnsmasq on loopback as the only DNS server.

The probes go to loopback aiosmtpd servers; ``--public-ip`` states the address (a
documentation address), so the PTR, forward and DNSBL lookups are real queries to the
test's own dnsmasq, and nothing leaves the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dnsmasq_server import DnsmasqServer, dnsmasq_binary, run_dnsmasq
from tests.servers import aiosmtpd_server, closed_port

pytestmark = pytest.mark.skipif(dnsmasq_binary() is None, reason="dnsmasq is not installed")

CLEAN, NO_PTR = "198.51.100.7", "198.51.100.8"
LOG: dict[str, Path] = {}  # dnsmasq's --log-queries file


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsmasqServer]:
    records = [
        "--local=/spamhaus.org/",  # zen.spamhaus.org: NXDOMAIN for what it does not hold
        "--ptr-record=7.100.51.198.in-addr.arpa,mail.clean.test",
        f"--host-record=mail.clean.test,{CLEAN}",
        # Spamhaus' own test entries: 127.0.0.2 listed (SBL), 127.0.0.1 not.
        "--host-record=2.0.0.127.zen.spamhaus.org,127.0.0.2",
    ]
    with run_dnsmasq(
        records, LOG.setdefault("path", tmp_path_factory.mktemp("dns") / "log")
    ) as server:
        yield server


@pytest.fixture(scope="module")
def host() -> Iterator[list[str]]:
    with aiosmtpd_server() as p587:
        yield [
            "--target=127.0.0.1",
            "-4",
            "--ports=25,587",
            f"--port-map=25={closed_port()}",
            f"--port-map=587={p587}",
        ]


def portprobe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portprobe", *args], capture_output=True, text=True, timeout=60
    )


def ns(server: DnsmasqServer) -> str:
    return f"--nameserver={server.address}:{server.port}"


def test_a_clean_stated_address_is_ready(dnsmasq: DnsmasqServer, host: list[str]) -> None:
    proc = portprobe(*host, ns(dnsmasq), f"--public-ip={CLEAN}", "--json", "--require-ready")
    report = json.loads(proc.stdout)
    readiness = report["readiness"]
    assert readiness["ready"] == "yes", readiness["reasons"]
    assert [p["iprev"] for p in readiness["ptr"]] == ["pass"]
    assert {d["status"] for d in readiness["dnsbl"]} == {"not-listed"}
    assert report["vantage"]["public_addresses"] == {"ipv4": [CLEAN]}
    assert "assertion failed" not in proc.stderr


def test_no_ptr_fails_require_ready_with_exit_9(dnsmasq: DnsmasqServer, host: list[str]) -> None:
    proc = portprobe(*host, ns(dnsmasq), f"--public-ip={NO_PTR}", "--json", "--require-ready")
    assert proc.returncode == 9, proc.stderr
    report = json.loads(proc.stdout)
    assert report["readiness"]["ready"] == "no"
    assert report["readiness"]["ptr"][0]["iprev"] == "permerror"
    assert "assertion failed: mail readiness is no, expected yes" in proc.stderr


def test_no_readiness_sends_no_query(dnsmasq: DnsmasqServer, host: list[str]) -> None:
    log = LOG["path"]
    portprobe(*host, ns(dnsmasq), f"--public-ip={CLEAN}", "--json")  # the log does fill up...
    with_readiness = log.read_text()
    assert "7.100.51.198" in with_readiness
    proc = portprobe(*host, ns(dnsmasq), f"--public-ip={CLEAN}", "--json", "--no-readiness")
    assert json.loads(proc.stdout)["readiness"] is None
    assert log.read_text() == with_readiness  # ...but not with --no-readiness


def test_loopback_only_run_skips_readiness_and_says_so(host: list[str]) -> None:
    report = json.loads(portprobe(*host, "--json").stdout)
    assert report["readiness"] is None
    assert any("Mail readiness was not checked" in n for n in report["notes"])


def test_redact_hides_the_stated_address_everywhere(
    dnsmasq: DnsmasqServer, host: list[str]
) -> None:
    for fmt in ("json", "table", "markdown", "junit"):
        proc = portprobe(*host, ns(dnsmasq), f"--public-ip={CLEAN}", f"--format={fmt}", "--redact")
        assert proc.stdout, proc.stderr
        assert CLEAN not in proc.stdout and "mail.clean.test" not in proc.stdout, fmt


def test_bad_readiness_input_is_one_line_exit_2(host: list[str]) -> None:
    for bad in (["--public-ip=not-an-ip"], ["--dnsbl=not a zone"]):
        proc = portprobe(*host, *bad)
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("portprobe: error:")
