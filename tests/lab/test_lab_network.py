"""The lab's own promises: confined addresses, real DNS, real delays, clean teardown."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from . import netns
from .netlab import Lab, remove_stale
from .topology import (
    DOMAINS,
    LAB_PREFIXES_V4,
    LAB_PREFIXES_V6,
    PROVIDERS,
    RESOLVER_V4,
    RESOLVER_V6,
)

pytestmark = pytest.mark.lab

LAB_NETWORKS = [ipaddress.ip_network(p) for p in (*LAB_PREFIXES_V4, *LAB_PREFIXES_V6)]
REPO = Path(__file__).resolve().parents[2]


def _in_lab(network: str) -> bool:
    net = ipaddress.ip_network(network, strict=False)
    if net.is_link_local or net.is_multicast or net.is_loopback:
        return True
    return any(net.version == lab.version and net.subnet_of(lab) for lab in LAB_NETWORKS)  # type: ignore[arg-type]


def _client_python(lab: Lab, code: str, timeout: float = 60) -> str:
    proc = lab.run_client([sys.executable, "-c", code], timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_routes_and_addresses_stay_in_the_documentation_ranges(lab: Lab) -> None:
    lab.switch("open")
    for ns in (lab.client, lab.router, lab.internet):
        for family in ("-4", "-6"):
            for table in ("main", "local"):
                routes = json.loads(
                    netns.run(
                        ["ip", "-n", ns.name, "-j", family, "route", "show", "table", table]
                    ).stdout
                )
                for route in routes:
                    dst = route["dst"]
                    if dst == "default":
                        pytest.fail(f"{ns.name} has a default route: {route}")
                    if "/" not in dst:
                        dst += "/32" if family == "-4" else "/128"
                    assert _in_lab(dst), f"{ns.name}: route outside the lab ranges: {route}"
        for link in json.loads(netns.run(["ip", "-n", ns.name, "-j", "addr"]).stdout):
            for addr in link.get("addr_info", []):
                assert _in_lab(f"{addr['local']}/{addr['prefixlen']}"), (ns.name, addr)


def test_namespaces_are_named_after_this_run(lab: Lab) -> None:
    names = {lab.client.name, lab.router.name, lab.internet.name}
    assert len(names) == 3
    assert all(netns.namespace_owner(n) == os.getpid() for n in names)
    assert names <= set(netns.existing_namespaces())


def test_dns_serves_mx_a_and_aaaa_on_both_families(lab: Lab) -> None:
    lab.switch("open")
    code = f"""
import dns.resolver, json
out = {{}}
for server in ({RESOLVER_V4!r}, {RESOLVER_V6!r}):
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [server]
    r.lifetime = 5
    for domain in {list(DOMAINS)!r}:
        mx = [str(x.exchange).rstrip('.') for x in r.resolve(domain, 'MX')]
        out[server + ' ' + domain] = [mx] + [
            sorted(x.to_text() for x in r.resolve(mx[0], t)) for t in ('A', 'AAAA')
        ]
    try:
        r.resolve('nothing-here.example', 'A')
        out[server + ' nx'] = 'answered'
    except dns.resolver.NXDOMAIN:
        out[server + ' nx'] = 'NXDOMAIN'
print(json.dumps(out))
"""
    answers = json.loads(_client_python(lab, code))
    for server in (RESOLVER_V4, RESOLVER_V6):
        for provider in PROVIDERS:
            assert answers[f"{server} {provider.domain}"] == [
                [provider.mx],
                [provider.ipv4],
                [provider.ipv6],
            ]
        assert answers[f"{server} nx"] == "NXDOMAIN"


_CONNECT_OUTCOMES = """
import socket, sys, time, json
out = []
for family, address in ((socket.AF_INET, {v4!r}), (socket.AF_INET6, {v6!r})):
    for _ in range({n}):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(3)
        start = time.monotonic()
        try:
            s.connect((address, {port}))
            outcome = 'connected'
        except OSError as exc:
            outcome = exc.errno
        out.append([family.name, outcome, time.monotonic() - start])
        s.close()
