"""The lab itself: namespaces, links, addresses, routes, services, scenarios, teardown.

    with Lab() as lab:                 # seconds: three namespaces, Postfix, dnsmasq …
        lab.switch("dropped")          # milliseconds: a rules swap in the router
        proc = lab.run_client([...])   # any command, inside the client namespace

Everything the lab makes is named after the creating process's pid (``pplab<pid>-<n>-…``)
so two runs never collide, and everything is undone by :meth:`Lab.down` — called by the
context manager, by ``atexit`` and on SIGTERM/SIGHUP — and by
:func:`netns.remove_stale_namespaces` for the leftovers of a run that was SIGKILLed.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from . import netns
from .catalog_world import (
    CatalogLabHost,
    catalog_hosts,
    catalog_postfix,
    dnsmasq_records,
    dropped_ports_rules,
)
from .dnsmasq import dnsmasq_binary, start_dnsmasq
from .exim import exim_unavailable, start_exim
from .netns import LabError, Namespace
from .pki import LabPKI, make_pki
from .postfix import Listener, PostfixInstance, postfix_available, rmtree, warm_up
from .readiness_world import SERVERS, WORLDS, World, main_dnsmasq_args, server_argv
from .scenarios import CUSTOMER_IF, SCENARIOS, UPLINK_IF, Scenario
from .topology import (
    ASA_PROXY_PORT,
    BLOCKLIST_PORT,
    CLIENT_V4,
    CLIENT_V6,
    ECHO_MX,
    ECHO_V4,
    ECHO_V6,
    ICMP_DELAY_QUEUE,
    INTERNET_V4,
    INTERNET_V6,
    ISP_RELAY_NAME,
    ISP_RELAY_PORT,
    LAB_PREFIXES_V4,
    LAB_PREFIXES_V6,
    MAIL_PORTS,
    PATH_DELAY_QUEUE,
    PROVIDERS,
    RATE_LIMIT_PORT,
    READINESS_UPSTREAM_V4,
    RESOLVER_V4,
    RESOLVER_V6,
    ROUTER_CLIENT_SIDE_V4,
    ROUTER_CLIENT_SIDE_V6,
    ROUTER_INTERNET_SIDE_V4,
    ROUTER_INTERNET_SIDE_V6,
    SLOW_25_QUEUE,
    WHOAMI_SERVERS,
)

CLIENT_IF = "up0"  # the client's uplink
INTERNET_IF = "isp0"  # the internet's link to the router

#: How long the ICMP errors the router sends are held (see delayline's docstring).
ICMP_ERROR_DELAY_MS = 5
#: The "latency" scenario: per direction, so the round trip gains twice this.
PATH_DELAY_MS = 40
PATH_LOSS = 0.01
#: The "slow-25" scenario: port 25 of one provider, per direction (~300 ms round trip).
SLOW_25_DELAY_MS = 150

#: Bound for every service to come up (they take ~0.1-0.5 s).
READY_TIMEOUT = 15.0

_COUNTER = itertools.count()


def _python_module_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"tests.lab.{module}", *args]


def lab_unavailable() -> str | None:
    """Why the lab cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "ss", "iptables-restore", "ip6tables-restore", "conntrack", "sysctl"):
        if not any(Path(d, tool).exists() for d in [*os.get_exec_path(), "/usr/sbin", "/sbin"]):
            return f"{tool} not found"
    if netns.run(["ip", "netns", "list"], check=False).returncode != 0:
        return "`ip netns` does not work"
    if dnsmasq_binary() is None:
        return "dnsmasq not installed"
    return postfix_available()


