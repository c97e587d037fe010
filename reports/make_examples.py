"""Generate reports/examples/<verdict>.json from real portprobe runs against loopback servers.

    uv run python reports/make_examples.py

Each scenario starts real servers on 127.0.0.1-3 (aiosmtpd with trustme certificates, and
raw peers for what no real server does: a masking middlebox, a blocklisting receiver) and
a real dnsmasq on a loopback address that is the run's only DNS server: it holds the MX
and A records of the three providers, the reverse and forward records of the stated
public address (a documentation address, 198.51.100.7 = mail.example.net) and Spamhaus
ZEN's own test entries, and forwards nowhere. It then runs the installed CLI with
``--json -o``, ``--public-ip`` (so readiness is checked without any whoami query) and
``--trace=never`` (loopback has no path to trace: ``path`` stays empty),
``--sysfs`` pointing at a fake DMI tree (so each example shows a platform and its
advice), under an environment holding no CI variables, and checks that the verdict, the
readiness and the platform are the ones the scenario is for. The one thing a run cannot
make deterministic, this machine's host name, is set to ``null`` in
``vantage.hostname`` (so ``portprobe merge reports/examples`` names each row by its
file). Nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dns_server import SilentDNSServer  # noqa: E402
from tests.dnsmasq_server import run_dnsmasq  # noqa: E402
from tests.hostile_servers import Session, ThreadedPeer  # noqa: E402
from tests.servers import Certs, aiosmtpd_server, make_certs  # noqa: E402

EXAMPLES = ROOT / "reports" / "examples"
PROVIDERS = {"alpha": "127.0.0.1", "beta": "127.0.0.2", "gamma": "127.0.0.3"}
SYSFS = Path("tests") / "fixtures" / "sysfs"  # relative: the report records the path
#: This machine's public address as the examples state it (RFC 5737 TEST-NET-2), its PTR
#: name, and the name Spamhaus ZEN is asked for it (the address reversed under the zone).
PUBLIC_IP, PTR_NAME = "198.51.100.7", "mail.example.net"
ZEN_QUERY = ".".join(reversed(PUBLIC_IP.split("."))) + ".zen.spamhaus.org"
#: A receiver quoting the client address it saw: the public one, as a real receiver would.
BLOCKLISTED = (
    f"554 5.7.1 Service unavailable; Client host [{PUBLIC_IP}] blocked using"
    f" zen.spamhaus.org; https://www.spamhaus.org/query/ip/{PUBLIC_IP}\r\n"
).encode()
HOSTNAME = None  # replaces socket.gethostname() in vantage.hostname
#: The only variables the CLI sees: none names a CI system or a platform, whatever runs this.
KEPT_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")


def dns_records(*, pbl_listed: bool) -> list[str]:
    """dnsmasq options: the providers' MX and A records, the public address's PTR and
    forward record, and Spamhaus ZEN's documented test entry (127.0.0.2 is always listed
    as SBL); ``pbl_listed`` also lists the public address in the PBL (127.0.0.11: "end-user
    address, should not send mail directly"). ``--local`` makes every other name under
    these domains NXDOMAIN, as the real zone answers for an address it does not list."""
    records = [
        "--local=/example.net/",
        "--local=/spamhaus.org/",
        f"--ptr-record={'.'.join(reversed(PUBLIC_IP.split('.')))}.in-addr.arpa,{PTR_NAME}",
        f"--host-record={PTR_NAME},{PUBLIC_IP}",
        "--host-record=2.0.0.127.zen.spamhaus.org,127.0.0.2",
    ]
    for name, ip in PROVIDERS.items():
        records += [
            f"--mx-host={name}.test,mx.{name}.test,10",
            f"--host-record=mx.{name}.test,{ip}",
        ]
    if pbl_listed:
        records.append(f"--host-record={ZEN_QUERY},127.0.0.11")
    return records


def ports_free_everywhere() -> dict[int, int]:
    """One port number per role, free on every provider address."""
    chosen: dict[int, int] = {}
    for role in (25, 465, 587, 2525):
        while True:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = int(probe.getsockname()[1])
            try:
                for ip in PROVIDERS.values():
                    with socket.socket() as s:
                        s.bind((ip, port))
            except OSError:
                continue
            if port not in chosen.values():
                chosen[role] = port
                break
    return chosen


def middlebox(conn: socket.socket, session: Session) -> None:
    """Cisco ASA-style ESMTP inspection: masked greeting, STARTTLS overwritten."""
    conn.sendall(b"220 ******************************************\r\n")
    buf = b""
    while True:
        data = conn.recv(4096)
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            verb = line.strip().split(b" ")[0].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-Hello\r\n250-PIPELINING\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 Bye\r\n")
                return
            else:
                conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")


def blocklisting(conn: socket.socket, session: Session) -> None:
    conn.sendall(BLOCKLISTED)
    conn.recv(4096)  # the polite QUIT


Port25 = Callable[[ExitStack, str, int, Certs, str], None]


def genuine(stack: ExitStack, ip: str, port: int, certs: Certs, name: str) -> None:
    ctx = certs.server_context(certs.ca.issue_cert(f"mx.{name}.test", ip))
    stack.enter_context(
        aiosmtpd_server(hostname=f"mx.{name}.test", starttls=ctx, address=ip, port=port)
    )


def nothing(stack: ExitStack, ip: str, port: int, certs: Certs, name: str) -> None:
    return None  # closed: the kernel answers with RST


def peer(behaviour: Callable[[socket.socket, Session], None]) -> Port25:
    def start(stack: ExitStack, ip: str, port: int, certs: Certs, name: str) -> None:
        stack.enter_context(ThreadedPeer(behaviour, host=ip, port=port))

    return start


@contextmanager
def providers(port25: dict[str, Port25], certs: Certs) -> Iterator[dict[int, int]]:
    ports = ports_free_everywhere()
    with ExitStack() as stack:
        for name, ip in PROVIDERS.items():
            host = f"mx.{name}.test"
            ctx = certs.server_context(certs.ca.issue_cert(host, ip))
            port25.get(name, genuine)(stack, ip, ports[25], certs, name)
            stack.enter_context(
                aiosmtpd_server(hostname=host, implicit_tls=ctx, address=ip, port=ports[465])
            )
            for role in (587, 2525):
                stack.enter_context(
                    aiosmtpd_server(hostname=host, starttls=ctx, address=ip, port=ports[role])
                )
        yield ports


@dataclass(frozen=True)
class Scenario:
    verdict: str  # the example's name, and the verdict the run must reach
    port25: dict[str, Port25]  # provider -> what answers its port 25 (default: genuine)
    args: list[str]
    platform: str  # the fake DMI tree under tests/fixtures/sysfs, and what must be detected
    ready: str  # readiness.ready the run must report
    pbl_listed: bool = False  # the public address is in Spamhaus PBL
    detected: str | None = None  # environment.platform when it is not the tree's name


MTA_ARGS = [
    "--mta=postfix",
    "--postfix-config=tests/fixtures/mta/postfix-etc",
    "--mail-log=tests/fixtures/mta/postfix-maillog.txt",
    "--queue-destinations=0",
]


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in KEPT_ENVIRONMENT}


def run(scenario: Scenario, args: list[str]) -> None:
    verdict = scenario.verdict
    out = EXAMPLES / f"{verdict}.json"
    sysfs = SYSFS / scenario.platform
    argv = [sys.executable, "-m", "portprobe", "--json", "-o", str(out)]
    # Loopback has no hops to trace (every address is one hop away, its own host), so the
    # examples' path is empty: a trace would only place every block at the destination.
    argv += [*args, f"--public-ip={PUBLIC_IP}", f"--sysfs={sysfs}", "--trace=never"]
    if not any(a.startswith("--mta=") for a in args):
        argv.append("--mta=none")  # this machine's own MTA stays out of the examples
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, cwd=ROOT, env=clean_environment()
    )
    report = json.loads(out.read_text())
    # The one edit: the report takes socket.gethostname() only there (without --redact).
    report["vantage"]["hostname"] = HOSTNAME
    out.write_text(json.dumps(report, indent=2, ensure_ascii=True) + "\n")  # as the CLI does
    readiness, environment = report["readiness"] or {}, report["environment"] or {}
    got = (
        report["verdict"]["port25"],
        readiness.get("ready"),
        environment.get("platform"),
        environment.get("ci"),
    )
    want = (verdict, scenario.ready, scenario.detected or scenario.platform, None)
    status = "ok" if got == want else f"MISMATCH (got {got}, want {want})"
    print(
        f"{verdict:13} exit {proc.returncode:3}  {len(report['probes']):3} probes"
        f"  ready {got[1]}  on {got[2]}  {status}"
    )
    if got != want:
        raise SystemExit(f"{verdict}: the scenario produced {got}; stderr: {proc.stderr}")


def main() -> None:
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        certs = make_certs(Path(tmp))
        common = [f"--ca-file={certs.ca_file}", "-4"]
        domains = [a for name in PROVIDERS for a in ("--domain", f"{name}.test")]
        every = dict.fromkeys(PROVIDERS)
        scenarios = [
            # A dedicated server whose provider blocks 25 by default, measured open: the
            # environment notes compare the documented policy with the measurement.
            Scenario("open", {}, domains, "hetzner", "yes"),
            # AWS names its own next step: the request form to remove the limitation. This
            # machine's Postfix (the real postconf on a fixture main.cf, the recorded log of
            # tests/fixtures/mta) waits on port 25: its relayhost lines replace the generic step.
            Scenario("blocked", {n: nothing for n in every}, [*domains, *MTA_ARGS], "aws", "yes"),
            # A physical server in an office behind a Cisco ASA: no cloud to name.
            Scenario(
                "intercepted",
                {n: peer(middlebox) for n in every},
                domains,
                "baremetal",
                "yes",
                detected="unknown",
            ),
            # Receivers quote Spamhaus, and the address really is in the PBL: ready "no".
            Scenario(
                "restricted",
                {n: peer(blocklisting) for n in every},
                domains,
                "digitalocean",
                "no",
                pbl_listed=True,
            ),
            Scenario("partial", {"beta": nothing, "gamma": nothing}, domains, "azure", "yes"),
            # One provider, port 25 fails, no other port to compare: too thin to call.
            Scenario(
                "inconclusive",
                {"alpha": nothing},
                ["--domain", "alpha.test", "--ports", "25"],
                "gcp",
                "yes",
            ),
        ]
        for scenario in scenarios:
            log = Path(tmp) / f"dnsmasq-{scenario.verdict}.log"
            records = dns_records(pbl_listed=scenario.pbl_listed)
            with run_dnsmasq(records, log) as dns, providers(scenario.port25, certs) as ports:
                nameserver = f"--nameserver={dns.address}:{dns.port}"
                mapping = [f"--port-map={role}={port}" for role, port in ports.items()]
                run(scenario, [*common, nameserver, *mapping, *scenario.args])
        # No DNS answer at all: readiness cannot look anything up either ("unknown").
        offline = Scenario("offline", {}, domains, "vultr", "unknown")
        with SilentDNSServer() as silent:
            args = [*common, f"--nameserver={silent.spec}", "--dns-timeout=1", *domains]
            run(offline, args)


if __name__ == "__main__":
    main()