print(json.dumps(out))
"""


def test_every_icmp_error_reaches_connect(lab: Lab) -> None:
    """Prohibited: each connect fails at once with the ICMP's errno, none times out
    (the router's delay line makes ICMP arrive after connect() waits for it)."""
    lab.switch("prohibited")
    alpha = PROVIDERS[0]
    code = _CONNECT_OUTCOMES.format(v4=alpha.ipv4, v6=alpha.ipv6, n=25, port=25)
    outcomes = json.loads(_client_python(lab, code))
    import errno

    expected = {"AF_INET": errno.EHOSTUNREACH, "AF_INET6": errno.EACCES}
    assert {(f, e) for f, e, _ in outcomes} == set(expected.items())
    assert max(t for _, _, t in outcomes) < 1.0  # never a SYN retransmission


def test_latency_scenario_adds_the_round_trip(lab: Lab) -> None:
    lab.switch("latency")
    alpha = PROVIDERS[0]
    code = _CONNECT_OUTCOMES.format(v4=alpha.ipv4, v6=alpha.ipv6, n=10, port=587)
    outcomes = json.loads(_client_python(lab, code))
    connected = [t for _, outcome, t in outcomes if outcome == "connected"]
    assert len(connected) == len(outcomes)
    # SYN out and SYN-ACK back each wait path_delay_ms in the router.
    assert min(connected) >= 2 * lab.path_delay_ms / 1000 * 0.95
    lab.switch("open")
    fast = json.loads(_client_python(lab, code))
    assert statistics.median(t for _, _, t in fast) < lab.path_delay_ms / 1000


def test_switching_back_restores_everything(lab: Lab) -> None:
    alpha = PROVIDERS[0]
    code = _CONNECT_OUTCOMES.format(v4=alpha.ipv4, v6=alpha.ipv6, n=1, port=25)
    for name in ("link-down", "open", "offline", "open", "asa", "open"):
        lab.switch(name)
    outcomes = json.loads(_client_python(lab, code))
    assert [o for _, o, _ in outcomes] == ["connected", "connected"]


def _lab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.lab", *args]


def test_cli_run_builds_a_second_lab_and_leaves_nothing(lab: Lab) -> None:
    """`python -m tests.lab run` beside the session's lab: its own names, then nothing."""
    proc = subprocess.run(
        _lab_command("run", "--scenario", "reset", "--", "ip", "-o", "addr", "show", "up0"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "198.18.1.2" in proc.stdout
    found = re.search(r"^\+ \[(pplab\d+-\d+)-client\]", proc.stderr, re.M)
    assert found, proc.stderr
    stem = found.group(1)
    assert netns.namespace_owner(stem) not in (None, os.getpid())
    assert not [n for n in netns.existing_namespaces() if n.startswith(stem + "-")]
    assert not list(netns.NETNS_ETC.glob(f"{stem}-*"))
    assert not list(Path(tempfile.gettempdir()).glob(f"{stem}-*"))


def test_a_killed_lab_is_cleaned_up_by_the_next(lab: Lab) -> None:
    """SIGKILL skips every finalizer; the next start removes what the dead run left."""
    up = subprocess.Popen(_lab_command("up", "--json"), cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert up.stdout is not None
        info = json.loads("".join(iter(up.stdout.readline, "}\n")) + "}")
        names = {info["client"], info["router"], info["internet"]}
        assert names <= set(netns.existing_namespaces())
        pids = {pid for n in names for pid in netns.Namespace(n).pids()}
        assert pids, "the lab runs its services inside its namespaces"
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait()
    removed = remove_stale()
    assert names <= set(removed)
    assert not Path(info["workdir"]).exists()
    assert not names & set(netns.existing_namespaces())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
