"""From what the user named to a :class:`~portprobe.model.Plan`: MX, A and AAAA lookups.

How a name becomes probes:

- ``--domain D``: MX lookup, records sorted by preference and then by name (RFC 5321
  §5.1 leaves the order among equal preferences to the client; sorting makes runs
  comparable), at most ``max_mx`` hosts. A null MX (RFC 7505: a single ``0 .``) means
  "this domain accepts no mail": recorded as ``null-mx`` and nothing is probed. No MX at
  all (NODATA) falls back to the domain's own A/AAAA, the "implicit MX" of RFC 5321 §5.1.
- ``--target H``: an IP literal is probed as is; a host name is looked up (A/AAAA).
- Neither: the catalog (:mod:`portprobe.targets.catalog`).
- Each requested family is looked up and probed separately: no happy eyeballs (RFC 8305)
  here, since the question is whether *each* family reaches port 25. At most
  ``max_addresses`` addresses per host and family, the numerically lowest, so two runs
  against round-robin DNS probe the same machines.

Every lookup is recorded as a :class:`~portprobe.model.DNSQuery`, and none raises: a
name that does not resolve becomes an *unresolved* spec (``address=None``) that the
runner reports as ``dns-error``, so the verdict can tell "DNS is broken" from "port 25
is blocked". Which specs are unresolved:

- the mail domain's MX lookup failed (NXDOMAIN, SERVFAIL, timeout, error): one per port,
  ``host`` = the domain, ``family`` None;
- a host has no address in any requested family: one per port, ``family`` None;
- a host has addresses, but one family's lookup *failed* (SERVFAIL, timeout, error, not
  a mere NODATA): one per port with that ``family``.

All lookups run concurrently, each started as soon as it is known to be needed (an MX
answer starts its hosts' A/AAAA lookups at once; :mod:`portprobe.targets.planner`), each
bounded by ``dns_timeout`` (dnspython's ``lifetime``, with a trio cancel scope as the
backstop; :mod:`portprobe.probe.dnsclient`). What to plan is one :class:`PlanInput`;
the DNS is a seam (``lookup=``, a :class:`~portprobe.model.DnsLookup`): tests plan
against a fake one without any DNS server. The parsers of ``--target``, ``--domain`` and
``--nameserver`` live in :mod:`portprobe.targets.names`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from portprobe import defaults
from portprobe.model import DnsLookup, Plan
from portprobe.targets.catalog import Catalog, load_catalog
from portprobe.targets.names import (
    SYSTEM_RESOLV_CONF,
    InputError,
    format_nameserver,
    ip_literal,
    parse_domain,
    parse_nameserver,
    parse_target,
)
from portprobe.targets.planner import Job, Planner
from portprobe.vocab import FAMILIES, MAIL_PORTS, Family

__all__ = [
    "InputError",
    "PlanInput",
    "build_plan",
    "format_nameserver",
    "make_planner",
    # The input parsers live in targets.names; re-exported for callers not yet moved.
    "parse_domain",
    "parse_nameserver",
    "parse_target",
]


@dataclass(frozen=True)
class PlanInput:
    """What to plan: the names given (or the catalog), ports, families and DNS limits.

    Sequences are kept as tuples and ``port_map`` read-only, so one input can be shared.
    With neither ``domains`` nor ``targets``, ``catalog`` (default: the built-in one) is
    used; its ``[limits]`` cap ``max_mx``/``max_addresses`` further. Empty
    ``nameservers`` means the system resolver, configured from ``resolv_conf``.
    """

    domains: Sequence[str] = ()
    targets: Sequence[str] = ()
    catalog: Catalog | None = None
    ports: Sequence[int] = MAIL_PORTS
    families: Sequence[Family] = FAMILIES
    nameservers: Sequence[tuple[str, int]] = ()
    dns_timeout: float = defaults.DNS_TIMEOUT
    max_mx: int = defaults.MAX_MX
    max_addresses: int = defaults.MAX_ADDRESSES
    port_map: Mapping[int, int] = field(default_factory=dict)
    resolv_conf: str = SYSTEM_RESOLV_CONF
    #: Mail domains probed besides the above (with the catalog too): the local MTA's
    #: deferred destinations (``--queue-destinations``).
    extra_domains: Sequence[str] = ()

    def __post_init__(self) -> None:
        for name in ("domains", "targets", "ports", "families", "nameservers", "extra_domains"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "port_map", MappingProxyType(dict(self.port_map or {})))


def _check_ports(ports: Sequence[int]) -> tuple[int, ...]:
    checked: list[int] = []
    for port in ports:
        if port not in MAIL_PORTS:
            allowed = ", ".join(str(p) for p in MAIL_PORTS)
            raise InputError(f"port {port} is not one of {allowed}")
        if port not in checked:
            checked.append(port)
    if not checked:
        raise InputError("no port to probe")
    return tuple(checked)


def _check_families(families: Sequence[Family]) -> tuple[Family, ...]:
    for family in families:
        if family not in FAMILIES:
            raise InputError(f"unknown address family {family!r} (ipv4 or ipv6)")
    checked = tuple(f for f in FAMILIES if f in families)
    if not checked:
        raise InputError("no address family to probe")
    return checked


def _jobs(given: PlanInput, ports: tuple[int, ...]) -> list[Job]:
    jobs = _given_jobs(given, ports)
    plain = tuple((port, False) for port in ports)
    for text in given.extra_domains:
        name = parse_domain(text)
        if name not in {job.name for job in jobs if job.mail_domain}:
            jobs.append(
                Job(name, name, name, True, None, plain, None, given.max_mx, given.max_addresses)
            )
    return jobs


def _given_jobs(given: PlanInput, ports: tuple[int, ...]) -> list[Job]:
    jobs: list[Job] = []
    plain = tuple((port, False) for port in ports)
    max_mx, max_addresses = given.max_mx, given.max_addresses
    if given.domains or given.targets:
        for text in given.domains:
            name = parse_domain(text)
            jobs.append(Job(name, name, name, True, None, plain, None, max_mx, max_addresses))
        for text in given.targets:
            host, literal = parse_target(text)
            jobs.append(Job(host, host, host, False, literal, plain, None, max_mx, max_addresses))
        return jobs
    catalog = given.catalog if given.catalog is not None else load_catalog()
    for provider, entry in catalog.hosts:
        wanted = tuple(
            (port, port in entry.negative_ports)
            for port in ports
            if port in entry.ports or port in entry.negative_ports
        )
        if not wanted:
            continue
        jobs.append(
            Job(
                target=provider.name,
                provider=provider.name,
                name=entry.name,
                mail_domain=entry.mail_domain,
                literal=None if entry.mail_domain else ip_literal(entry.name),
                ports=wanted,
                expect=entry.expect,
                max_mx=min(max_mx, catalog.max_mx),
                max_addresses=min(max_addresses, catalog.max_addresses),
            )
        )
    return jobs


def make_planner(given: PlanInput, *, lookup: DnsLookup | None = None) -> Planner:
    """Check every input and return the planner for it; no DNS is asked yet.

    Raises :class:`InputError` (or ``CatalogError`` for the built-in catalog's file) for
    bad input, so callers can check everything before ``trio.run``. ``lookup`` is the DNS
    seam; None means a :class:`~portprobe.probe.dnsclient.DnsClient` for ``given``'s
    name servers, made (and dnspython imported) only if a name needs it.
    """
    checked_ports = _check_ports(given.ports)
    checked_families = _check_families(given.families)
    if not given.dns_timeout > 0:
        raise InputError(f"DNS timeout must be positive, not {given.dns_timeout!r}")
    if given.max_mx < 1 or given.max_addresses < 1:
        raise InputError("max_mx and max_addresses must be at least 1")
    jobs = _jobs(given, checked_ports)
    if lookup is None and any(job.needs_dns for job in jobs):
        from portprobe.probe.dnsclient import DnsClient

        lookup = DnsClient(given.nameservers, given.dns_timeout, given.resolv_conf)
    return Planner(jobs, checked_families, given.port_map, lookup)


async def build_plan(given: PlanInput, *, lookup: DnsLookup | None = None) -> Plan:
    """Resolve what to probe. Raises :class:`InputError` for bad input, never for DNS.

    The non-streaming view of :class:`~portprobe.targets.planner.Planner`: the plan once
    every answer is in (see :func:`make_planner`).
    """
    return await make_planner(given, lookup=lookup).resolve()
