"""What to diagnose: one validated, hashable request (spec "Library API").

``DiagnoseRequest`` checks every value when it is made and raises
:class:`~portprobe.errors.InputError` for the first bad one, so a typo costs no probing.
It reads no file and touches no network when made: the files it names (catalog, CA file,
``--sysfs``) are loaded by the :class:`~portprobe.diagnosis.Diagnosis` made from it, still
before any network activity. Being frozen and hashable, a request is a cache key (one run
per request at a time, in ``portprobe serve``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portprobe import defaults
from portprobe.errors import InputError
from portprobe.vocab import FAMILIES, MAIL_PORTS, MTA_MODES, VERDICTS, Family, MtaMode

#: Where the DMI files are when ``sysfs`` is not given; missing there means "no DMI
#: evidence" (macOS, Windows, BSD, a container without /sys), never an error.
DEFAULT_SYSFS = Path("/sys")
#: ``--trace``: when to trace port 25 hop by hop (auto: when it is blocked, partial or
#: intercepted).
TRACE_MODES = ("auto", "always", "never")


class PortMap(Mapping[int, int]):
    """``--port-map``: role → port actually dialled; immutable and hashable."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[int, int] | None = None) -> None:
        self._items: dict[int, int] = dict(items or {})

    def __getitem__(self, key: int) -> int:
        return self._items[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._items.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    def __repr__(self) -> str:
        return f"PortMap({self._items!r})"


def _positive(name: str, value: float, *, integer: bool = False) -> None:
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise InputError(f"{name}: must be a whole number greater than 0 (got {value!r})")
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        kind = "a whole number" if integer else "a finite number"
        raise InputError(f"{name}: must be {kind} greater than 0 (got {value!r})")


@dataclass(frozen=True)
class DiagnoseRequest:
    """What to diagnose, validated once here; ``to_dict()`` is the report's ``parameters``.

    With neither ``domains`` nor ``targets`` the catalog is probed (``catalog`` names a
    TOML file, None the built-in one). Option names in the CLI map one to one onto these
    fields; the spec's defaults live in :mod:`portprobe.defaults`.
    """

    domains: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    catalog: Path | None = None
    ports: tuple[int, ...] = MAIL_PORTS
    families: tuple[Family, ...] = FAMILIES
    nameservers: tuple[str, ...] = ()  # "IP", "IP:PORT", "[IPv6]:PORT"
    ca_file: Path | None = None
    timeout: float = defaults.TIMEOUT
    connect_timeout: float = defaults.CONNECT_TIMEOUT  # clamped to ``timeout``
    dns_timeout: float = defaults.DNS_TIMEOUT
    concurrency: int = defaults.CONCURRENCY
    per_host: int = defaults.PER_HOST
    ehlo_name: str | None = None
    port_map: Mapping[int, int] = field(default_factory=PortMap)
    max_mx: int = defaults.MAX_MX
    max_addresses: int = defaults.MAX_ADDRESSES
    # Mail readiness (spec "Mail readiness").
    readiness: bool = True
    public_ips: tuple[str, ...] = ()
    dnsbl_zones: tuple[str, ...] = ()
    # Environment (spec "Environment"): local evidence only.
    # None: the DMI files under /sys where there are any; a path given is checked when
    # the Diagnosis is made (it must be a directory).
    sysfs: Path | None = None
    platform: str | None = None
    environ: Mapping[str, str] | None = field(default=None, compare=False, repr=False)
    # The local mail server (spec "The local mail server"). The library reads no MTA unless
    # asked ("none"); the CLI's default is "auto".
    mta: MtaMode = "none"
    postfix_config: Path | None = None
    exim_config: Path | None = None
    mail_log: Path | None = None
    queue_destinations: int = defaults.QUEUE_DESTINATIONS
    # CI assertions, recorded with the parameters and checked by ``check_assertions``.
    expect: tuple[str, ...] = ()
    require_ports: tuple[int, ...] = ()
    require_ready: bool = False
    # Path (spec "Path"): trace port 25 hop by hop when it is stopped.
    trace: str = "auto"  # auto | always | never
    max_hops: int = defaults.MAX_HOPS
    asn: bool = True  # Team Cymru AS data for the hops

    def __post_init__(self) -> None:
        from portprobe.protocol.smtp import ehlo_name_problem
        from portprobe.targets.names import parse_domain, parse_nameserver, parse_target

        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        for name in ("domains", "targets", "nameservers", "public_ips", "dnsbl_zones", "expect"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise InputError(f"{name}: give a sequence of strings, not one string")
            put(name, tuple(value))
        put("ports", tuple(dict.fromkeys(self.ports)))
        put("families", tuple(dict.fromkeys(self.families)))
        put("require_ports", tuple(dict.fromkeys(self.require_ports)))
        for value in self.domains:
            parse_domain(value)
        for value in self.targets:
            parse_target(value)
        for value in self.nameservers:
            parse_nameserver(value)
        if not self.ports:
            raise InputError("--ports: give at least one of 25, 465, 587, 2525")
        for port in self.ports:
            if port not in MAIL_PORTS:
                allowed = ", ".join(map(str, MAIL_PORTS))
                raise InputError(f"--ports: {port} is not one of {allowed} (see --port-map)")
        if not self.families or any(f not in FAMILIES for f in self.families):
            raise InputError(f"families: give one or both of {', '.join(FAMILIES)}")
        for name in ("timeout", "connect_timeout", "dns_timeout"):
            _positive(f"--{name.replace('_', '-')}", getattr(self, name))
        for name in ("concurrency", "per_host", "max_mx", "max_addresses"):
            _positive(f"--{name.replace('_', '-')}", getattr(self, name), integer=True)
        put("connect_timeout", min(self.connect_timeout, self.timeout))
        if self.ehlo_name is not None and (problem := ehlo_name_problem(self.ehlo_name)):
            raise InputError(f"--ehlo-name: {self.ehlo_name!r} {problem}")
        for role, actual in self.port_map.items():
            if role not in MAIL_PORTS:
                raise InputError(f"--port-map: {role} is not one of 25, 465, 587, 2525")
            if not (isinstance(actual, int) and 1 <= actual <= 65535):
                raise InputError(f"--port-map: {actual} is not a port number (1-65535)")
        put("port_map", PortMap(self.port_map))
        for verdict in self.expect:
            if verdict not in VERDICTS:
                raise InputError(f"--expect: {verdict!r} is not a verdict ({', '.join(VERDICTS)})")
        for port in self.require_ports:
            if port not in self.ports:
                raise InputError(f"--require-port: {port} is not among the probed ports")
        if self.public_ips or self.dnsbl_zones:
            from portprobe.readiness.settings import parse_dnsbl_zone, parse_public_ip

            put("public_ips", tuple(parse_public_ip(a) for a in self.public_ips))
            put("dnsbl_zones", tuple(parse_dnsbl_zone(z) for z in self.dnsbl_zones))
        if self.mta not in MTA_MODES:
            raise InputError(f"--mta: {self.mta!r} is not one of {', '.join(MTA_MODES)}")
        qd = self.queue_destinations
        if isinstance(qd, bool) or not isinstance(qd, int) or qd < 0:
            raise InputError(f"--queue-destinations: must be a whole number >= 0 (got {qd!r})")
        if self.trace not in TRACE_MODES:
            raise InputError(f"--trace: {self.trace!r} is not one of {', '.join(TRACE_MODES)}")
        if (
            isinstance(self.max_hops, bool)
            or not isinstance(self.max_hops, int)
            or not (1 <= self.max_hops <= defaults.MAX_HOPS_LIMIT)
        ):
            raise InputError(
                f"--max-hops: must be a whole number from 1 to {defaults.MAX_HOPS_LIMIT} "
                f"(got {self.max_hops!r})"
            )
        if self.require_ready and not self.readiness:
            raise InputError("--require-ready needs the readiness checks; drop --no-readiness")

    @property
    def uses_catalog(self) -> bool:
        return not self.domains and not self.targets

    @property
    def checks_readiness(self) -> bool:
        """Readiness asks the internet about *this machine*; a run that only probes
        loopback literals is a local test, and its whoami and DNSBL queries would leave
        through the system resolver for nothing, so it skips them (and says so), unless
        ``--public-ip`` names the address to check."""
        if not self.readiness:
            return False
        if self.uses_catalog or self.domains or self.public_ips:
            return True
        return not all(_is_loopback(t) for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        """The report's ``parameters``: the options as resolved (reports/README.md)."""
        catalog = None
        if self.uses_catalog:
            catalog = str(self.catalog) if self.catalog else "built-in"
        return {
            "ports": list(self.ports),
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "dns_timeout": self.dns_timeout,
            "families": list(self.families),
            "targets": list(self.targets),
            "domains": list(self.domains),
            "catalog": catalog,
            "nameservers": list(self.nameservers),
            "ca_file": str(self.ca_file) if self.ca_file else None,
            "concurrency": self.concurrency,
            "per_host": self.per_host,
            "ehlo_name": self.ehlo_name,
            "port_map": {str(k): v for k, v in self.port_map.items()},
            "expect": list(self.expect),
            "require_ports": list(self.require_ports),
            "max_mx": self.max_mx,
            "max_addresses": self.max_addresses,
            "readiness": self.readiness,
            "public_ips": list(self.public_ips),
            "dnsbl_zones": list(self.dnsbl_zones),
            "require_ready": self.require_ready,
            "sysfs": str(self.sysfs or DEFAULT_SYSFS),
            "platform": self.platform,
            "mta": self.mta,
            "queue_destinations": self.queue_destinations,
            "trace": self.trace,
            "max_hops": self.max_hops,
            "asn": self.asn,
        }


def _is_loopback(target: str) -> bool:
    import ipaddress

    from portprobe.targets.names import parse_target

    literal = parse_target(target)[1]
    return literal is not None and ipaddress.ip_address(literal).is_loopback


LOOPBACK_NOTE = (
    "Mail readiness was not checked: every target is a loopback address, so this run says "
    "nothing about this machine's public address (--public-ip with --domain checks it)."
)
