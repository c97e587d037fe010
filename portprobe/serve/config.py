"""The modules file of ``portprobe serve``: TOML, one table per module.

Why TOML and not blackbox.yml's YAML: the catalog (``--catalog``) is TOML already, so a
user writes one format and the same loader rules apply (:mod:`portprobe.datafile`:
file:line in every error); Python reads it with the standard library (``tomllib``), so
the exporter adds no YAML parser; and TOML has none of YAML's silent retyping (``no`` →
false, ``0755`` → octal, ``1:30`` → 90) in a file where ports and times are the point.

    # portprobe-serve.toml
    [modules.default]                 # GET /probe?module=default
    families = ["ipv4"]               # every DiagnoseRequest field, same names and units

    [modules.mx]                      # GET /probe?module=mx&target=example.org
    target = "domain"                 # ?target= is a mail domain (MX-resolved) ...
    allow_targets = ["example.org", "*.example.net"]   # ... and only one of these
    ports = [25, 587]

    [modules.relay]                   # GET /probe?module=relay&target=192.0.2.7
    target = "host"                   # ?target= is a host name or an address
    allow_targets = ["192.0.2.0/24", "smtp.example.org"]
    allow_private = false             # (the default) refuse 10/8, 127/8, fe80::/10 ...

Keys of a module: the :class:`~portprobe.DiagnoseRequest` fields (``domains``,
``targets``, ``catalog``, ``ports``, ``families``, ``nameservers``, ``ca_file``,
``timeout``, ``connect_timeout``, ``dns_timeout``, ``concurrency``, ``per_host``,
``ehlo_name``, ``port_map`` (a table ``{ "25" = 2525 }``), ``max_mx``, ``max_addresses``,
``readiness``, ``public_ips``, ``dnsbl_zones``, ``sysfs``, ``platform``, ``expect``),
and the exporter's own:

- ``target``: ``"domain"`` or ``"host"``: what ``?target=`` stands for; it replaces the
  module's domains or targets (without domains or targets of its own, a scrape must
  give one: 400 otherwise). Absent: the module takes no target (400 if one is given).
- ``allow_targets``: names (``example.org``), wildcards (``*.example.org``: any name
  under it) and networks (``192.0.2.0/24``, ``2001:db8::/32``, one address) a target must
  match. Required with ``target``: an exporter must not probe whatever a URL names.
- ``allow_private``: accept a target that is a loopback, private, link-local or other
  non-global address (default false). Names are checked against the allow-list only.
- ``expect``: the verdicts for which ``probe_success`` is 1 (default ``["open"]``).
- ``deadline``: seconds a run may take at most (default 120, like blackbox_exporter's
  fallback); a scrape's ``X-Prometheus-Scrape-Timeout-Seconds`` shortens it.

Relative paths (``catalog``, ``ca_file``, ``sysfs``) are relative to the modules file.
Every problem is one line naming the file, the line and the key: the exporter exits 2.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from portprobe.errors import InputError, PortprobeError
from portprobe.request import DiagnoseRequest

TargetKind = Literal["domain", "host"]
DEFAULT_DEADLINE: Final = 120.0
MODULE_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: The longest ``?target=`` looked at (a DNS name is at most 253 characters).
TARGET_MAX: Final = 255

_STRINGS = ("domains", "targets", "nameservers", "public_ips", "dnsbl_zones", "expect", "families")
_PATHS = ("catalog", "ca_file", "sysfs")
_FLOATS = ("timeout", "connect_timeout", "dns_timeout", "deadline")
_INTS = ("concurrency", "per_host", "max_mx", "max_addresses")
_OPTIONAL_STRINGS = ("ehlo_name", "platform")
_KEYS: Final = frozenset(
    (
        *_STRINGS,
        *_PATHS,
        *_FLOATS,
        *_INTS,
        *_OPTIONAL_STRINGS,
        "ports",
        "port_map",
        "readiness",
        "target",
        "allow_targets",
        "allow_private",
    )
)


class ConfigError(PortprobeError):
    """The modules file cannot be used: one line, ``FILE:LINE: key: problem``."""


class TargetRefused(Exception):
    """A scrape's ``target`` that this module does not accept (HTTP 400, one line)."""


@dataclass(frozen=True)
class _Allowed:
    names: tuple[str, ...]  # exact, normalised
    suffixes: tuple[str, ...]  # from "*.example.org": ".example.org"
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def name(self, host: str) -> bool:
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def address(self, literal: str) -> bool:
        ip = ipaddress.ip_address(literal)
        return any(ip.version == n.version and ip in n for n in self.networks)


