"""The command line: options in, one library call, a renderer at the end, an exit code.

Everything heavy (trio, dnspython, ssl, the renderers) is imported inside the commands, so
``portprobe --help`` and ``--version`` start fast. Library errors become one line on
stderr and exit 2 here, at the edge; a bug becomes exit 1 with a short message (and the
traceback only under ``-v``).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from portprobe import __version__, defaults
from portprobe.exit_codes import INTERNAL_ERROR, INTERRUPTED, USAGE

ISSUES_URL = "the portprobe issue tracker"

FORMATS = ("table", "json", "markdown", "junit")
VERDICTS = ("open", "blocked", "intercepted", "restricted", "partial", "inconclusive", "offline")

app = typer.Typer(
    name="portprobe",
    help=(
        "Can this machine send mail on port 25, and if not, who is stopping it?\n\n"
        "Without a command, runs `diagnose`. Examples:\n\n"
        "  portprobe                          # probe the built-in catalog\n\n"
        "  portprobe --domain example.org     # probe example.org's MX hosts\n\n"
        "  portprobe --json -o report.json    # machine-readable report\n\n"
        "  portprobe --expect open -q         # CI: fail (exit 9) unless port 25 is open"
    ),
    add_completion=True,
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class UsageProblem(Exception):
    """Bad input found by portprobe itself (not by click): one line, exit 2."""


def _version_callback(value: bool) -> None:
    if value:
        print(f"portprobe {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Can this machine send mail on port 25, and if not, who is stopping it?"""


# --- option parsing (pure; raises UsageProblem) ---------------------------------------------


def parse_ports(text: str) -> tuple[int, ...]:
    from portprobe.model import MAIL_PORTS

    ports: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise UsageProblem(f"--ports: {part!r} is not a port number")
        port = int(part)
        if port not in MAIL_PORTS:
            allowed = ", ".join(map(str, MAIL_PORTS))
            raise UsageProblem(f"--ports: {port} is not one of {allowed} (see --port-map)")
        if port not in ports:
            ports.append(port)
    if not ports:
        raise UsageProblem("--ports: give at least one of 25, 465, 587, 2525")
    return tuple(ports)


def parse_port_map(items: Sequence[str]) -> dict[int, int]:
    from portprobe.model import MAIL_PORTS

    mapping: dict[int, int] = {}
    for item in items:
        role, sep, actual = item.partition("=")
        if not sep or not role.strip().isdigit() or not actual.strip().isdigit():
            raise UsageProblem(f"--port-map: {item!r} is not ROLE=PORT (e.g. 25=2525)")
        r, a = int(role), int(actual)
        if r not in MAIL_PORTS:
            raise UsageProblem(f"--port-map: {r} is not one of 25, 465, 587, 2525")
        if not 1 <= a <= 65535:
            raise UsageProblem(f"--port-map: {a} is not a port number (1-65535)")
        mapping[r] = a
    return mapping


