"""What a readiness check asks, of whom, and how it reads the answers (pure, no I/O).

The whoami methods and the DNSBL zones with their code tables live in the catalog TOML
(``[[whoami]]`` and ``[[dnsbl]]``, documented at the top of ``targets/catalog.toml``), so
a user or a test can point them at other servers. They are read from the catalog as
already loaded (:attr:`portprobe.targets.catalog.Catalog.sections`), the built-in ones
once per process. A ``--catalog`` file without those sections gets the built-in ones.
Every problem is one line naming the file and the value.

This module imports no dnspython and no trio.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Final, Literal, Protocol

from portprobe.datafile import DataFileProblem, Table, TableChecker, parse_toml, read_text
from portprobe.errors import CatalogError, InputError
from portprobe.text import shorten, visible
from portprobe.vocab import FAMILIES, Family

#: How a whoami server answers: ``opendns`` style is an A/AAAA record of the query name
#: holding the address it saw; ``google`` style is a TXT record holding it.
WhoamiStyle = Literal["opendns", "google"]
WHOAMI_STYLES: Final[tuple[WhoamiStyle, ...]] = ("opendns", "google")
_DNSBL_KEYS: Final = ("zone", "name", "source", "listed", "errors", "test_listed", "test_clean")
#: A zone is a DNS name: labels of letters, digits and '-', at least two of them.
_LABEL: Final = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
#: Enough for anyone's list of lists; more is a mistake (and many queries per run).
MAX_ZONES: Final = 16
MAX_WHOAMI: Final = 8
#: How long ``run`` waits for the probes to finish before it folds in EHLO echoes.
DEFAULT_ECHO_WAIT: Final = 30.0


@dataclass(frozen=True)
class WhoamiMethod:
    """Ask ``server`` (a host name, resolved through the configured resolver) about
    ``query``; its answer is the address our query came from."""

    style: WhoamiStyle
    server: str
    query: str
    port: int = 53


@dataclass(frozen=True)
class DnsblZone:
    """One DNS blocklist and the meaning of each answer it documents.

    ``listed`` maps a documented listing answer to its meaning; ``errors`` maps an
    answer the list documents as an error to its reason. Anything else is undocumented
    and therefore ``unknown``, never ``listed``. ``test_listed``/``test_clean`` are the
    list's published test entries (IPv4 addresses whose reversed form is queried).
    """

    zone: str
    name: str = ""
    listed: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    test_listed: str | None = None
    test_clean: str | None = None
    source: str = ""

    @property
    def label(self) -> str:
        return self.name or self.zone


@dataclass(frozen=True)
class ReadinessSettings:
    whoami: tuple[WhoamiMethod, ...]
    dnsbl: tuple[DnsblZone, ...]
    public_ips: tuple[str, ...] = ()
    ehlo_name: str | None = None
    dns_timeout: float = 5.0
    nameservers: tuple[tuple[str, int], ...] = ()
    families: tuple[Family, ...] = FAMILIES
    enabled: bool = True
    echo_wait: float = DEFAULT_ECHO_WAIT
    resolv_conf: str = "/etc/resolv.conf"


#: A catalog's own whoami methods and DNSBL zones (None: the section is absent).
Sections = tuple[tuple[WhoamiMethod, ...] | None, tuple[DnsblZone, ...] | None]


class LoadedCatalog(Protocol):
    """What readiness reads of a loaded :class:`portprobe.targets.catalog.Catalog`."""

    @property
    def path(self) -> str: ...

    @property
    def sections(self) -> Mapping[str, object]: ...


def parse_public_ip(text: str) -> str:
    """``--public-ip`` value as a normalised IP literal; InputError naming it otherwise."""
    raw = text.strip()
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1]
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        shown = shorten(visible(text), 60)
        raise InputError(f"--public-ip {shown!r}: not an IPv4 or IPv6 address") from None
    if (kind := _never_public(address)) is not None:
        # Receivers and DNSBLs only ever see a public address; asking a DNSBL about this
        # one would tell it our private network for nothing.
        raise InputError(
            f"--public-ip {address}: {kind}, never what receivers see; give this machine's "
            "public address (or leave --public-ip out to have it found)"
        )
    return str(address)


#: Ranges that are never a mail server's address as the internet sees it (the
#: documentation and benchmarking ranges stay allowed: labs and examples use them).
_NEVER_PUBLIC: tuple[tuple[str, str], ...] = (
    ("10.0.0.0/8", "a private address (RFC 1918)"),
    ("172.16.0.0/12", "a private address (RFC 1918)"),
    ("192.168.0.0/16", "a private address (RFC 1918)"),
    ("100.64.0.0/10", "a carrier-grade NAT address (RFC 6598)"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("0.0.0.0/8", "not a host address"),
    ("::1/128", "a loopback address"),
    ("::/128", "not a host address"),
    ("fc00::/7", "a unique local address (RFC 4193)"),
    ("fe80::/10", "a link-local address"),
)


def _never_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for network, kind in _NEVER_PUBLIC:
        net = ipaddress.ip_network(network)
        if net.version == address.version and address in net:
            return kind
    return None


def zone_problem(text: str) -> str | None:
    """Why ``text`` is not a DNS zone name we can query under, or None."""
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253 or not name.isascii():
        return "not a domain name (ASCII, 1-253 characters; IDNA as xn--...)"
    labels = name.split(".")
    if len(labels) < 2:
        return "not a domain name (needs at least two labels, like zen.spamhaus.org)"
    if not all(_LABEL.match(label) for label in labels):
        return "not a domain name (labels of letters, digits and '-')"
    return None


def parse_dnsbl_zone(text: str) -> str:
    """``--dnsbl`` value as a lower-case zone without the final dot; InputError otherwise."""
    problem = zone_problem(text.strip())
    if problem is not None:
        shown = shorten(visible(text), 60)
        raise InputError(f"--dnsbl {shown!r}: {problem}")
    return text.strip().rstrip(".").lower()


def load_readiness_settings(
    catalog_path: Path | None,
    *,
    catalog: LoadedCatalog | None = None,
    extra_zones: Sequence[str] = (),
    public_ips: Sequence[str] = (),
    ehlo_name: str | None = None,
    dns_timeout: float,
    nameservers: Sequence[tuple[str, int]] = (),
    families: Sequence[Family] = FAMILIES,
    enabled: bool = True,
    echo_wait: float = DEFAULT_ECHO_WAIT,
) -> ReadinessSettings:
    """Whoami methods and DNSBL zones from the catalog, plus the user's options.

    ``catalog``, the catalog already loaded, gives its own sections without the file
    being read again; else ``catalog_path`` is read (None: only the built-in sections).
    A section the catalog lacks is the built-in one. Raises CatalogError / InputError,
    one line each.
    """
    whoami, zones = _builtin_sections()
    own: Sections = (None, None)
    if catalog is not None:
        own = readiness_sections(catalog.sections, catalog.path)
    elif catalog_path is not None:
        label = str(catalog_path)
        try:
            text = read_text(catalog_path)
        except DataFileProblem as exc:
            raise CatalogError(f"{label}: {exc.problem}") from None
        own = parse_readiness_sections(text, label)
    whoami = own[0] if own[0] is not None else whoami
    zones = own[1] if own[1] is not None else zones
    assert whoami is not None and zones is not None  # the built-in file has both
    known = {z.zone for z in zones}
    added = list(zones)
    for text in extra_zones:
        zone = parse_dnsbl_zone(text)
        if zone not in known:
            known.add(zone)
            added.append(DnsblZone(zone=zone))
    stated = tuple(dict.fromkeys(parse_public_ip(ip) for ip in public_ips))
    return ReadinessSettings(
        whoami=whoami,
        dnsbl=tuple(added),
        public_ips=stated,
        ehlo_name=ehlo_name,
        dns_timeout=dns_timeout,
        nameservers=tuple(nameservers),
        families=tuple(families),
        enabled=enabled,
        echo_wait=echo_wait,
    )


@functools.cache
def _builtin_sections() -> Sections:
    """The built-in catalog's sections: package data, read once per process."""
    text = resources.files("portprobe.targets").joinpath("catalog.toml").read_text("utf-8")
    return parse_readiness_sections(text, "<built-in catalog.toml>")