@dataclass(frozen=True)
class Module:
    """One module: the diagnosis it runs, and which scrape targets it accepts."""

    name: str
    request: DiagnoseRequest
    target: TargetKind | None = None
    allowed: _Allowed = _Allowed((), (), ())
    allow_private: bool = False
    deadline: float = DEFAULT_DEADLINE

    @property
    def success_verdicts(self) -> tuple[str, ...]:
        return self.request.expect or ("open",)

    def request_for(self, target: str | None) -> DiagnoseRequest:
        """The request of one scrape; :class:`TargetRefused` for a target not allowed."""
        if target is None:
            if self.target is not None and not (self.request.domains or self.request.targets):
                raise TargetRefused(f"module {self.name!r} needs a target (&target=...)")
            return self.request
        from portprobe.targets.resolve import parse_domain, parse_target

        if self.target is None:
            raise TargetRefused(f"module {self.name!r} takes no target")
        if len(target) > TARGET_MAX:
            raise TargetRefused(f"target is longer than {TARGET_MAX} characters")
        try:
            if self.target == "domain":
                host, literal = parse_domain(target), None
            else:
                host, literal = parse_target(target)
        except InputError as exc:
            raise TargetRefused(str(exc)) from None
        if literal is not None:
            if not self.allow_private and not ipaddress.ip_address(literal).is_global:
                raise TargetRefused(
                    f"target {literal} is not a global address, and module {self.name!r} "
                    "does not allow private ones (allow_private)"
                )
            allowed = self.allowed.address(literal) or self.allowed.name(literal)
        else:
            allowed = self.allowed.name(host)
        if not allowed:
            raise TargetRefused(f"target {host!r} is not in module {self.name!r}'s allow_targets")
        try:
            if self.target == "domain":
                return dataclasses.replace(self.request, domains=(host,), targets=())
            return dataclasses.replace(self.request, targets=(host,), domains=())
        except InputError as exc:
            raise TargetRefused(str(exc)) from None


@dataclass(frozen=True)
class Config:
    modules: Mapping[str, Module]
    path: str | None = None


