"""The options every command shares, one named type each, and option text turned into values.

typer reads the ``Annotated`` metadata; the functions below are pure and raise
:class:`~portprobe.errors.InputError`, which the edge (``portprobe.cli.run``) prints as one
line. The output options (``--format``, ``--json``, ``-o``, ``--color``) are declared here
once for ``diagnose`` and ``merge``, and checked by one function (:func:`choose_format`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer
from typer.models import OptionInfo

from portprobe.errors import InputError
from portprobe.vocab import FORMATS, MAIL_PORTS, Family

MAIL_PORTS_TEXT = ",".join(map(str, MAIL_PORTS))

#: ``portprobe merge`` renders a fleet, which has no JUnit or Nagios form.
MERGE_FORMATS = ("table", "markdown", "json", "openmetrics")


class ColorMode(enum.StrEnum):
    """``--color``: ``auto`` colours only a terminal, and only without NO_COLOR."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


# --- completion of option values (the shell asks; nothing here runs otherwise) ---------------


def _complete_from(values: Sequence[str]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        return [value for value in values if value.startswith(incomplete)]

    return complete


def complete_platform(incomplete: str) -> list[str]:
    """``--platform <TAB>``: the ids of the platform data file."""
    from portprobe.environment.platforms import load_platforms

    return [name for name in load_platforms().names if name.startswith(incomplete)]


# --- output options, shared by diagnose and merge ----------------------------------------------


def _format_option(formats: Sequence[str]) -> OptionInfo:
    option: OptionInfo = typer.Option(
        "--format",
        metavar="FORMAT",
        help=" | ".join(formats) + ".",
        autocompletion=_complete_from(formats),
    )
    return option


def _output_option(help_text: str) -> OptionInfo:
    option: OptionInfo = typer.Option("-o", "--output", metavar="PATH", help=help_text)
    return option


ReportFormatOption = Annotated[str | None, _format_option(FORMATS)]
FleetFormatOption = Annotated[str | None, _format_option(MERGE_FORMATS)]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
ReportOutputOption = Annotated[
    Path | None,
    _output_option("Write the report to PATH atomically (a directory gets a timestamped name)."),
]
FleetOutputOption = Annotated[
    Path | None,
    _output_option("Write the view to PATH atomically (a directory gets portprobe-fleet.EXT)."),
]
ColorOption = Annotated[
    ColorMode,
    typer.Option(
        "--color",
        metavar="WHEN",
        help="always | never | auto: auto colours a terminal unless NO_COLOR is set.",
        case_sensitive=False,
    ),
]


def choose_format(fmt: str | None, json_: bool, formats: Sequence[str]) -> str | None:
    """``--format`` and ``--json`` as one format (None: the command's default)."""
    if fmt is not None and fmt not in formats:
        raise InputError(f"--format: {fmt!r} is not one of {', '.join(formats)}")
    if json_:
        if fmt not in (None, "json"):
            raise InputError(f"--json and --format {fmt} disagree; give one")
        return "json"
    return fmt


# --- the diagnose command's options ------------------------------------------------------------

DomainOption = Annotated[
    list[str] | None,
    typer.Option("--domain", metavar="D", help="Probe the MX hosts of domain D (repeatable)."),
]
TargetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--target", metavar="H", help="Probe host name or IP literal H directly (repeatable)."
    ),
]
PortsOption = Annotated[
    str,
    typer.Option(help="Ports to probe: 465 is implicit TLS, the others plain + STARTTLS."),
]
NameserverOption = Annotated[
    list[str] | None,
    typer.Option(
        "--nameserver",
        metavar="IP[:PORT]",
        help="DNS server to use instead of the system resolver (repeatable).",
    ),
]
CaFileOption = Annotated[
    Path | None,
    typer.Option("--ca-file", metavar="PATH", help="Extra trust anchors (PEM)."),
]
CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog", metavar="FILE", help="Use this catalog (TOML) instead of the built-in."
    ),
]
Ipv4Option = Annotated[bool, typer.Option("-4", help="Only IPv4.")]
Ipv6Option = Annotated[bool, typer.Option("-6", help="Only IPv6.")]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "-t", "--timeout", metavar="S", help="Upper bound for one probe, all phases together."
    ),
]
ConnectTimeoutOption = Annotated[
    float,
    typer.Option(
        metavar="S",
        help="Upper bound for the TCP handshake (usually decided sooner from evidence).",
    ),
]
DnsTimeoutOption = Annotated[float, typer.Option(metavar="S", help="Bound for one DNS lookup.")]
DeadlineOption = Annotated[
    str | None,
    typer.Option(
        "--deadline",
        metavar="S",
        help="Stop the whole run after S seconds and report what completed (exit 130).",
    ),
]
ConcurrencyOption = Annotated[int, typer.Option(metavar="N", help="Maximum probes in flight.")]
PerHostOption = Annotated[
    int, typer.Option(metavar="N", help="Maximum connections to one address at once.")
]
ExpectOption = Annotated[
    str | None,
    typer.Option(
        metavar="V[,V...]", help="CI: exit 0 when the port-25 verdict is one of V, else 9."
    ),
]
RequirePortOption = Annotated[
    list[int] | None,
    typer.Option(
        "--require-port",
        metavar="P",
        help="CI: exit 9 unless port P greeted on at least one host (repeatable).",
    ),
]
RequireReadyOption = Annotated[
    bool,
    typer.Option("--require-ready", help="CI: exit 9 unless mail readiness is 'yes'."),
]
EhloNameOption = Annotated[
    str | None,
    typer.Option(metavar="NAME", help="Name sent in EHLO (default: our address literal)."),
]
PortMapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--port-map",
        metavar="ROLE=PORT",
        help="Dial PORT for the ROLE port, e.g. 25=2500 (labs, tests, forwarded relays).",
    ),
]
MaxMxOption = Annotated[int, typer.Option(metavar="N", help="At most N MX hosts per domain.")]
MaxAddressesOption = Annotated[
    int, typer.Option(metavar="N", help="At most N addresses per host and family.")
]
NoReadinessOption = Annotated[
    bool,
    typer.Option(
        "--no-readiness",
        help="Skip the mail-readiness checks (no whoami or DNSBL query is sent).",
    ),
]
PublicIpOption = Annotated[
    list[str] | None,
    typer.Option(
        "--public-ip",
        metavar="ADDR",
        help="This machine's public address; skips discovery (repeatable).",
    ),
]
DnsblOption = Annotated[
    list[str] | None,
    typer.Option("--dnsbl", metavar="ZONE", help="Also check DNSBL zone ZONE (repeatable)."),
]
RedactOption = Annotated[
    bool,
    typer.Option("--redact", help="Hide our public addresses and PTR names in every output."),
]
SysfsOption = Annotated[
    Path | None,
    typer.Option(
        metavar="PATH",
        help="Where to read DMI files for platform detection [default: /sys, if present].",
    ),
]
PlatformOption = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="Say where this runs instead of detecting it (see platforms).",
        autocompletion=complete_platform,
    ),
]
MtaOption = Annotated[
    str,
    typer.Option(
        "--mta",
        metavar="WHICH",
        help="auto | none | postfix | exim: read the local mail server (read-only).",
        autocompletion=_complete_from(("auto", "none", "postfix", "exim")),
    ),
]
PostfixConfigOption = Annotated[
    Path | None,
    typer.Option(metavar="DIR", help="Read the Postfix instance configured in DIR (postconf -c)."),
]
EximConfigOption = Annotated[
    Path | None,
    typer.Option(metavar="FILE", help="Read Exim with this configuration file (exim -C)."),
]
MailLogOption = Annotated[
    Path | None,
    typer.Option(metavar="FILE", help="The mail log to read [default: the usual files, journald]."),
]
QueueDestinationsOption = Annotated[
    int,
    typer.Option(metavar="N", help="Probe up to N deferred domains of the mail queue too."),
]
NetnsOption = Annotated[
    str | None,
    typer.Option(
        "--netns",
        metavar="NAME|PATH",
        help="Probe from inside this network namespace, with its resolver (root).",
    ),
]
ContainerOption = Annotated[
    str | None,
    typer.Option(
        "--container",
        metavar="NAME",
        help="Probe from inside this docker/podman container's network, read its MTA (root).",
    ),
]
TraceOption = Annotated[
    str,
    typer.Option(
        "--trace",
        metavar="auto|always|never",
        help="Trace port 25 hop by hop to name who stops it (auto: when it is stopped).",
    ),
]
MaxHopsOption = Annotated[
    int, typer.Option("--max-hops", metavar="N", help="The path trace's highest TTL (1-64).")
]
NoAsnOption = Annotated[
    bool,
    typer.Option("--no-asn", help="Skip the AS lookups of the path trace's hops (Team Cymru)."),
]
QuietOption = Annotated[bool, typer.Option("-q", "--quiet", help="Print only the verdict.")]
VerboseOption = Annotated[
    bool, typer.Option("-v", "--verbose", help="Per-probe table, timings, greeting/EHLO.")
]