def parse_readiness_sections(text: str, label: str = "<catalog>") -> Sections:
    """The ``[[whoami]]`` and ``[[dnsbl]]`` sections of a catalog's text (None: absent)."""
    try:
        data = parse_toml(text)
    except DataFileProblem as exc:
        where = label if exc.line is None else f"{label}:{exc.line}"
        raise CatalogError(f"{where}: {exc.problem}") from None
    return readiness_sections(data, label)


def readiness_sections(document: Table, label: str) -> Sections:
    """The ``[[whoami]]`` and ``[[dnsbl]]`` sections of a parsed catalog (None: absent)."""
    check = TableChecker(None, label)  # messages name the file and the table, no line
    whoami = document.get("whoami")
    zones = document.get("dnsbl")
    return (
        None if whoami is None else _whoami_section(check, whoami),
        None if zones is None else _dnsbl_section(check, zones),
    )


def _string(check: TableChecker, raw: Table, key: str, where: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise check.fail(f"{where}: {key} must be a string, not {value!r}")
    return value


def _whoami_section(check: TableChecker, value: object) -> tuple[WhoamiMethod, ...]:
    if not isinstance(value, list) or len(value) > MAX_WHOAMI:
        raise check.fail(f"[[whoami]]: must be 0-{MAX_WHOAMI} tables")
    methods = []
    for index, item in enumerate(value):
        where = f"whoami #{index + 1}"
        entry = check.table(item, f"{where}: is not a table")
        check.known_keys(entry, ("style", "server", "query", "port"), where)
        style = next((s for s in WHOAMI_STYLES if s == entry.get("style")), None)
        if style is None:
            shown = ", ".join(WHOAMI_STYLES)
            raise check.fail(f"{where}: style {entry.get('style')!r} is not one of: {shown}")
        names = {}
        for key in ("server", "query"):
            name = _string(check, entry, key, where)
            problem = zone_problem(name)
            if problem is not None:
                raise check.fail(f"{where}: {key} {shorten(visible(name), 60)!r}: {problem}")
            names[key] = name.rstrip(".").lower()
        port = entry.get("port", 53)
        if type(port) is not int or not 1 <= port <= 65535:
            raise check.fail(f"{where}: port must be a whole number 1-65535, not {port!r}")
        methods.append(WhoamiMethod(style, names["server"], names["query"], port))
    return tuple(methods)


def _dnsbl_section(check: TableChecker, value: object) -> tuple[DnsblZone, ...]:
    if not isinstance(value, list) or len(value) > MAX_ZONES:
        raise check.fail(f"[[dnsbl]]: must be 0-{MAX_ZONES} tables")
    zones: list[DnsblZone] = []
    for index, item in enumerate(value):
        where = f"dnsbl #{index + 1}"
        entry = check.table(item, f"{where}: is not a table")
        check.known_keys(entry, _DNSBL_KEYS, where)
        zone = _string(check, entry, "zone", where)
        problem = zone_problem(zone)
        if problem is not None:
            raise check.fail(f"{where}: zone {shorten(visible(zone), 60)!r}: {problem}")
        zone = zone.rstrip(".").lower()
        where = f'dnsbl "{zone}"'
        if any(z.zone == zone for z in zones):
            raise check.fail(f"{where}: is defined twice")
        listed = _code_table(check, entry.get("listed", {}), where, "listed")
        errors = _code_table(check, entry.get("errors", {}), where, "errors")
        both = sorted(set(listed) & set(errors))
        if both:
            raise check.fail(f"{where}: answer {both[0]} is in both listed and errors")
        tests = {}
        for key in ("test_listed", "test_clean"):
            test = entry.get(key)
            if test is not None:
                tests[key] = _ipv4(check, test, where, key)
        zones.append(
            DnsblZone(
                zone=zone,
                name=_string(check, entry, "name", where),
                listed=listed,
                errors=errors,
                test_listed=tests.get("test_listed"),
                test_clean=tests.get("test_clean"),
                source=_string(check, entry, "source", where),
            )
        )
    return tuple(zones)


def _ipv4(check: TableChecker, value: object, where: str, key: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value if isinstance(value, str) else ""))
    except ValueError:
        raise check.fail(f"{where}: {key} {value!r} is not an IPv4 address") from None


def _code_table(check: TableChecker, value: object, where: str, key: str) -> dict[str, str]:
    """``{"127.0.0.2" = "meaning", ...}``: every key an IPv4 answer, every value text."""
    raw = check.table(value, f"{where}: {key} must be a table of answer = meaning")
    table: dict[str, str] = {}
    for answer, meaning in raw.items():
        address = _ipv4(check, answer, where, f"{key} answer")
        if not isinstance(meaning, str) or not meaning.strip():
            raise check.fail(f"{where}: {key} {answer}: the meaning must be non-empty text")
        table[address] = meaning.strip()
    return table
