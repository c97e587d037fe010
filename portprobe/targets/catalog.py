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
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from portprobe import errors
from portprobe.datafile import DataFileProblem, parse_toml, read_text
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
    return _Checker(text, path).catalog(data)


class _Checker:
    """Schema checks, each failure located in the source text when possible."""

    def __init__(self, text: str, path: str) -> None:
        self.lines = text.splitlines()
        self.path = path

    # -- locating ---------------------------------------------------------------------

    def _table_line(self, provider: int | None, host: int | None) -> int | None:
        """1-based line of the ``provider``-th ``[[provider]]`` (and its ``host``-th
        ``[[provider.host]]``), or of the top of the file for ``provider is None``."""
        if provider is None:
            return 1
        seen_provider = -1
        seen_host = -1
        for number, raw in enumerate(self.lines, 1):
            line = raw.split("#", 1)[0].strip().replace(" ", "")
            if line == "[[provider]]":
                seen_provider += 1
                seen_host = -1
                if seen_provider == provider and host is None:
                    return number
            elif line == "[[provider.host]]" and seen_provider == provider:
                seen_host += 1
                if seen_host == host:
                    return number
        return None

    def _key_line(
        self, provider: int | None, host: int | None, key: str | None, table: str = ""
    ) -> int | None:
        start = self._table_line(provider, host)
        if table:  # a top-level table such as [limits]
            header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]\s*(#.*)?$")
            start = next((n for n, t in enumerate(self.lines, 1) if header.match(t)), 1)
        if start is None or key is None:
            return start
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(start, len(self.lines) + 1):
            line = self.lines[number - 1]
            if number > start and line.lstrip().startswith("["):
                break  # the next table: the key is not in this one
            if pattern.match(line):
                return number
        return start

    def fail(
        self,
        problem: str,
        provider: int | None = None,
        host: int | None = None,
        key: str | None = None,
        table: str = "",
    ) -> CatalogError:
        return CatalogError(self.path, problem, self._key_line(provider, host, key, table))

    # -- checking ---------------------------------------------------------------------

    def catalog(self, data: Mapping[str, Any]) -> Catalog:
        self._unknown_keys(data, {"schema", "limits", "provider", "whoami", "dnsbl"}, "top level")
        schema = data.get("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION or isinstance(schema, bool):
            raise self.fail(
                f"schema {schema!r} is not supported (only {SCHEMA_VERSION})", key="schema"
            )
        limits = data.get("limits", {})
        if not isinstance(limits, dict):
            raise self.fail("[limits] must be a table", key="limits")
        for key in limits:
            if key not in ("max_mx", "max_addresses"):
                raise self.fail(
                    f"[limits]: unknown key {key!r} (expected one of: max_addresses, max_mx)",
                    key=key,
                    table="limits",
                )
        max_mx = self._limit(limits, "max_mx", CATALOG_MAX_MX)
        max_addresses = self._limit(limits, "max_addresses", CATALOG_MAX_ADDRESSES)
        raw_providers = data.get("provider")
        if not isinstance(raw_providers, list) or not raw_providers:
            raise self.fail("no [[provider]] tables: the catalog lists no provider")
        providers: list[Provider] = []
        seen_providers: dict[str, int] = {}
        seen_hosts: dict[str, str] = {}
        for index, raw in enumerate(raw_providers):
            provider = self._provider(index, raw)
            if provider.name in seen_providers:
                raise self.fail(f'provider "{provider.name}" is defined twice', index, key="name")
            seen_providers[provider.name] = index
            for host_index, host in enumerate(provider.hosts):
                owner = seen_hosts.get(host.name)
                if owner is not None:
                    where = "this provider" if owner == provider.name else f'"{owner}"'
                    raise self.fail(
                        f'provider "{provider.name}": host {host.name} is already listed '
                        f"under {where}",
                        index,
                        host_index,
                        "domain" if host.mail_domain else "host",
                    )
                seen_hosts[host.name] = provider.name
            providers.append(provider)
        return Catalog(tuple(providers), self.path, max_mx, max_addresses)

    def _unknown_keys(
        self,
        table: Mapping[str, Any],
        allowed: set[str],
        where: str,
        provider: int | None = None,
        host: int | None = None,
    ) -> None:
        for key in table:
            if key not in allowed:
                expected = ", ".join(sorted(allowed))
                raise self.fail(
                    f"{where}: unknown key {key!r} (expected one of: {expected})",
                    provider,
                    host,
                    key,
                )

    def _limit(self, limits: Mapping[str, Any], key: str, default: int) -> int:
        value = limits.get(key, default)
        if type(value) is not int or not 1 <= value <= _LIMIT_MAX:
            raise self.fail(
                f"[limits] {key} must be a whole number from 1 to {_LIMIT_MAX}, not {value!r}",
                key=key,
                table="limits",
            )
        return value

    def _provider(self, index: int, raw: Any) -> Provider:
        if not isinstance(raw, dict):
            raise self.fail(f"provider #{index + 1} is not a table")
        name = raw.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise self.fail(
                f"provider #{index + 1}: name must be letters, digits, '.', '_' or '-', "
                f"not {name!r}",
                index,
                key="name",
            )
        where = f'provider "{name}"'
        self._unknown_keys(raw, {"name", "description", "network", "host"}, where, index)
        description = raw.get("description", "")
        network = raw.get("network")
        for key, value in (("description", description), ("network", network)):
            if value is not None and not isinstance(value, str):
                raise self.fail(f"{where}: {key} must be a string", index, key=key)
        raw_hosts = raw.get("host")
        if not isinstance(raw_hosts, list) or not raw_hosts:
            raise self.fail(f"{where}: no [[provider.host]] entries", index)
        hosts = tuple(self._host(index, i, where, h) for i, h in enumerate(raw_hosts))
        return Provider(name=name, description=description, hosts=hosts, network=network)

    def _host(self, provider: int, index: int, where: str, raw: Any) -> CatalogHost:
        if not isinstance(raw, dict):
            raise self.fail(f"{where}: host #{index + 1} is not a table", provider)
        allowed = {"host", "domain", "role", "ports", "negative_ports", "source", "expect"}
        self._unknown_keys(raw, allowed, f"{where}, host #{index + 1}", provider, index)
        has_host, has_domain = "host" in raw, "domain" in raw
        if has_host == has_domain:
            raise self.fail(
                f"{where}: host #{index + 1} needs exactly one of 'host' or 'domain'",
                provider,
                index,
            )
        key = "domain" if has_domain else "host"
        value = raw[key]
        if not isinstance(value, str):
            raise self.fail(f"{where}: {key} must be a string", provider, index, key)
        literal = ip_literal(value)
        if literal is not None and not has_domain:
            name = literal
        else:
            try:
                name = check_host_name(value, what=key)
            except InputError as exc:
                raise self.fail(f"{where}: {exc}", provider, index, key) from None
        where = f"{where}, {key} {name}"

        role = raw.get("role", "mx" if has_domain else None)
        if role not in ROLES:
            raise self.fail(
                f"{where}: role must be one of {', '.join(ROLES)}, not {role!r}",
                provider,
                index,
                "role",
            )
        if has_domain and role != "mx":
            raise self.fail(
                f"{where}: a 'domain' entry is resolved by MX, so its role is \"mx\"",
                provider,
                index,
                "role",
            )
        ports = self._ports(raw, "ports", where, provider, index, required=True)
        negative = self._ports(raw, "negative_ports", where, provider, index, required=False)
        overlap = sorted(set(ports) & set(negative))
        if overlap:
            raise self.fail(
                f"{where}: port {overlap[0]} is in both ports and negative_ports",
                provider,
                index,
                "negative_ports",
            )
        source = raw.get("source")
        if not isinstance(source, str) or not source.strip():
            raise self.fail(
                f"{where}: 'source' (where the port facts come from) is required",
                provider,
                index,
                "source" if "source" in raw else None,
            )
        expect = self._expect(raw.get("expect"), where, provider, index)
        return CatalogHost(
            name=name,
            role=role,
            ports=ports,
            negative_ports=negative,
            expect=expect,
            source=source.strip(),
            mail_domain=has_domain,
        )

    def _ports(
        self,
        raw: Mapping[str, Any],
        key: str,
        where: str,
        provider: int,
        host: int,
        *,
        required: bool,
    ) -> tuple[int, ...]:
        value = raw.get(key)
        if value is None and not required:
            return ()
        if not isinstance(value, list) or (required and not value):
            raise self.fail(
                f"{where}: {key} must be a non-empty list of ports", provider, host, key
            )
        allowed = ", ".join(str(p) for p in MAIL_PORTS)
        ports: list[int] = []
        for port in value:
            if type(port) is not int or port not in MAIL_PORTS:
                raise self.fail(
                    f"{where}: port {port!r} is not one of {allowed}", provider, host, key
                )
            if port in ports:
                raise self.fail(f"{where}: port {port} is listed twice", provider, host, key)
            ports.append(port)
        return tuple(sorted(ports, key=MAIL_PORTS.index))

    def _expect(self, raw: Any, where: str, provider: int, host: int) -> Expectation | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise self.fail(f"{where}: expect must be a table", provider, host, "expect")
        allowed = {"greeting_pattern", "starttls", "cert_name"}
        for key in raw:
            if key not in allowed:
                raise self.fail(
                    f"{where}, expect: unknown key {key!r} (expected one of: "
                    f"{', '.join(sorted(allowed))})",
                    provider,
                    host,
                    "expect",
                )
        pattern = raw.get("greeting_pattern")
        starttls = raw.get("starttls")
        cert_name = raw.get("cert_name")
        if pattern is not None:
            if not isinstance(pattern, str):
                raise self.fail(
                    f"{where}: greeting_pattern must be a string", provider, host, "expect"
                )
            try:
                re.compile(pattern)
            except re.error as exc:
                raise self.fail(
                    f"{where}: greeting_pattern is not a valid regular expression ({exc})",
                    provider,
                    host,
                    "expect",
                ) from None
        if starttls is not None and not isinstance(starttls, bool):
            raise self.fail(f"{where}: starttls must be true or false", provider, host, "expect")
        if cert_name is not None:
            if not isinstance(cert_name, str):
                raise self.fail(f"{where}: cert_name must be a string", provider, host, "expect")
            bare = cert_name[2:] if cert_name.startswith("*.") else cert_name
            try:
                check_host_name(bare, what="cert_name")
            except InputError as exc:
                raise self.fail(f"{where}: {exc}", provider, host, "expect") from None
        if pattern is None and starttls is None and cert_name is None:
            return None
        return Expectation(greeting_pattern=pattern, starttls=starttls, cert_name=cert_name)