def default_config(request: DiagnoseRequest) -> Config:
    """Without ``--config``: one module, ``default``, the diagnosis of the serve options."""
    return Config({"default": Module("default", request)})


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check a modules file; :class:`ConfigError` (one line) when it is wrong."""
    from portprobe.datafile import DataFileProblem, parse_toml, read_text

    label = os.fspath(path)
    try:
        text = read_text(label)
        data = parse_toml(text)
    except DataFileProblem as exc:
        where = f"{label}:{exc.line}" if exc.line else label
        raise ConfigError(f"{where}: {exc.problem}") from None
    return _Checker(text, label).config(data)


class _Checker:
    def __init__(self, text: str, path: str) -> None:
        self.lines = text.splitlines()
        self.path = path
        self.base = Path(path).parent

    def _line(self, module: str | None, key: str | None) -> int | None:
        start = 1
        if module is not None:
            header = re.compile(
                rf"^\s*\[\s*modules\s*\.\s*\"?{re.escape(module)}\"?\s*\]\s*(#.*)?$"
            )
            found = next((n for n, t in enumerate(self.lines, 1) if header.match(t)), None)
            if found is None:
                return None
            start = found
        if key is None:
            return start
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for number in range(start, len(self.lines) + 1):
            line = self.lines[number - 1]
            if number > start and line.lstrip().startswith("["):
                break
            if pattern.match(line):
                return number
        return start

    def fail(self, problem: str, module: str | None = None, key: str | None = None) -> ConfigError:
        line = self._line(module, key)
        where = f"{self.path}:{line}" if line is not None else self.path
        dotted = ".".join(p for p in ("modules" if module else None, module, key) if p)
        return ConfigError(f"{where}: {dotted}: {problem}" if dotted else f"{where}: {problem}")

    def config(self, data: Mapping[str, Any]) -> Config:
        for key in data:
            if key != "modules":
                raise self.fail(f"unknown key {key!r} (a modules file has [modules.NAME] tables)")
        modules = data.get("modules")
        if not isinstance(modules, dict) or not modules:
            raise self.fail("no module: add a [modules.NAME] table")
        out: dict[str, Module] = {}
        for name, table in modules.items():
            if not MODULE_NAME.match(name):
                raise self.fail("a module name is 1-64 letters, digits, '-' or '_'", name)
            if not isinstance(table, dict):
                raise self.fail("must be a table", name)
            out[name] = self.module(name, table)
        return Config(out, self.path)

    def module(self, name: str, table: Mapping[str, Any]) -> Module:
        fields: dict[str, Any] = {}
        serve: dict[str, Any] = {}
        for key, value in table.items():
            if key not in _KEYS:
                near = _nearest(key)
                hint = f" (did you mean {near!r}?)" if near else ""
                raise self.fail(f"unknown key{hint}", name, key)
            checked = self.value(name, key, value)
            if key in ("target", "allow_targets", "allow_private", "deadline"):
                serve[key] = checked
            else:
                fields[key] = checked
        try:
            request = DiagnoseRequest(**fields)
        except InputError as exc:
            raise self.fail(str(exc), name, _key_named_in(str(exc), fields)) from None
        target = serve.get("target")
        patterns = serve.get("allow_targets", ())
        if target is not None and not patterns:
            raise self.fail("a module that takes a target needs allow_targets", name, "target")
        if patterns and target is None:
            raise self.fail(
                'allow_targets needs target = "domain" or "host"', name, "allow_targets"
            )
        return Module(
            name=name,
            request=request,
            target=target,
            allowed=self.allowed(name, patterns),
            allow_private=serve.get("allow_private", False),
            deadline=serve.get("deadline", DEFAULT_DEADLINE),
        )

    def value(self, module: str, key: str, value: Any) -> Any:
        def bad(what: str) -> ConfigError:
            return self.fail(f"must be {what}, not {value!r}", module, key)

        if key in _STRINGS or key == "allow_targets":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad("a list of strings")
            return tuple(value)
        if key == "ports":
            if not isinstance(value, list) or not all(_is_int(v) for v in value):
                raise bad("a list of port numbers")
            return tuple(value)
        if key in _PATHS:
            if not isinstance(value, str) or not value:
                raise bad("a path")
            return self.base / value
        if key in _FLOATS:
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise bad("a number of seconds greater than 0")
            return float(value)
        if key in _INTS:
            if not _is_int(value):
                raise bad("a whole number")
            return value
        if key in _OPTIONAL_STRINGS:
            if not isinstance(value, str):
                raise bad("a string")
            return value
        if key in ("readiness", "allow_private"):
            if not isinstance(value, bool):
                raise bad("true or false")
            return value
        if key == "target":
            if value not in ("domain", "host"):
                raise bad('"domain" or "host"')
            return value
        assert key == "port_map"
        if not isinstance(value, dict):
            raise bad('a table of role = port, e.g. { "25" = 2525 }')
        out: dict[int, int] = {}
        for role, port in value.items():
            if not role.isdigit() or not _is_int(port):
                raise bad('a table of role = port, e.g. { "25" = 2525 }')
            out[int(role)] = port
        return out

    def allowed(self, module: str, patterns: tuple[str, ...]) -> _Allowed:
        from portprobe.targets.names import check_host_name

        names: list[str] = []
        suffixes: list[str] = []
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for pattern in patterns:
            try:
                if "/" in pattern or _is_address(pattern):
                    networks.append(ipaddress.ip_network(pattern.strip("[]"), strict=False))
                elif pattern.startswith("*."):
                    suffixes.append("." + check_host_name(pattern[2:], what="allow_targets"))
                else:
                    names.append(check_host_name(pattern, what="allow_targets"))
            except (InputError, ValueError) as exc:
                raise self.fail(
                    f"{pattern!r} is not a name, *.name, address or network ({exc})",
                    module,
                    "allow_targets",
                ) from None
        return _Allowed(tuple(names), tuple(suffixes), tuple(networks))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _nearest(key: str) -> str | None:
    import difflib

    found = difflib.get_close_matches(key, sorted(_KEYS), n=1, cutoff=0.75)
    return found[0] if found else None


def _key_named_in(message: str, fields: Mapping[str, Any]) -> str | None:
    """The module key a DiagnoseRequest message is about (``--port-map: ...`` → port_map)."""
    for key in fields:
        if message.startswith((f"--{key.replace('_', '-')}", f"{key}:", f"invalid {key[:-1]}")):
            return key
    for key in fields:
        if key in message or key.replace("_", "-") in message:
            return key
    return None