@dataclass(frozen=True)
class LabInfo:
    """What a user or script needs to aim a tool at the lab (JSON round-trips)."""

    client: str
    router: str
    internet: str
    workdir: str
    ca_file: str
    nameservers: tuple[str, ...]
    owner_pid: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "router": self.router,
            "internet": self.internet,
            "workdir": self.workdir,
            "ca_file": self.ca_file,
            "nameservers": list(self.nameservers),
            "owner_pid": self.owner_pid,
            "domains": [p.domain for p in PROVIDERS],
            "hosts": {
                p.key: {"names": list(p.names), "ipv4": p.ipv4, "ipv6": p.ipv6} for p in PROVIDERS
            },
            "echo": {"names": [ECHO_MX], "ipv4": ECHO_V4, "ipv6": ECHO_V6},
            "catalog_hosts": {
                h.name: {"ipv4": h.ipv4, "ipv6": h.ipv6, "ports": list(h.ports)}
                for h in catalog_hosts()
            },
            "readiness_worlds": list(WORLDS),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabInfo:
        return cls(
            client=data["client"],
            router=data["router"],
            internet=data["internet"],
            workdir=data["workdir"],
            ca_file=data["ca_file"],
            nameservers=tuple(data["nameservers"]),
            owner_pid=data["owner_pid"],
        )


def apply_scenario(info: LabInfo, scenario: Scenario, world: World | None = None) -> None:
    """Put the lab into ``scenario`` (the ISP's rules) and readiness ``world`` (default
    "clean"): stateless, so another process can do it too."""
    world = world or WORLDS["clean"]
    router, client = Namespace(info.router), Namespace(info.client)
    internet = Namespace(info.internet)
    internet.run(["iptables-restore"], input=_internet_rules(scenario, world, 4))
    internet.run(["ip6tables-restore"], input=_internet_rules(scenario, world, 6))
    router.run(["iptables-restore"], input=scenario.ruleset(4))
    router.run(["ip6tables-restore"], input=scenario.ruleset(6))
    # REDIRECTs and drops apply to new connections; forget the old ones.
    for ns in (router, internet):
        for family in ("ipv4", "ipv6"):
            ns.run(["conntrack", "-F", "-f", family], check=False)
    if scenario.client_link_down:
        client.ip([f"link set {CLIENT_IF} down"])
    else:
        v6_routes = [f"route del {p}" for p in LAB_PREFIXES_V6]
        client.ip(_client_uplink_up() + ([] if scenario.client_ipv6_route else v6_routes))
    if scenario.rate_limited:
        _use_up_rate_limit(client)


def _internet_rules(scenario: Scenario, world: World, family: int) -> str:
    """The internet namespace's whole rule set: the catalog hosts' dropped ports, the
    receivers' NAT, and the readiness world's DNS NAT / drops.

    The receivers' side of "blocklisted" and "rate-limited": their own NAT sends this
    client's port-25 connections to the Postfix listener that rejects it (an access
    table; a rate limit). Postfix reads its tables once per smtpd process, and anvil's
    counts live for an hour, so a rule swap is what makes the switch instant."""
    port = BLOCKLIST_PORT if scenario.blocklisted else None
    port = RATE_LIMIT_PORT if scenario.rate_limited else port
    rules = []
    if port is not None:
        for provider in PROVIDERS:
            address = provider.ipv6 if family == 6 else provider.ipv4
            target = f"[{address}]" if family == 6 else address
            rules.append(
                f"-A PREROUTING -d {address} -p tcp --dport 25 "
                f"-j DNAT --to-destination {target}:{port}"
            )
    drops = [f"-A INPUT {rule}" for rule in dropped_ports_rules(catalog_hosts(), family)]
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [*drops, *world.filter_rules(family), "COMMIT"]
    lines += ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [":POSTROUTING ACCEPT [0:0]", *rules, *world.nat_rules(family), "COMMIT"]
    return "\n".join(lines) + "\n"


#: Run in the client namespace: one connection to each rate-limited listener, so that
#: every later one is over Postfix's limit of one per anvil_rate_time_unit (an hour).
_USE_UP_SCRIPT = """
import socket, sys
for address in sys.argv[2:]:
    try:
        with socket.create_connection((address, int(sys.argv[1])), timeout=5) as sock:
            sock.recv(512)
            sock.sendall(b"QUIT\\r\\n")
    except OSError as exc:
        sys.exit(f"{address}: {exc}")
"""


