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

All lookups run concurrently in one trio nursery, MX first and then the addresses, each
bounded by ``dns_timeout`` (dnspython's ``lifetime``, with a trio cancel scope as the
backstop). dnspython's async resolver picks its trio backend by itself (sniffio).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from portprobe import defaults
from portprobe.model import MAIL_PORTS, Expectation, Family, Plan, ProbeSpec
from portprobe.targets.catalog import Catalog, load_catalog
from portprobe.targets.names import (
    SYSTEM_RESOLV_CONF,
    InputError,
    check_host_name,
    family_of,
    format_nameserver,
    ip_literal,
)

if TYPE_CHECKING:  # dnspython costs ~65 ms to import: only when a name needs resolving
    from portprobe.targets.lookup import Lookup, Lookups

__all__ = [
    "DEFAULT_DNS_TIMEOUT",
    "DEFAULT_MAX_ADDRESSES",
    "DEFAULT_MAX_MX",
    "InputError",
    "build_plan",
    "format_nameserver",
    "parse_domain",
    "parse_nameserver",
    "parse_target",
]

DEFAULT_DNS_TIMEOUT = defaults.DNS_TIMEOUT
DEFAULT_MAX_MX = defaults.MAX_MX
DEFAULT_MAX_ADDRESSES = defaults.MAX_ADDRESSES
FAMILIES: tuple[Family, ...] = ("ipv4", "ipv6")
_RDTYPE: dict[Family, str] = {"ipv4": "A", "ipv6": "AAAA"}
#: Outcomes that mean the lookup itself broke (as opposed to an answer saying "none").
_BROKEN: frozenset[str] = frozenset({"servfail", "timeout", "error"})


# -- user input ----------------------------------------------------------------------------


def parse_target(text: str) -> tuple[str, str | None]:
    """``--target`` text as ``(host, ip_literal_or_None)``.

    Host names come back normalised (lower case, ASCII, no final dot); IP literals in
    canonical form without brackets, as both host and literal.
    """
    raw = text.strip()
    literal = ip_literal(raw)
    if literal is not None:
        return literal, literal
    if raw.startswith("["):
        raise InputError(f"invalid target {text!r}: brackets hold an IPv6 address only")
    if raw.count(":") >= 2:
        raise InputError(f"invalid target {text!r}: not a valid IPv6 address")
    return check_host_name(raw, what="target"), None


def parse_domain(text: str) -> str:
    """``--domain`` text as a normalised mail domain; an IP literal is refused."""
    if ip_literal(text.strip()) is not None:
        raise InputError(
            f"invalid domain {text!r}: --domain takes a mail domain; use --target for an address"
        )
    return check_host_name(text, what="domain")