def parse_expect(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    for value in values:
        if value not in VERDICTS:
            raise UsageProblem(f"--expect: {value!r} is not a verdict ({', '.join(VERDICTS)})")
    if not values:
        raise UsageProblem("--expect: give at least one verdict")
    return values


def _positive(name: str, value: float | None, *, integer: bool = False) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        kind = "a whole number" if integer else "a finite number"
        raise UsageProblem(f"{name}: must be {kind} greater than 0 (got {value:g})")


def parse_ehlo_name(name: str | None) -> str | None:
    from portprobe.protocol.smtp import ehlo_name_problem

    if name is not None and (problem := ehlo_name_problem(name)):
        raise UsageProblem(f"--ehlo-name: {name!r} {problem}")
    return name


# --- the diagnose command --------------------------------------------------------------------


@dataclass
class DiagnoseOptions:
    domains: list[str]
    targets: list[str]
    ports: tuple[int, ...]
    nameservers: list[str]
    ca_file: Path | None
    catalog: Path | None
    ipv4_only: bool
    ipv6_only: bool
    timeout: float
    connect_timeout: float
    dns_timeout: float
    concurrency: int
    per_host: int
    fmt: str | None
    output: Path | None
    expect: tuple[str, ...]
    require_ports: list[int]
    ehlo_name: str | None
    port_map: dict[int, int]
    max_mx: int
    max_addresses: int
    quiet: bool
    verbose: bool


@app.command()
def diagnose(
    domain: Annotated[
        list[str] | None,
        typer.Option("--domain", metavar="D", help="Probe the MX hosts of domain D (repeatable)."),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target", metavar="H", help="Probe host name or IP literal H directly (repeatable)."
        ),
    ] = None,
    ports: Annotated[
        str,
        typer.Option(help="Ports to probe: 465 is implicit TLS, the others plain + STARTTLS."),
    ] = "25,465,587,2525",
    nameserver: Annotated[
        list[str] | None,
        typer.Option(
            "--nameserver",
            metavar="IP[:PORT]",
            help="DNS server to use instead of the system resolver (repeatable).",
        ),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option("--ca-file", metavar="PATH", help="Extra trust anchors (PEM)."),
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option(
            "--catalog", metavar="FILE", help="Use this catalog (TOML) instead of the built-in."
        ),
    ] = None,
    ipv4: Annotated[bool, typer.Option("-4", help="Only IPv4.")] = False,
    ipv6: Annotated[bool, typer.Option("-6", help="Only IPv6.")] = False,
    timeout: Annotated[
        float, typer.Option(metavar="S", help="Upper bound for one probe, all phases together.")
    ] = defaults.TIMEOUT,
    connect_timeout: Annotated[
        float,
        typer.Option(
            metavar="S",
            help="Upper bound for the TCP handshake (usually decided sooner from evidence).",
        ),
    ] = defaults.CONNECT_TIMEOUT,
    dns_timeout: Annotated[
        float, typer.Option(metavar="S", help="Bound for one DNS lookup.")
    ] = defaults.DNS_TIMEOUT,
    concurrency: Annotated[
        int, typer.Option(metavar="N", help="Maximum probes in flight.")
    ] = defaults.CONCURRENCY,
    per_host: Annotated[
        int, typer.Option(metavar="N", help="Maximum connections to one address at once.")
    ] = defaults.PER_HOST,
    fmt: Annotated[
        str | None,
        typer.Option("--format", metavar="FORMAT", help="table | json | markdown | junit."),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            metavar="PATH",
            help="Write the report to PATH atomically (a directory gets a timestamped name).",
        ),
    ] = None,
    expect: Annotated[
        str | None,
        typer.Option(
            metavar="V[,V...]", help="CI: exit 0 when the port-25 verdict is one of V, else 9."
        ),
    ] = None,
    require_port: Annotated[
        list[int] | None,
        typer.Option(
            "--require-port",
            metavar="P",
            help="CI: exit 9 unless port P greeted on at least one host (repeatable).",
        ),
    ] = None,
    ehlo_name: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Name sent in EHLO (default: our address literal)."),
    ] = None,
    port_map: Annotated[
        list[str] | None,
        typer.Option(
            "--port-map",
            metavar="ROLE=PORT",
            help="Dial PORT for the ROLE port, e.g. 25=2500 (labs, tests, forwarded relays).",
        ),
    ] = None,
    max_mx: Annotated[
        int, typer.Option(metavar="N", help="At most N MX hosts per domain.")
    ] = defaults.MAX_MX,
    max_addresses: Annotated[
        int, typer.Option(metavar="N", help="At most N addresses per host and family.")
    ] = defaults.MAX_ADDRESSES,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only the verdict.")] = False,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Per-phase timings, full greeting/EHLO.")
    ] = False,
) -> None:
    """Probe ports 25, 465, 587 and 2525 and decide whether port 25 is blocked.

    Examples:

      portprobe diagnose --domain gmail.com

      portprobe diagnose --target smtp.example.net --ports 25,587 -v

      portprobe diagnose --format markdown >> "$GITHUB_STEP_SUMMARY"

      portprobe diagnose --format junit -o junit.xml --expect open
    """
    if fmt is not None and fmt not in FORMATS:
        raise UsageProblem(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if json_:
        if fmt not in (None, "json"):
            raise UsageProblem("--json and --format " + fmt + " disagree; give one")
        fmt = "json"
    if ipv4 and ipv6:
        raise UsageProblem("-4 and -6 exclude each other; give neither to probe both")
    _positive("--timeout", timeout)
    _positive("--connect-timeout", connect_timeout)
    _positive("--dns-timeout", dns_timeout)
    _positive("--concurrency", concurrency, integer=True)
    _positive("--per-host", per_host, integer=True)
    _positive("--max-mx", max_mx, integer=True)
    _positive("--max-addresses", max_addresses, integer=True)
    options = DiagnoseOptions(
        domains=list(domain or []),
        targets=list(target or []),
        ports=parse_ports(ports),
        nameservers=list(nameserver or []),
        ca_file=ca_file,
        catalog=catalog,
        ipv4_only=ipv4,
        ipv6_only=ipv6,
        timeout=timeout,
        connect_timeout=min(connect_timeout, timeout),
        dns_timeout=dns_timeout,
        concurrency=concurrency,
        per_host=per_host,
        fmt=fmt,
        output=output,
        expect=parse_expect(expect),
        require_ports=list(require_port or []),
        ehlo_name=parse_ehlo_name(ehlo_name),
        port_map=parse_port_map(port_map or []),
        max_mx=max_mx,
        max_addresses=max_addresses,
        quiet=quiet,
        verbose=verbose,
    )
    for p in options.require_ports:
        if p not in options.ports:
            raise UsageProblem(f"--require-port: {p} is not among the probed ports")
    from portprobe.diagnose import run_diagnose

    raise typer.Exit(run_diagnose(options))


@app.command()
def targets(
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", metavar="FILE", help="Show this catalog instead."),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the catalog as JSON.")] = False,
) -> None:
    """List the built-in catalog: providers, hosts, the ports they answer on.

    Examples:

      portprobe targets

      portprobe targets --json | jq '.providers[].name'
    """
    from portprobe.render.catalog import catalog_to_dict, render_catalog_table
    from portprobe.targets.catalog import load_catalog

    loaded = load_catalog(catalog)
    if json_:
        import json

        print(json.dumps(catalog_to_dict(loaded), indent=2))
    else:
        print(render_catalog_table(loaded, color=_color_ok(sys.stdout)))