# --- option text -> values (pure; raises InputError) -----------------------------------------


def parse_ports(text: str) -> tuple[int, ...]:
    ports: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise InputError(f"--ports: {part!r} is not a port number")
        if int(part) not in ports:
            ports.append(int(part))
    if not ports:
        raise InputError("--ports: give at least one of 25, 465, 587, 2525")
    return tuple(ports)


def parse_port_map(items: Sequence[str]) -> dict[int, int]:
    mapping: dict[int, int] = {}
    for item in items:
        role, sep, actual = item.partition("=")
        if not sep or not role.strip().isdigit() or not actual.strip().isdigit():
            raise InputError(f"--port-map: {item!r} is not ROLE=PORT (e.g. 25=2525)")
        mapping[int(role)] = int(actual)
    return mapping


def parse_expect(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise InputError("--expect: give at least one verdict")
    return values


def parse_families(ipv4: bool, ipv6: bool) -> tuple[Family, ...]:
    if ipv4 and ipv6:
        raise InputError("-4 and -6 exclude each other; give neither to probe both")
    return ("ipv4",) if ipv4 else ("ipv6",) if ipv6 else ("ipv4", "ipv6")


def parse_deadline(text: str | None) -> float | None:
    """``--deadline``: a finite number of seconds greater than 0, or None for no deadline.

    Read as text, not as a float option, so that ``inf`` and ``nan`` (which ``float()``
    accepts) get the same one-line answer as ``0`` or ``abc``.
    """
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InputError(f"--deadline: {text!r} is not a finite number of seconds greater than 0")
    return seconds
