"""dnsmasq as the lab's only DNS server: MX, A and AAAA for the lab domains, no upstream.

(The readiness zones it forwards to other dnsmasq instances in the lab: readiness_world.)

``--no-resolv --no-hosts --conf-file=/dev/null`` keeps it from reading anything of the
machine's, and ``--local=/example/`` makes it answer NXDOMAIN for any other ``.example``
name instead of forwarding (it has nowhere to forward to anyway).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .netns import Namespace
from .topology import (
    ECHO_DOMAIN,
    ECHO_MX,
    ECHO_V4,
    ECHO_V6,
    ISP_RELAY_NAME,
    PROVIDERS,
    RESOLVER_V4,
    RESOLVER_V6,
    ROUTER_CLIENT_SIDE_V4,
    ROUTER_CLIENT_SIDE_V6,
)


def dnsmasq_binary() -> str | None:
    return shutil.which("dnsmasq") or (
        "/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None
    )


def dnsmasq_argv(binary: str, log_file: Path, extra: Sequence[str] = ()) -> list[str]:
    argv = [
        binary,
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        f"--listen-address={RESOLVER_V4}",
        f"--listen-address={RESOLVER_V6}",
        "--port=53",
        "--user=root",
        "--pid-file=",
        # Authoritative for these: a name the lab does not know is NXDOMAIN, never asked
        # elsewhere (the catalog's real names live under com/net/org).
        "--local=/example/com/net/org/",
        "--cache-size=0",
        "--log-queries",
        f"--log-facility={log_file}",
    ]
    for provider in PROVIDERS:
        names = ",".join(provider.names)
        argv.append(f"--host-record={names},{provider.ipv4},{provider.ipv6}")
        argv.append(f"--mx-host={provider.domain},{provider.mx},10")
    relay = f"{ISP_RELAY_NAME},{ROUTER_CLIENT_SIDE_V4},{ROUTER_CLIENT_SIDE_V6}"
    argv.append(f"--host-record={relay}")
    argv.append(f"--host-record={ECHO_MX},{ECHO_V4},{ECHO_V6}")
    argv.append(f"--mx-host={ECHO_DOMAIN},{ECHO_MX},10")
    return [*argv, *extra]


def start_dnsmasq(
    ns: Namespace, directory: Path, extra: Sequence[str] = (), name: str = "dnsmasq"
) -> subprocess.Popen[bytes]:
    binary = dnsmasq_binary()
    if binary is None:
        raise FileNotFoundError("dnsmasq")
    argv = dnsmasq_argv(binary, directory / f"{name}.log", extra)
    return ns.popen(argv, log=directory / f"{name}.out")