def _use_up_rate_limit(client: Namespace) -> None:
    addresses = [a for p in PROVIDERS for a in (p.ipv4, p.ipv6)]
    client.run([sys.executable, "-c", _USE_UP_SCRIPT, str(RATE_LIMIT_PORT), *addresses])


def _blocklist() -> str:
    # Postfix check_client_access (cidr table): the reply Spamhaus-using receivers give.
    lines = []
    for address, prefix in ((CLIENT_V4, "32"), (CLIENT_V6, "128")):
        lines.append(
            f"{address}/{prefix} 554 5.7.1 Service unavailable; Client host [{address}] "
            "blocked using zen.spamhaus.org\n"
        )
    return "".join(lines)


def _client_uplink_up() -> list[str]:
    """Addresses, link and routes of the client: at build time, and after "link-down"
    (a link going down takes its IPv6 address and all its routes with it)."""
    return [
        f"addr replace {CLIENT_V4}/24 dev {CLIENT_IF}",
        f"addr replace {CLIENT_V6}/64 dev {CLIENT_IF} nodad",
        f"link set {CLIENT_IF} up",
        # Routes for the lab's ranges only: no default route, so a packet for any other
        # address fails in the client with ENETUNREACH and never leaves it.
        *(f"route replace {p} via {ROUTER_CLIENT_SIDE_V4}" for p in LAB_PREFIXES_V4),
        *(f"route replace {p} via {ROUTER_CLIENT_SIDE_V6}" for p in LAB_PREFIXES_V6),
    ]


