"""The catalog of public mail hosts: a TOML data file, loaded and checked here.

The format is documented at the top of ``catalog.toml`` (shipped in this package). A
user's own file (``--catalog FILE``) goes through the same checks, and every problem is
reported as one line naming the file and, when it can be found, the line:
``my.toml:12: provider "x": port 26 is not one of 25, 465, 587, 2525``.

This module imports no dnspython and no trio: ``portprobe targets`` must start fast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Final, Literal

from portprobe import errors
from portprobe.datafile import At, DataFileProblem, Table, TableChecker, parse_toml, read_text
from portprobe.model import Expectation
from portprobe.targets.names import InputError, check_host_name, ip_literal
from portprobe.vocab import MAIL_PORTS

Role = Literal["mx", "submission", "relay"]
ROLES: tuple[Role, ...] = ("mx", "submission", "relay")
BUILTIN_NAME = "catalog.toml"
SCHEMA_VERSION = 1
#: Defaults for ``[limits]``: two MX hosts per domain and two addresses per host and
#: family keep a default run near 100 probes while still giving each provider more
#: than one machine to answer.
CATALOG_MAX_MX = 2
CATALOG_MAX_ADDRESSES = 2
_LIMIT_MAX = 16  # a catalog asking for more than this per host is a mistake
CATALOG_KEYS: Final = ("schema", "limits", "provider")
#: Top-level tables of the same file that other parts read: the readiness checks'
#: ``[[whoami]]`` and ``[[dnsbl]]`` (:mod:`portprobe.readiness.settings`), kept as parsed.
FOREIGN_SECTIONS: Final = ("whoami", "dnsbl")
_HOST_KEYS: Final = ("host", "domain", "role", "ports", "negative_ports", "source", "expect")


class CatalogError(errors.CatalogError):
    """A catalog file that cannot be used: ``str(exc)`` is one line, file:line: problem."""

    def __init__(self, path: str, problem: str, line: int | None = None) -> None:
        self.path = path
        self.problem = problem
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class CatalogHost:
    """One host entry: a host name (or IP literal), or a mail domain to MX-resolve."""

    name: str  # host name, IP literal, or (mail_domain=True) the mail domain
    role: Role
    ports: tuple[int, ...]  # documented to answer
    negative_ports: tuple[int, ...] = ()  # documented NOT to answer
    expect: Expectation | None = None
    source: str = ""
    mail_domain: bool = False  # True: ``name`` is a domain; probe its MX hosts

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lookup": "mx" if self.mail_domain else "address",
            "role": self.role,
            "ports": list(self.ports),
            "negative_ports": list(self.negative_ports),
            "expect": self.expect.to_dict() if self.expect else None,
            "source": self.source,
        }


@dataclass(frozen=True)
class Provider:
    """One independent operator and its hosts."""

    name: str
    description: str
    hosts: tuple[CatalogHost, ...]
    network: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "network": self.network,
            "hosts": [host.to_dict() for host in self.hosts],
        }


@dataclass(frozen=True)
class Catalog:
    providers: tuple[Provider, ...]
    path: str
    max_mx: int = CATALOG_MAX_MX  # MX hosts per catalog mail domain
    max_addresses: int = CATALOG_MAX_ADDRESSES  # addresses per host and family
    #: The :data:`FOREIGN_SECTIONS` present in the file, as parsed (not checked here).
    sections: Mapping[str, object] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )

    @property
    def hosts(self) -> tuple[tuple[Provider, CatalogHost], ...]:
        return tuple((p, h) for p in self.providers for h in p.hosts)


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """Read and check a catalog; ``None`` means the built-in one.

    Raises :class:`CatalogError` for an unreadable or malformed file.
    """
    if path is None:
        label = f"<built-in {BUILTIN_NAME}>"
        text = resources.files("portprobe.targets").joinpath(BUILTIN_NAME).read_text("utf-8")
    else:
        label = os.fspath(path)
        try:
            text = read_text(label)
        except DataFileProblem as exc:
            raise CatalogError(label, exc.problem) from None
    return parse_catalog(text, label)


def parse_catalog(text: str, path: str = "<catalog>") -> Catalog:
    """Check ``text`` (TOML) and build a :class:`Catalog`; ``path`` labels errors."""
    try:
        data = parse_toml(text)
    except DataFileProblem as exc:
        raise CatalogError(path, exc.problem, exc.line) from None
    return _catalog(TableChecker(text, path, CatalogError), data)


def _catalog(check: TableChecker, data: Table) -> Catalog:
    check.known_keys(data, (*CATALOG_KEYS, *FOREIGN_SECTIONS), "top level")
    schema = data.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise check.fail(
            f"schema {schema!r} is not supported (only {SCHEMA_VERSION})", key="schema"
        )
    limits = check.table(data.get("limits", {}), "[limits] must be a table", key="limits")
    check.known_keys(limits, ("max_mx", "max_addresses"), "[limits]", table="limits")
    max_mx = _limit(check, limits, "max_mx", CATALOG_MAX_MX)
    max_addresses = _limit(check, limits, "max_addresses", CATALOG_MAX_ADDRESSES)
    raw_providers = data.get("provider")
    if not isinstance(raw_providers, list) or not raw_providers:
        raise check.fail("no [[provider]] tables: the catalog lists no provider")
    providers: list[Provider] = []
    seen_providers: dict[str, int] = {}
    seen_hosts: dict[str, str] = {}
    for index, raw in enumerate(raw_providers):
        at: At = (("provider", index),)
        provider = _provider(check, raw, at, index)
        if provider.name in seen_providers:
            raise check.fail(f'provider "{provider.name}" is defined twice', at, "name")
        seen_providers[provider.name] = index
        for host_index, host in enumerate(provider.hosts):
            owner = seen_hosts.get(host.name)
            if owner is not None:
                where = "this provider" if owner == provider.name else f'"{owner}"'
                raise check.fail(
                    f'provider "{provider.name}": host {host.name} is already listed under {where}',
                    (*at, ("host", host_index)),
                    "domain" if host.mail_domain else "host",
                )
            seen_hosts[host.name] = provider.name
        providers.append(provider)
    sections = MappingProxyType({k: data[k] for k in FOREIGN_SECTIONS if k in data})
    return Catalog(tuple(providers), check.path, max_mx, max_addresses, sections)


def _limit(check: TableChecker, limits: Table, key: str, default: int) -> int:
    value = limits.get(key, default)
    if type(value) is not int or not 1 <= value <= _LIMIT_MAX:
        raise check.fail(
            f"[limits] {key} must be a whole number from 1 to {_LIMIT_MAX}, not {value!r}",
            key=key,
            table="limits",
        )
    return value


def _provider(check: TableChecker, value: object, at: At, index: int) -> Provider:
    raw = check.table(value, f"provider #{index + 1} is not a table")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise check.fail(
            f"provider #{index + 1}: name must be letters, digits, '.', '_' or '-', not {name!r}",
            at,
            "name",
        )
    where = f'provider "{name}"'
    check.known_keys(raw, ("name", "description", "network", "host"), where, at)
    description = check.optional_string(raw, "description", where, at) or ""
    network = check.optional_string(raw, "network", where, at)
    raw_hosts = raw.get("host")
    if not isinstance(raw_hosts, list) or not raw_hosts:
        raise check.fail(f"{where}: no [[provider.host]] entries", at)
    hosts = tuple(
        _host(check, host, (*at, ("host", i)), f"{where}", i) for i, host in enumerate(raw_hosts)
    )
    return Provider(name=name, description=description, hosts=hosts, network=network)


def _host(check: TableChecker, value: object, at: At, where: str, index: int) -> CatalogHost:
    raw = check.table(value, f"{where}: host #{index + 1} is not a table", at[:1])
    check.known_keys(raw, _HOST_KEYS, f"{where}, host #{index + 1}", at)
    has_host, has_domain = "host" in raw, "domain" in raw
    if has_host == has_domain:
        raise check.fail(f"{where}: host #{index + 1} needs exactly one of 'host' or 'domain'", at)
    key = "domain" if has_domain else "host"
    value = raw[key]
    if not isinstance(value, str):
        raise check.fail(f"{where}: {key} must be a string", at, key)
    literal = ip_literal(value)
    if literal is not None and not has_domain:
        name = literal
    else:
        try:
            name = check_host_name(value, what=key)
        except InputError as exc:
            raise check.fail(f"{where}: {exc}", at, key) from None
    where = f"{where}, {key} {name}"
    role = check.one_of(raw, "role", ROLES, where, at, default="mx" if has_domain else None)
    if has_domain and role != "mx":
        raise check.fail(
            f"{where}: a 'domain' entry is resolved by MX, so its role is \"mx\"", at, "role"
        )
    ports = check.ports(
        raw, "ports", where, at, allowed=MAIL_PORTS, required=True, allow_empty=False
    )
    negative = check.ports(
        raw, "negative_ports", where, at, allowed=MAIL_PORTS, required=False, allow_empty=True
    )
    overlap = sorted(set(ports) & set(negative))
    if overlap:
        raise check.fail(
            f"{where}: port {overlap[0]} is in both ports and negative_ports", at, "negative_ports"
        )
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise check.fail(
            f"{where}: 'source' (where the port facts come from) is required",
            at,
            "source" if "source" in raw else None,
        )
    return CatalogHost(
        name=name,
        role=role,
        ports=ports,
        negative_ports=negative,
        expect=_expect(check, raw.get("expect"), where, at),
        source=source.strip(),
        mail_domain=has_domain,
    )


def _expect(check: TableChecker, value: object, where: str, at: At) -> Expectation | None:
    if value is None:
        return None
    raw = check.table(value, f"{where}: expect must be a table", at, "expect")
    allowed = ("greeting_pattern", "starttls", "cert_name")
    check.known_keys(raw, allowed, f"{where}, expect", at, line_key="expect")
    pattern = raw.get("greeting_pattern")
    if pattern is not None:
        pattern = check.regex(pattern, "greeting_pattern", where, at, "expect")
    starttls = check.boolean(raw, "starttls", where, at, default=None, line_key="expect")
    cert_name = raw.get("cert_name")
    if cert_name is not None:
        if not isinstance(cert_name, str):
            raise check.fail(f"{where}: cert_name must be a string", at, "expect")
        bare = cert_name[2:] if cert_name.startswith("*.") else cert_name
        try:
            check_host_name(bare, what="cert_name")
        except InputError as exc:
            raise check.fail(f"{where}: {exc}", at, "expect") from None
    if pattern is None and starttls is None and cert_name is None:
        return None
    return Expectation(greeting_pattern=pattern, starttls=starttls, cert_name=cert_name)
