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
backstop). dnspython's async resolver picks its trio backend by itself (sniffio). The
resolver is a seam (``lookup=``): tests plan against a fake one without any DNS server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from portprobe import defaults
from portprobe.model import Plan
from portprobe.targets.answers import Resolver
from portprobe.targets.catalog import Catalog, load_catalog
from portprobe.targets.names import (
    SYSTEM_RESOLV_CONF,
    InputError,
    check_host_name,
    format_nameserver,
    ip_literal,
)
from portprobe.targets.planner import FAMILIES, Job, Planner
from portprobe.vocab import MAIL_PORTS, Family

__all__ = [
    "InputError",
    "build_plan",
    "format_nameserver",
    "make_planner",
    "parse_domain",
    "parse_nameserver",
    "parse_target",
]


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


def _jobs(
    domains: Sequence[str],
    targets: Sequence[str],
    catalog: Catalog | None,
    ports: tuple[int, ...],
    max_mx: int,
    max_addresses: int,
) -> list[Job]:
    jobs: list[Job] = []
    plain = tuple((port, False) for port in ports)
    if domains or targets:
        for text in domains:
            name = parse_domain(text)
            jobs.append(Job(name, name, name, True, None, plain, None, max_mx, max_addresses))
        for text in targets:
            host, literal = parse_target(text)
            jobs.append(Job(host, host, host, False, literal, plain, None, max_mx, max_addresses))
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


def make_planner(
    *,
    domains: Sequence[str] = (),
    targets: Sequence[str] = (),
    catalog: Catalog | None = None,
    ports: Sequence[int] = MAIL_PORTS,
    families: Sequence[Family] = FAMILIES,
    nameservers: Sequence[tuple[str, int]] = (),
    dns_timeout: float = defaults.DNS_TIMEOUT,
    max_mx: int = defaults.MAX_MX,
    max_addresses: int = defaults.MAX_ADDRESSES,
    port_map: Mapping[int, int] | None = None,
    resolv_conf: str = SYSTEM_RESOLV_CONF,
    lookup: Resolver | None = None,
) -> Planner:
    """Check every input and return the planner for it; no DNS is asked yet.

    Raises :class:`InputError` (or ``CatalogError`` for the built-in catalog's file) for
    bad input, so callers can check everything before ``trio.run``. ``lookup`` is the DNS
    seam; None means dnspython with ``nameservers`` (empty: the system resolver,
    configured from ``resolv_conf``), and dnspython is imported only if a name needs it.
    """
    checked_ports = _check_ports(ports)
    checked_families = _check_families(families)
    if not dns_timeout > 0:
        raise InputError(f"DNS timeout must be positive, not {dns_timeout!r}")
    if max_mx < 1 or max_addresses < 1:
        raise InputError("max_mx and max_addresses must be at least 1")
    jobs = _jobs(domains, targets, catalog, checked_ports, max_mx, max_addresses)
    if lookup is None and any(job.needs_dns for job in jobs):
        from portprobe.targets.lookup import Lookups  # dnspython: ~65 ms, only when needed

        lookup = Lookups(nameservers, dns_timeout, resolv_conf).lookup
    return Planner(jobs, checked_families, port_map or {}, lookup)


async def build_plan(
    *,
    domains: Sequence[str] = (),
    targets: Sequence[str] = (),
    catalog: Catalog | None = None,
    ports: Sequence[int] = MAIL_PORTS,
    families: Sequence[Family] = FAMILIES,
    nameservers: Sequence[tuple[str, int]] = (),
    dns_timeout: float = defaults.DNS_TIMEOUT,
    max_mx: int = defaults.MAX_MX,
    max_addresses: int = defaults.MAX_ADDRESSES,
    port_map: Mapping[int, int] | None = None,
    resolv_conf: str = SYSTEM_RESOLV_CONF,
    lookup: Resolver | None = None,
) -> Plan:
    """Resolve what to probe. Raises :class:`InputError` for bad input, never for DNS.

    With neither ``domains`` nor ``targets``, ``catalog`` (default: the built-in one) is
    used; its ``[limits]`` cap ``max_mx``/``max_addresses`` further. Empty
    ``nameservers`` means the system resolver, configured from ``resolv_conf``;
    ``lookup`` replaces DNS altogether (see :func:`make_planner`). The non-streaming view
    of :class:`~portprobe.targets.planner.Planner`: the plan once every answer is in.
    """
    planner = make_planner(
        domains=domains,
        targets=targets,
        catalog=catalog,
        ports=ports,
        families=families,
        nameservers=nameservers,
        dns_timeout=dns_timeout,
        max_mx=max_mx,
        max_addresses=max_addresses,
        port_map=port_map,
        resolv_conf=resolv_conf,
        lookup=lookup,
    )
    return await planner.resolve()