def _color_ok(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


# --- entry point ---------------------------------------------------------------------------

_COMMANDS = ("diagnose", "targets")
_ROOT_FLAGS = ("--help", "-h", "--version", "--install-completion", "--show-completion")


def _with_default_command(argv: list[str]) -> list[str]:
    """``portprobe [options]`` means ``portprobe diagnose [options]`` (the spec)."""
    if argv and (argv[0] in _COMMANDS or argv[0] in _ROOT_FLAGS):
        return argv
    return ["diagnose", *argv]


def _fail(message: str, code: int) -> int:
    print(f"portprobe: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(list(sys.argv[1:] if argv is None else argv)))


def run(argv: list[str]) -> int:
    """Run the CLI and return its exit code; every expected error is one line on stderr."""
    from typer.exceptions import TyperException

    verbose = "-v" in argv or "--verbose" in argv
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=_with_default_command(argv), prog_name="portprobe", standalone_mode=False
        )
    except typer.Exit as exc:
        return exc.exit_code
    except TyperException as exc:  # usage errors: bad option, bad value
        return _fail(f"error: {_one_line(exc.format_message())}", USAGE)
    except typer.Abort:
        return _fail("interrupted", INTERRUPTED)
    except UsageProblem as exc:
        return _fail(f"error: {exc}", USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", INTERRUPTED)
    except Exception as exc:
        known = _known_input_error(exc)
        if known is not None:
            return _fail(f"error: {known}", USAGE)
        if verbose:
            import traceback

            traceback.print_exc()
        return _fail(
            f"internal error: {type(exc).__name__}: {_one_line(str(exc))}. This is a bug in "
            f"portprobe {__version__}; please report it to {ISSUES_URL} with the command line"
            + ("" if verbose else " and the traceback that -v prints"),
            INTERNAL_ERROR,
        )
    return int(result) if isinstance(result, int) else 0


def _known_input_error(exc: BaseException) -> str | None:
    """Library exceptions that mean bad input, turned into their one-line message."""
    from portprobe.output import OutputError

    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _known_input_error(exc.exceptions[0])  # raised inside a trio nursery

    if isinstance(exc, OutputError):
        return str(exc)
    name = type(exc).__name__
    if name in ("CatalogError", "InputError"):
        return _one_line(str(exc))
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())
