"""The tools people use today, run in the lab's client namespace, their output parsed.

The lab tests hold portprobe's picture against these (nmap for open/closed/filtered,
swaks for greetings and EHLO, openssl for TLS); the benchmark scripts time them.
Each function takes the command prefix that enters the client namespace.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

Prefix = Sequence[str]  # e.g. ["ip", "netns", "exec", "pplab123-0-client"]


@dataclass(frozen=True)
class NmapPort:
    state: str  # open | closed | filtered
    reason: str  # syn-ack | conn-refused | no-response | admin-prohibited | …


def nmap_argv(addresses: Sequence[str], ports: Sequence[int], *extra: str) -> list[str]:
    six = any(":" in a for a in addresses)
    return [
        "nmap",
        *(["-6"] if six else []),
        "-sT",  # connect() scan, like portprobe: the kernel's own TCP
        "-Pn",  # no host discovery: the ports are the question
        "-n",  # no reverse DNS
        "-p",
        ",".join(str(p) for p in ports),
        "-oX",
        "-",
        *extra,
        *addresses,
    ]


def nmap_scan(
    prefix: Prefix, addresses: Sequence[str], ports: Sequence[int], timeout: float = 60
) -> dict[tuple[str, int], NmapPort]:
    """One ``nmap -sT -Pn`` per address family; (address, port) → state and reason."""
    families = [[a for a in addresses if ":" not in a], [a for a in addresses if ":" in a]]
    argvs = [[*prefix, *nmap_argv(group, ports)] for group in families if group]
    with ThreadPoolExecutor(len(argvs)) as pool:
        outputs = list(pool.map(lambda argv: _run(argv, timeout), argvs))
    result: dict[tuple[str, int], NmapPort] = {}
    for proc in outputs:
        if proc.returncode != 0:
            raise RuntimeError(f"nmap exited {proc.returncode}: {proc.stderr}")
        for host in ET.fromstring(proc.stdout).iter("host"):
            address = host.find("address")
            assert address is not None
            for port in host.iter("port"):
                state = port.find("state")
                assert state is not None
                key = (address.get("addr", ""), int(port.get("portid", "0")))
                result[key] = NmapPort(state.get("state", ""), state.get("reason", ""))
    return result


@dataclass(frozen=True)
class SwaksResult:
    connected: bool
    error: str | None  # e.g. "Connection refused", "timeout", "Permission denied"
    greeting_code: int | None
    greeting_text: str | None  # text of the last greeting line, after the code
    ehlo: tuple[str, ...]  # EHLO keywords (plain text, before any TLS)
    output: str


_SWAKS_READ = re.compile(r"^<[-*~]+\s+(\d{3})([ -])(.*)$")


def swaks(
    prefix: Prefix,
    server: str,
    port: int,
    *,
    tls_on_connect: bool = False,
    timeout: float = 2,
) -> SwaksResult:
    """``swaks --quit-after EHLO``: the greeting and the EHLO keywords."""
    argv = [
        "swaks",
        "--server",
        server,
        "--port",
        str(port),
        "--quit-after",
        "EHLO",
        "--timeout",
        f"{timeout:g}",
        "--ehlo",
        "lab-client.example",
    ]
    if tls_on_connect:
        argv.append("--tls-on-connect")
    proc = _run([*prefix, *argv], timeout * 4 + 5)
    output = proc.stdout + proc.stderr
    connected = "=== Connected to" in output
    error = None
    if not connected:
        found = re.search(r"^\*\*\*\s+(?:IO::Socket::\S+: )?connect: (.+)$", output, re.M)
        error = found.group(1).strip() if found else output.strip().splitlines()[-1:][0]
    code = text = None
    ehlo: list[str] = []
    phase = "greeting"
    for line in output.splitlines():
        if line.startswith(" -> EHLO") or line.startswith(" -> HELO"):
            phase = "ehlo"
            continue
        if line.startswith(" -> ") or line.startswith(" ~> "):
            phase = "done"
            continue
        read = _SWAKS_READ.match(line)
        if not read:
            continue
        if phase == "greeting":
            code, text = int(read.group(1)), read.group(3)
        elif phase == "ehlo":
            ehlo.append(read.group(3))
    return SwaksResult(connected, error, code, text, tuple(ehlo[1:]), output)


@dataclass(frozen=True)
class OpenSSLResult:
    handshake: bool
    protocol: str | None  # TLSv1.3 …
    verified: bool  # "Verify return code: 0 (ok)" with hostname checking on
    verify_code: str | None
    cert_sha256: str | None  # of the leaf certificate, hex
    output: str


def openssl_s_client(
    prefix: Prefix,
    address: str,
    port: int,
    host: str,
    ca_file: str,
    *,
    starttls: bool,
    timeout: float = 10,
) -> OpenSSLResult:
    """``openssl s_client [-starttls smtp]`` with the lab CA and hostname checking."""
    connect = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    argv = ["openssl", "s_client", "-connect", connect, "-servername", host]
    argv += ["-CAfile", ca_file, "-verify_hostname", host, "-no_ign_eof"]
    if starttls:
        argv += ["-starttls", "smtp"]
    proc = _run([*prefix, *argv], timeout, input="")
    output = proc.stdout + proc.stderr
    protocol = re.search(r"^New, (TLSv[\d.]+|SSLv3), Cipher is", output, re.M)
    code = re.search(r"Verify return code: (\d+ \([^)]*\))", output)
    pem = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", output, re.S)
    sha256 = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.group(0))).hexdigest() if pem else None
    return OpenSSLResult(
        handshake=pem is not None,
        protocol=protocol.group(1) if protocol else None,
        verified=bool(code and code.group(1).startswith("0 ")),
        verify_code=code.group(1) if code else None,
        cert_sha256=sha256,
        output=output,
    )


def _run(
    argv: Sequence[str], timeout: float, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


#: Run in the client namespace with the project's interpreter (dnspython): each query
#: straight to its server, over UDP, the answers as JSON (one process for many queries).
_DNS_QUERY_SCRIPT = """
import json, sys
import dns.exception, dns.message, dns.query, dns.rcode
out = []
for server, name, rdtype, timeout in json.loads(sys.argv[1]):
    try:
        reply = dns.query.udp(dns.message.make_query(name, rdtype), server, timeout=timeout)
    except dns.exception.Timeout:
        out.append({"rcode": "TIMEOUT", "answers": []})
        continue
    answers = [r.to_text() for rrset in reply.answer for r in rrset]
    out.append({"rcode": dns.rcode.to_text(reply.rcode()), "answers": sorted(answers)})