class Lab:
    """One lab: build with :meth:`up` (or ``with``), drive with :meth:`switch`."""

    def __init__(
        self,
        *,
        path_delay_ms: float = PATH_DELAY_MS,
        path_loss: float = PATH_LOSS,
        seed: int | None = None,
        keep_workdir: bool = False,
    ) -> None:
        stem = f"{netns.NAMESPACE_PREFIX}{os.getpid()}-{next(_COUNTER)}"
        self.client = Namespace(f"{stem}-client")
        self.router = Namespace(f"{stem}-router")
        self.internet = Namespace(f"{stem}-inet")
        self.path_delay_ms = path_delay_ms
        self.path_loss = path_loss
        self.seed = seed
        self.keep_workdir = keep_workdir
        self.workdir = Path(tempfile.gettempdir()) / f"{stem}-lab"  # made by up()
        self.scenario = "open"
        self.readiness = "clean"
        self.catalog_hosts: tuple[CatalogLabHost, ...] = catalog_hosts()
        self.exim_missing = exim_unavailable()  # None: Exim is the echo.example receiver
        self.pki: LabPKI | None = None
        self._namespaces: list[Namespace] = []
        self._processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._postfix: list[PostfixInstance] = []
        self._previous_handlers: dict[int, Any] = {}

    # -- what tools need -------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        assert self.pki is not None
        return self.pki.ca_file

    @property
    def nameserver(self) -> str:
        return RESOLVER_V4

    @property
    def blocklist_file(self) -> Path:
        return self.workdir / "blocklist.cidr"

    @property
    def info(self) -> LabInfo:
        return LabInfo(
            client=self.client.name,
            router=self.router.name,
            internet=self.internet.name,
            workdir=str(self.workdir),
            ca_file=str(self.ca_file),
            nameservers=(RESOLVER_V4, RESOLVER_V6),
            owner_pid=os.getpid(),
        )

    def client_argv(self, argv: Sequence[str]) -> list[str]:
        return self.client.argv(argv)

    def run_client(
        self, argv: Sequence[str], *, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the client namespace; never raises for a non-zero exit."""
        return netns.run(self.client.argv(argv), check=False, timeout=timeout, input=input)

    def log_tails(self) -> str:
        """The end of every service log, for a failing test's output."""
        parts = []
        for instance in self._postfix:
            parts.append(f"--- postfix {instance.name}\n{instance.log_tail()}")
        for log in sorted(self.workdir.glob("*.log")) + sorted(self.workdir.glob("*.out")):
            with contextlib.suppress(OSError):
                tail = log.read_text(errors="replace").splitlines()[-15:]
                parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    # -- life cycle ------------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> Lab:
        reason = lab_unavailable()
        if reason is not None:
            raise LabError(f"lab needs root and ip netns: {reason}")
        remove_stale()
        atexit.register(self.down)
        self._install_signal_handlers()
        try:
            self.workdir.mkdir(mode=0o755)  # 0755: Postfix daemons run as user postfix
            self._build_network()
            extra = {h.key: h.cert_names for h in self.catalog_hosts if h.greeting}
            extra["echo"] = (ECHO_MX, ECHO_V4, ECHO_V6)
            self.pki = make_pki(self.workdir / "pki", extra)
            self._start_services()
            self.switch("open")
            self._wait_ready()
            for instance in self._postfix:
                codes = warm_up(instance.ns, instance.listeners, sys.executable)
                if set(codes) != {"220"}:
                    raise LabError(f"postfix {instance.name} greeted with {sorted(set(codes))}")
        except BaseException:
            tails = self.log_tails()
            self.down()
            if tails:
                print(tails, file=sys.stderr)
            raise
        (self.workdir / "lab.json").write_text(json.dumps(self.info.to_dict(), indent=2))
        return self

    def down(self) -> None:
        """Undo everything; safe to call twice and from atexit / signal handlers."""
        netns.end_processes([proc.pid for _name, proc in self._processes], grace=3.0)
        for _name, proc in self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
                proc.wait(timeout=1)
        self._processes.clear()
        for ns in reversed(self._namespaces):
            netns.delete_namespace(ns)
        self._namespaces.clear()
        if not self.keep_workdir:
            rmtree(self.workdir)
        self._restore_signal_handlers()
        atexit.unregister(self.down)

    def switch(self, name: str, readiness: str = "clean") -> None:
        """Put the lab into scenario ``name`` (see ``scenarios.SCENARIOS``) and readiness
        world ``readiness`` (``readiness_world.WORLDS``)."""
        try:
            scenario = SCENARIOS[name]
        except KeyError:
            raise LabError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
        try:
            world = WORLDS[readiness]
        except KeyError:
            raise LabError(
                f"unknown readiness world {readiness!r}; known: {', '.join(WORLDS)}"
            ) from None
        apply_scenario(self.info, scenario, world)
        self.scenario, self.readiness = name, readiness

    # -- building ----------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        def _on_signal(signum: int, _frame: FrameType | None) -> None:
            self.down()
            raise SystemExit(128 + signum)

        for signum in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError):  # not the main thread: atexit must do
                self._previous_handlers[signum] = signal.signal(signum, _on_signal)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _build_network(self) -> None:
        # Programs run in the lab resolve with the lab's DNS only (swaks, nmap, Postfix):
        # nothing here may ask the machine's own resolver.
        resolv_conf = f"nameserver {RESOLVER_V4}\nnameserver {RESOLVER_V6}\noptions timeout:1\n"
        for ns in (self.client, self.router, self.internet):
            self._namespaces.append(ns)
            netns.create_namespace(ns.name, resolv_conf)
            # No duplicate address detection: addresses are usable at once.
            ns.sysctl(
                {
                    "net.ipv6.conf.all.accept_dad": 0,
                    "net.ipv6.conf.default.accept_dad": 0,
                    "net.ipv6.conf.all.accept_ra": 0,
                    "net.ipv6.conf.default.accept_ra": 0,
                }
            )
        self.router.sysctl(
            {
                "net.ipv4.ip_forward": 1,
                "net.ipv6.conf.all.forwarding": 1,
                # Every probe that meets a REJECT must get its ICMP error, not one a second.
                "net.ipv4.icmp_ratelimit": 0,
                "net.ipv6.icmp.ratelimit": 0,
            }
        )
        # Both veth pairs are made inside the namespaces: nothing ever appears in the
        # machine's own namespace, so nothing can be routed to its interfaces.
        self.router.ip(
            [
                f"link add {CUSTOMER_IF} type veth peer {CLIENT_IF} netns {self.client.name}",
                f"link add {UPLINK_IF} type veth peer {INTERNET_IF} netns {self.internet.name}",
                "link set lo up",
                f"addr add {ROUTER_CLIENT_SIDE_V4}/24 dev {CUSTOMER_IF}",
                f"addr add {ROUTER_CLIENT_SIDE_V6}/64 dev {CUSTOMER_IF} nodad",
                f"addr add {ROUTER_INTERNET_SIDE_V4}/24 dev {UPLINK_IF}",
                f"addr add {ROUTER_INTERNET_SIDE_V6}/64 dev {UPLINK_IF} nodad",
                f"link set {CUSTOMER_IF} up",
                f"link set {UPLINK_IF} up",
                # The internet's server addresses, and nothing else: no default route.
                *(
                    f"route add {p} via {INTERNET_V4}"
                    for p in ("198.51.100.0/24", "203.0.113.0/24")
                ),
                *(
                    f"route add {p} via {INTERNET_V6}"
                    for p in ("2001:db8:113::/64", "2001:db8:5100::/64")
                ),
            ]
        )
        self.client.ip(["link set lo up", *_client_uplink_up()])
        hosts: list[tuple[str, str]] = [(p.ipv4, p.ipv6) for p in PROVIDERS]
        hosts += [(h.ipv4, h.ipv6) for h in self.catalog_hosts]
        hosts += [(ECHO_V4, ECHO_V6), *WHOAMI_SERVERS.values()]
        hosts += [(s.ipv4, s.ipv6) for s in SERVERS.values()]
        server_addresses = [f"addr add {v4}/32 dev lo" for v4, _ in hosts]
        server_addresses += [f"addr add {v6}/128 dev lo" for _, v6 in hosts]
        server_addresses.append(f"addr add {READINESS_UPSTREAM_V4}/32 dev lo")
        self.internet.ip(
            [
                "link set lo up",
                *server_addresses,
                f"addr add {RESOLVER_V4}/32 dev lo",
                f"addr add {RESOLVER_V6}/128 dev lo",
                f"addr add {INTERNET_V4}/24 dev {INTERNET_IF}",
                f"addr add {INTERNET_V6}/64 dev {INTERNET_IF} nodad",
                f"link set {INTERNET_IF} up",
                f"route add 198.18.0.0/15 via {ROUTER_INTERNET_SIDE_V4}",
                f"route add 2001:db8::/32 via {ROUTER_INTERNET_SIDE_V6}",
            ]
        )

    def _internet_postfix(self) -> PostfixInstance:
        assert self.pki is not None
        listeners = []
        for provider in PROVIDERS:
            cert = self.pki.certs[provider.key]
            provider_options = {
                "myhostname": provider.mx,
                "smtpd_tls_security_level": "may",
                "smtpd_tls_cert_file": str(cert.cert_file),
                "smtpd_tls_key_file": str(cert.key_file),
            }
            for address in (provider.ipv4, provider.ipv6):
                for port in MAIL_PORTS:
                    options = dict(provider_options)
                    if port == 465:
                        options["smtpd_tls_wrappermode"] = "yes"  # implicit TLS, RFC 8314
                    listeners.append(Listener(address, port, options))
                # Port 25 as it answers a blocklisted client ("blocklisted" scenario):
                # the check at connect time, so the refusal *is* the greeting
                # (smtpd_delay_reject=no), as at receivers that reject listed clients
                # before they can say anything.
                blocklisting = {
                    **provider_options,
                    "smtpd_delay_reject": "no",
                    "smtpd_client_restrictions": f"check_client_access,cidr:{self.blocklist_file}",
                }
                listeners.append(Listener(address, BLOCKLIST_PORT, blocklisting))
                # Port 25 as it answers a client over its connection rate ("rate-limited"):
                # one connection per client and anvil_rate_time_unit, nobody exempt, so
                # after the lab's own first connection Postfix's smtpd answers this client
                # "421 4.7.0 <name> Error: too many connections from <address>".
                rate_limiting = {
                    **provider_options,
                    "smtpd_client_connection_rate_limit": "1",
                    "smtpd_client_event_limit_exceptions": "",
                }
                listeners.append(Listener(address, RATE_LIMIT_PORT, rate_limiting))
        return PostfixInstance(
            "internet",
            self.workdir / "postfix-internet",
            self.internet,
            listeners,
            "mx.lab.example",
            {"anvil_rate_time_unit": "3600s"},
        )

    def _catalog_postfix(self) -> PostfixInstance:
        assert self.pki is not None
        directory = self.workdir / "postfix-catalog"
        return catalog_postfix(self.catalog_hosts, self.pki, directory, self.internet)

    def _isp_relay_postfix(self) -> PostfixInstance:
        # The ISP's relay: its own greeting, no STARTTLS (smtpd_tls_security_level=none).
        listeners = [
            Listener(address, ISP_RELAY_PORT, {"smtpd_tls_security_level": "none"})
            for address in (ROUTER_CLIENT_SIDE_V4, ROUTER_CLIENT_SIDE_V6)
        ]
        return PostfixInstance(
            "isp-relay",
            self.workdir / "postfix-isp",
            self.router,
            listeners,
            ISP_RELAY_NAME,
            {"smtpd_banner": "$myhostname ESMTP mail relay"},
        )

    def _spawn(self, name: str, ns: Namespace, argv: list[str]) -> None:
        proc = ns.popen(argv, log=self.workdir / f"{name}.log", env=self._module_env())
        self._processes.append((name, proc))

    def _module_env(self) -> dict[str, str]:
        root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}

    def _start_services(self) -> None:
        self.blocklist_file.write_text(_blocklist())
        extra_dns = [*dnsmasq_records(self.catalog_hosts), *main_dnsmasq_args()]
        dns = start_dnsmasq(self.internet, self.workdir, extra_dns)
        self._processes.append(("dnsmasq", dns))
        binary = dnsmasq_binary()
        assert binary is not None
        for server in SERVERS.values():
            log = str(self.workdir / f"dns-{server.name}.log")
            self._spawn(f"dns-{server.name}", self.internet, server_argv(binary, server, log))
        if self.exim_missing is None:
            assert self.pki is not None
            exim = start_exim(self.internet, self.workdir / "exim", self.pki.certs["echo"])
            self._processes.append(("exim", exim))
        instances = (self._internet_postfix(), self._isp_relay_postfix(), self._catalog_postfix())
        for instance in instances:
            self._postfix.append(instance)
            self._processes.append((f"postfix-{instance.name}", instance.start()))
        self._spawn(
            "asa-proxy",
            self.router,
            _python_module_argv("interceptors", "asa", "--port", str(ASA_PROXY_PORT)),
        )
        self._spawn(
            "icmp-delay",
            self.router,
            _python_module_argv(
                "delayline",
                "--queue",
                str(ICMP_DELAY_QUEUE),
                "--delay-ms",
                str(ICMP_ERROR_DELAY_MS),
            ),
        )
        path_args = ["--queue", str(PATH_DELAY_QUEUE), "--delay-ms", str(self.path_delay_ms)]
        path_args += ["--loss", str(self.path_loss)]
        if self.seed is not None:
            path_args += ["--seed", str(self.seed)]
        self._spawn("path-delay", self.router, _python_module_argv("delayline", *path_args))
        slow_args = ["--queue", str(SLOW_25_QUEUE), "--delay-ms", str(SLOW_25_DELAY_MS)]
        self._spawn("slow-25-delay", self.router, _python_module_argv("delayline", *slow_args))

    def _wait_ready(self) -> None:
        """Poll (bounded) until every listener and queue exists; fail with the logs."""
        ports = (*MAIL_PORTS, BLOCKLIST_PORT, RATE_LIMIT_PORT)
        want_internet = {(a, port) for p in PROVIDERS for a in (p.ipv4, p.ipv6) for port in ports}
        want_internet |= {
            (a, port) for h in self.catalog_hosts for a in (h.ipv4, h.ipv6) for port in h.ports
        }
        if self.exim_missing is None:
            want_internet |= {(a, port) for a in (ECHO_V4, ECHO_V6) for port in MAIL_PORTS}
        want_router = {(a, ISP_RELAY_PORT) for a in (ROUTER_CLIENT_SIDE_V4, ROUTER_CLIENT_SIDE_V6)}
        want_router |= {("0.0.0.0", ASA_PROXY_PORT), ("::", ASA_PROXY_PORT)}
        want_dns = {(RESOLVER_V4, 53), (RESOLVER_V6, 53)}
        want_dns |= {(a, 53) for s in SERVERS.values() for a in (s.ipv4, s.ipv6)}
        deadline = time.monotonic() + READY_TIMEOUT
        missing: list[str] = []
        while time.monotonic() < deadline:
            for name, proc in self._processes:
                if proc.poll() is not None:
                    raise LabError(f"{name} exited with {proc.returncode}:\n{self.log_tails()}")
            missing = []
            missing += _missing(want_internet, _listening(self.internet, "-ltn"), "internet tcp")
            missing += _missing(want_dns, _listening(self.internet, "-lun"), "dns udp")
            missing += _missing(want_router, _listening(self.router, "-ltn"), "router tcp")
            queues = _bound_queues(self.router)
            missing += [
                f"nfqueue {q}"
                for q in (ICMP_DELAY_QUEUE, PATH_DELAY_QUEUE, SLOW_25_QUEUE)
                if q not in queues
            ]
            if not missing:
                return
            time.sleep(0.02)
        raise LabError(f"lab not ready after {READY_TIMEOUT}s: {missing}\n{self.log_tails()}")