def _parse_port(text: str, original: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise InputError(f"invalid nameserver {original!r}: port must be 1-65535")
    return int(text)


def parse_nameserver(text: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT``, ``[IPv6]`` or a bare IPv6 → ``(ip, port)``.

    Names are refused: a resolver cannot be found through the resolver it replaces.
    """
    raw = text.strip()
    if raw.startswith("["):
        end = raw.find("]")
        literal = ip_literal(raw[: end + 1]) if end > 0 else None
        rest = raw[end + 1 :]
        if literal is None or (rest and not rest.startswith(":")):
            raise InputError(f"invalid nameserver {text!r}: expected [IPv6] or [IPv6]:PORT")
        return literal, _parse_port(rest[1:], text) if rest else 53
    literal = ip_literal(raw)
    if literal is not None:
        return literal, 53
    host, sep, port = raw.partition(":")
    literal = ip_literal(host) if sep and ":" not in port else None
    if literal is not None:
        return literal, _parse_port(port, text)
    raise InputError(
        f"invalid nameserver {text!r}: give an IP address, optionally with :PORT "
        "([IPv6]:PORT); host names are not accepted"
    )


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


# -- planning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """One thing to probe: a mail domain, a host name or an IP literal, with its ports."""

    target: str
    provider: str
    name: str
    mail_domain: bool
    literal: str | None
    ports: tuple[tuple[int, bool], ...]  # (role port, negative control?)
    expect: Expectation | None
    max_mx: int
    max_addresses: int


def _unique(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(items))


def _address_key(address: str) -> tuple[int, int]:
    parsed = ipaddress.ip_address(address)
    return parsed.version, int(parsed)


def _jobs(
    domains: Sequence[str],
    targets: Sequence[str],
    catalog: Catalog | None,
    ports: tuple[int, ...],
    max_mx: int,
    max_addresses: int,
) -> list[_Job]:
    jobs: list[_Job] = []
    plain = tuple((port, False) for port in ports)
    if domains or targets:
        for text in domains:
            name = parse_domain(text)
            jobs.append(_Job(name, name, name, True, None, plain, None, max_mx, max_addresses))
        for text in targets:
            host, literal = parse_target(text)
            jobs.append(_Job(host, host, host, False, literal, plain, None, max_mx, max_addresses))
        return jobs
    catalog = catalog if catalog is not None else load_catalog()
    for provider, entry in catalog.hosts:
        wanted = tuple(
            (port, port in entry.negative_ports)
            for port in ports
            if port in entry.ports or port in entry.negative_ports
        )
        if not wanted:
            continue
        jobs.append(
            _Job(
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


class _Assembler:
    """Turns lookups into specs, unresolved specs and notes, deduplicated, in job order."""

    def __init__(self, families: tuple[Family, ...], port_map: Mapping[int, int]) -> None:
        self.families = families
        self.port_map = port_map
        self.specs: dict[tuple[str, str, int], ProbeSpec] = {}
        self.unresolved: dict[tuple[str, str | None, int], ProbeSpec] = {}
        self.notes: dict[str, None] = {}

    def note(self, text: str) -> None:
        self.notes[text] = None

    def spec(self, job: _Job, host: str, address: str | None, family: Family | None) -> None:
        for port, negative in job.ports:
            spec = ProbeSpec(
                target=job.target,
                host=host,
                address=address,
                family=family,
                port=port,
                provider=job.provider,
                connect_port=self.port_map.get(port),
                negative=negative,
                expect=job.expect,
            )
            if address is None:
                self.unresolved.setdefault((host, family, port), spec)
            else:
                self.specs.setdefault((host, address, port), spec)

    def literal(self, job: _Job, literal: str) -> None:
        family: Family = "ipv6" if family_of(literal) == "ipv6" else "ipv4"
        if family in self.families:
            self.spec(job, literal, literal, family)
        else:
            self.note(f"{job.name}: an {family} address, skipped by the address-family filter")

    def host(self, job: _Job, host: str, lookups: Mapping[tuple[str, str], Lookup]) -> None:
        found: dict[Family, list[str]] = {}
        for family in self.families:
            result = lookups[(host, _RDTYPE[family])]
            addresses = sorted(set(result.addresses), key=_address_key)
            if len(addresses) > job.max_addresses:
                self.note(
                    f"{host}: probing {job.max_addresses} of {len(addresses)} "
                    f"{_RDTYPE[family]} addresses (the lowest; limit max_addresses)"
                )
            found[family] = addresses[: job.max_addresses]
        if not any(found.values()):
            self.spec(job, host, None, None)
            return
        for family in self.families:
            if lookups[(host, _RDTYPE[family])].query.outcome in _BROKEN:
                self.spec(job, host, None, family)
            for address in found[family]:
                self.spec(job, host, address, family)

    def mx_hosts(self, job: _Job, result: Lookup) -> list[str]:
        """The hosts to probe for a mail domain, noting why when it is not its MX set."""
        domain, outcome = job.name, result.query.outcome
        if outcome == "null-mx":
            self.note(f"{domain}: null MX (RFC 7505): the domain accepts no mail; not probed")
            return []
        if outcome == "nodata":
            self.note(f"{domain}: no MX record; probing the domain itself (RFC 5321 §5.1)")
            return [domain]
        if outcome != "ok":
            self.note(f"{domain}: MX lookup failed ({outcome}); reported as dns-error")
            self.spec(job, domain, None, None)
            return []
        hosts: list[str] = []
        for _, exchange in result.mx:
            if not exchange:
                continue  # a "0 ." beside real MX records (RFC 7505 §3 forbids it): skip
            try:
                host = check_host_name(exchange, what="MX host")
            except InputError:
                self.note(f"{domain}: MX host {exchange!r} is not a valid host name; skipped")
                continue
            if host not in hosts:
                hosts.append(host)
        if len(hosts) > job.max_mx:
            self.note(
                f"{domain}: probing {job.max_mx} of {len(hosts)} MX hosts "
                "(lowest preference first; limit max_mx)"
            )
        return hosts[: job.max_mx]


def _resolver(
    jobs: Sequence[_Job],
    nameservers: Sequence[tuple[str, int]],
    timeout: float,
    resolv_conf: str,
) -> Lookups | None:
    """A resolver when some job names a host; IP literals alone need no DNS at all."""
    if all(job.literal is not None and not job.mail_domain for job in jobs):
        return None
    from portprobe.targets.lookup import Lookups

    return Lookups(nameservers, timeout, resolv_conf)


async def build_plan(
    *,
    domains: Sequence[str] = (),
    targets: Sequence[str] = (),
    catalog: Catalog | None = None,
    ports: Sequence[int] = MAIL_PORTS,
    families: Sequence[Family] = FAMILIES,
    nameservers: Sequence[tuple[str, int]] = (),
    dns_timeout: float = DEFAULT_DNS_TIMEOUT,
    max_mx: int = DEFAULT_MAX_MX,
    max_addresses: int = DEFAULT_MAX_ADDRESSES,
    port_map: Mapping[int, int] | None = None,
    resolv_conf: str = SYSTEM_RESOLV_CONF,
) -> Plan:
    """Resolve what to probe. Raises :class:`InputError` for bad input, never for DNS.

    With neither ``domains`` nor ``targets``, ``catalog`` (default: the built-in one) is
    used; its ``[limits]`` cap ``max_mx``/``max_addresses`` further. Empty
    ``nameservers`` means the system resolver, configured from ``resolv_conf``.
    """
    checked_ports = _check_ports(ports)
    checked_families = _check_families(families)
    if not dns_timeout > 0:
        raise InputError(f"DNS timeout must be positive, not {dns_timeout!r}")
    if max_mx < 1 or max_addresses < 1:
        raise InputError("max_mx and max_addresses must be at least 1")
    jobs = _jobs(domains, targets, catalog, checked_ports, max_mx, max_addresses)
    dns = _resolver(jobs, nameservers, dns_timeout, resolv_conf)
    assembler = _Assembler(checked_families, port_map or {})

    mx_keys = _unique([(job.name, "MX") for job in jobs if job.mail_domain])
    mx_results = await dns.lookup_all(mx_keys) if dns and mx_keys else {}
    hosts_of: dict[int, list[str]] = {}
    for index, job in enumerate(jobs):
        if job.mail_domain:
            hosts_of[index] = assembler.mx_hosts(job, mx_results[(job.name, "MX")])
        elif job.literal is None:
            hosts_of[index] = [job.name]
    address_keys = _unique(
        [
            (host, _RDTYPE[family])
            for hosts in hosts_of.values()
            for host in hosts
            for family in checked_families
        ]
    )
    lookups = await dns.lookup_all(address_keys) if dns and address_keys else {}

    for index, job in enumerate(jobs):
        if job.literal is not None:
            assembler.literal(job, job.literal)
        for host in hosts_of.get(index, []):
            assembler.host(job, host, lookups)
    queries = [mx_results[key].query for key in mx_keys]
    queries += [lookups[key].query for key in address_keys]
    return Plan(
        specs=tuple(assembler.specs.values()),
        dns=tuple(queries),
        unresolved=tuple(assembler.unresolved.values()),
        notes=tuple(assembler.notes),
    )