print(json.dumps(out))
"""


@dataclass(frozen=True)
class DnsAnswer:
    rcode: str  # NOERROR | NXDOMAIN | SERVFAIL | … | TIMEOUT
    answers: tuple[str, ...]  # presentation format, sorted (TXT strings keep their quotes)


def dns_queries(
    prefix: Prefix, python: str, queries: Sequence[tuple[str, str, str]], timeout: float = 3
) -> list[DnsAnswer]:
    """(server, name, rdtype) queries from inside the namespace ``prefix`` enters."""
    items = [(server, name, rdtype, timeout) for server, name, rdtype in queries]
    argv = [*prefix, python, "-c", _DNS_QUERY_SCRIPT, json.dumps(items)]
    proc = _run(argv, timeout * len(items) + 10)
    if proc.returncode != 0:
        raise RuntimeError(f"dns queries failed: {proc.stderr}")
    return [DnsAnswer(d["rcode"], tuple(d["answers"])) for d in json.loads(proc.stdout)]


def dns_query(
    prefix: Prefix, python: str, server: str, name: str, rdtype: str, timeout: float = 3
) -> DnsAnswer:
    """One DNS query from inside the namespace ``prefix`` enters (dnspython, over UDP)."""
    return dns_queries(prefix, python, [(server, name, rdtype)], timeout)[0]
