"""Generate reports/examples/<verdict>.json from real portprobe runs against loopback servers.

    uv run python reports/make_examples.py

Each scenario starts real servers on 127.0.0.1-3 (aiosmtpd with trustme certificates, a
dnspython DNS server, and raw peers for what no real server does: a masking middlebox, a
blocklisting receiver), runs the installed CLI with ``--json -o``, and checks that the
verdict is the one the example is named after. Nothing leaves the machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dns_server import DNSServer, SilentDNSServer  # noqa: E402
from tests.hostile_servers import Session, ThreadedPeer  # noqa: E402
from tests.servers import Certs, aiosmtpd_server, make_certs  # noqa: E402

EXAMPLES = ROOT / "reports" / "examples"
PROVIDERS = {"alpha": "127.0.0.1", "beta": "127.0.0.2", "gamma": "127.0.0.3"}
ZONE = "\n".join(
    [
        "$ORIGIN test.",
        "$TTL 60",
        "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60",
        "@ NS ns.test.",
        "ns A 127.0.0.1",
        *(f"{name} MX 10 mx.{name}.test.\nmx.{name} A {ip}" for name, ip in PROVIDERS.items()),
    ]
)
BLOCKLISTED = (
    b"554 5.7.1 Service unavailable; Client host [127.0.0.9] blocked using zen.spamhaus.org;"
    b" https://www.spamhaus.org/query/ip/127.0.0.9\r\n"
)


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


def run(verdict: str, args: list[str]) -> None:
    out = EXAMPLES / f"{verdict}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "portprobe", "--json", "-o", str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(out.read_text())
    got = report["verdict"]["port25"]
    status = "ok" if got == verdict else f"MISMATCH (got {got})"
    print(f"{verdict:13} exit {proc.returncode:3}  {len(report['probes']):3} probes  {status}")
    if got != verdict:
        raise SystemExit(f"{verdict}: the scenario produced {got}; stderr: {proc.stderr}")


def main() -> None:
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        certs = make_certs(Path(tmp))
        common = [f"--ca-file={certs.ca_file}", "-4"]
        domains = [a for name in PROVIDERS for a in ("--domain", f"{name}.test")]
        scenarios: list[tuple[str, dict[str, Port25], list[str]]] = [
            ("open", {}, domains),
            ("blocked", dict.fromkeys(PROVIDERS, nothing), domains),
            ("intercepted", dict.fromkeys(PROVIDERS, peer(middlebox)), domains),
            ("restricted", dict.fromkeys(PROVIDERS, peer(blocklisting)), domains),
            ("partial", {"beta": nothing, "gamma": nothing}, domains),
            # One provider, port 25 fails, no other port to compare: too thin to call.
            ("inconclusive", {"alpha": nothing}, ["--domain", "alpha.test", "--ports", "25"]),
        ]
        with DNSServer(zone_text=ZONE, origin="test.") as dns_server:
            for verdict, port25, args in scenarios:
                with providers(port25, certs) as ports:
                    mapping = [f"--port-map={role}={port}" for role, port in ports.items()]
                    run(verdict, [*common, f"--nameserver={dns_server.spec}", *mapping, *args])
        with SilentDNSServer() as silent:
            run("offline", [*common, f"--nameserver={silent.spec}", "--dns-timeout=1", *domains])


if __name__ == "__main__":
    main()