def _listening(ns: Namespace, flags: str) -> set[tuple[str, int]]:
    out = ns.run(["ss", "-H", flags], check=False).stdout
    found = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local = fields[3]
        host, _, port = local.rpartition(":")
        host = host.strip("[]").split("%")[0]
        if host == "*":
            host = "0.0.0.0"
        with contextlib.suppress(ValueError):
            found.add((host, int(port)))
    return found


def _missing(want: set[tuple[str, int]], have: set[tuple[str, int]], what: str) -> list[str]:
    return [f"{what} {a}:{p}" for a, p in sorted(want - have)]


def _bound_queues(ns: Namespace) -> set[int]:
    out = ns.run(["cat", "/proc/net/netfilter/nfnetlink_queue"], check=False).stdout
    return {int(line.split()[0]) for line in out.splitlines() if line.split()}


def running_labs() -> list[LabInfo]:
    """Labs started by `python -m tests.lab up` whose owner is still alive."""
    labs = []
    for state in sorted(Path(tempfile.gettempdir()).glob(f"{netns.NAMESPACE_PREFIX}*/lab.json")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            info = LabInfo.from_dict(json.loads(state.read_text()))
            if netns._alive(info.owner_pid) and info.client in netns.existing_namespaces():
                labs.append(info)
    return labs


def remove_stale() -> list[str]:
    """Remove what runs that were SIGKILLed left: namespaces, processes, work dirs."""
    removed = netns.remove_stale_namespaces()
    for workdir in Path(tempfile.gettempdir()).glob(f"{netns.NAMESPACE_PREFIX}*-*"):
        owner = netns.namespace_owner(workdir.name)
        if (
            workdir.is_dir()
            and owner is not None
            and owner != os.getpid()
            and not netns._alive(owner)
        ):
            rmtree(workdir)
            removed.append(str(workdir))
    return removed
