"""The command line: options in, one library call, a renderer at the end, an exit code.

Everything heavy (trio, dnspython, ssl, the renderers) is imported inside the commands, so
``portprobe --help`` and ``--version`` start fast. Library errors become one line on
stderr and exit 2 here, at the edge; a bug becomes exit 1 with a short message (and the
traceback only under ``-v``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from portprobe import cli_merge, defaults
from portprobe._version import __version__
from portprobe.errors import InputError, PortprobeError
from portprobe.exit_codes import INTERNAL_ERROR, INTERRUPTED, NAGIOS_UNKNOWN, USAGE
from portprobe.text import one_line
from portprobe.vocab import FORMATS, MAIL_PORTS

ISSUES_URL = "the portprobe issue tracker"

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


# --- option text -> values (pure; raises InputError) ---------------------------------------


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


def parse_format(fmt: str | None, json_: bool) -> str | None:
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if json_:
        if fmt not in (None, "json"):
            raise InputError(f"--json and --format {fmt} disagree; give one")
        return "json"
    return fmt


def parse_families(ipv4: bool, ipv6: bool) -> tuple[Any, ...]:
    if ipv4 and ipv6:
        raise InputError("-4 and -6 exclude each other; give neither to probe both")
    return ("ipv4",) if ipv4 else ("ipv6",) if ipv6 else ("ipv4", "ipv6")


# --- the diagnose command --------------------------------------------------------------------

_MAIL_PORTS_TEXT = ",".join(map(str, MAIL_PORTS))


# The diagnose command's options, one named type each (typer reads the Annotated metadata).
_DomainOption = Annotated[
    list[str] | None,
    typer.Option("--domain", metavar="D", help="Probe the MX hosts of domain D (repeatable)."),
]
_TargetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--target", metavar="H", help="Probe host name or IP literal H directly (repeatable)."
    ),
]
_PortsOption = Annotated[
    str,
    typer.Option(help="Ports to probe: 465 is implicit TLS, the others plain + STARTTLS."),
]
_NameserverOption = Annotated[
    list[str] | None,
    typer.Option(
        "--nameserver",
        metavar="IP[:PORT]",
        help="DNS server to use instead of the system resolver (repeatable).",
    ),
]
_CaFileOption = Annotated[
    Path | None,
    typer.Option("--ca-file", metavar="PATH", help="Extra trust anchors (PEM)."),
]
_CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog", metavar="FILE", help="Use this catalog (TOML) instead of the built-in."
    ),
]
_Ipv4Option = Annotated[bool, typer.Option("-4", help="Only IPv4.")]
_Ipv6Option = Annotated[bool, typer.Option("-6", help="Only IPv6.")]
_TimeoutOption = Annotated[
    float, typer.Option(metavar="S", help="Upper bound for one probe, all phases together.")
]
_ConnectTimeoutOption = Annotated[
    float,
    typer.Option(
        metavar="S",
        help="Upper bound for the TCP handshake (usually decided sooner from evidence).",
    ),
]
_DnsTimeoutOption = Annotated[float, typer.Option(metavar="S", help="Bound for one DNS lookup.")]
_ConcurrencyOption = Annotated[int, typer.Option(metavar="N", help="Maximum probes in flight.")]
_PerHostOption = Annotated[
    int, typer.Option(metavar="N", help="Maximum connections to one address at once.")
]
_FmtOption = Annotated[
    str | None,
    typer.Option("--format", metavar="FORMAT", help=" | ".join(FORMATS) + "."),
]
_JsonOption = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
_OutputOption = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        metavar="PATH",
        help="Write the report to PATH atomically (a directory gets a timestamped name).",
    ),
]
_ExpectOption = Annotated[
    str | None,
    typer.Option(
        metavar="V[,V...]", help="CI: exit 0 when the port-25 verdict is one of V, else 9."
    ),
]
_RequirePortOption = Annotated[
    list[int] | None,
    typer.Option(
        "--require-port",
        metavar="P",
        help="CI: exit 9 unless port P greeted on at least one host (repeatable).",
    ),
]
_RequireReadyOption = Annotated[
    bool,
    typer.Option("--require-ready", help="CI: exit 9 unless mail readiness is 'yes'."),
]
_EhloNameOption = Annotated[
    str | None,
    typer.Option(metavar="NAME", help="Name sent in EHLO (default: our address literal)."),
]
_PortMapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--port-map",
        metavar="ROLE=PORT",
        help="Dial PORT for the ROLE port, e.g. 25=2500 (labs, tests, forwarded relays).",
    ),
]
_MaxMxOption = Annotated[int, typer.Option(metavar="N", help="At most N MX hosts per domain.")]
_MaxAddressesOption = Annotated[
    int, typer.Option(metavar="N", help="At most N addresses per host and family.")
]
_NoReadinessOption = Annotated[
    bool,
    typer.Option(
        "--no-readiness",
        help="Skip the mail-readiness checks (no whoami or DNSBL query is sent).",
    ),
]
_PublicIpOption = Annotated[
    list[str] | None,
    typer.Option(
        "--public-ip",
        metavar="ADDR",
        help="This machine's public address; skips discovery (repeatable).",
    ),
]
_DnsblOption = Annotated[
    list[str] | None,
    typer.Option("--dnsbl", metavar="ZONE", help="Also check DNSBL zone ZONE (repeatable)."),
]
_RedactOption = Annotated[
    bool,
    typer.Option("--redact", help="Hide our public addresses and PTR names in every output."),
]
_SysfsOption = Annotated[
    Path,
    typer.Option(metavar="PATH", help="Where to read DMI files for platform detection."),
]
_PlatformOption = Annotated[
    str | None,
    typer.Option(
        metavar="NAME", help="Say where this runs instead of detecting it (see platforms)."
    ),
]
_QuietOption = Annotated[bool, typer.Option("-q", "--quiet", help="Print only the verdict.")]
_VerboseOption = Annotated[
    bool, typer.Option("-v", "--verbose", help="Per-probe table, timings, greeting/EHLO.")
]


@app.command()
def diagnose(
    domain: _DomainOption = None,
    target: _TargetOption = None,
    ports: _PortsOption = _MAIL_PORTS_TEXT,
    nameserver: _NameserverOption = None,
    ca_file: _CaFileOption = None,
    catalog: _CatalogOption = None,
    ipv4: _Ipv4Option = False,
    ipv6: _Ipv6Option = False,
    timeout: _TimeoutOption = defaults.TIMEOUT,
    connect_timeout: _ConnectTimeoutOption = defaults.CONNECT_TIMEOUT,
    dns_timeout: _DnsTimeoutOption = defaults.DNS_TIMEOUT,
    concurrency: _ConcurrencyOption = defaults.CONCURRENCY,
    per_host: _PerHostOption = defaults.PER_HOST,
    fmt: _FmtOption = None,
    json_: _JsonOption = False,
    output: _OutputOption = None,
    expect: _ExpectOption = None,
    require_port: _RequirePortOption = None,
    require_ready: _RequireReadyOption = False,
    ehlo_name: _EhloNameOption = None,
    port_map: _PortMapOption = None,
    max_mx: _MaxMxOption = defaults.MAX_MX,
    max_addresses: _MaxAddressesOption = defaults.MAX_ADDRESSES,
    no_readiness: _NoReadinessOption = False,
    public_ip: _PublicIpOption = None,
    dnsbl: _DnsblOption = None,
    redact: _RedactOption = False,
    sysfs: _SysfsOption = Path("/sys"),
    platform: _PlatformOption = None,
    quiet: _QuietOption = False,
    verbose: _VerboseOption = False,
) -> None:
    """Probe ports 25, 465, 587 and 2525 and decide whether port 25 is blocked.

    Examples:

      portprobe diagnose --domain gmail.com

      portprobe diagnose --target smtp.example.net --ports 25,587 -v

      portprobe diagnose --format markdown >> "$GITHUB_STEP_SUMMARY"

      portprobe diagnose --format junit -o junit.xml --expect open
    """
    from portprobe import truststore

    # The system trust store loads in a thread beside the imports below (trio,
    # dnspython): ~30 ms sooner to the first SYN. Diagnosis takes it.
    with truststore.preloading():
        from portprobe import cli_terminal
        from portprobe.diagnosis import DiagnoseRequest, Diagnosis

        fmt = parse_format(fmt, json_)
        request = DiagnoseRequest(
            domains=tuple(domain or ()),
            targets=tuple(target or ()),
            catalog=catalog,
            ports=parse_ports(ports),
            families=parse_families(ipv4, ipv6),
            nameservers=tuple(nameserver or ()),
            ca_file=ca_file,
            timeout=timeout,
            connect_timeout=connect_timeout,
            dns_timeout=dns_timeout,
            concurrency=concurrency,
            per_host=per_host,
            ehlo_name=ehlo_name,
            port_map=parse_port_map(port_map or ()),
            max_mx=max_mx,
            max_addresses=max_addresses,
            readiness=not no_readiness,
            public_ips=tuple(public_ip or ()),
            dnsbl_zones=tuple(dnsbl or ()),
            sysfs=sysfs,
            platform=platform,
            expect=parse_expect(expect),
            require_ports=tuple(require_port or ()),
            require_ready=require_ready,
        )
        destination = cli_terminal.Destination.prepare(fmt, output, datetime.now(UTC))
        progress = cli_terminal.Progress(cli_terminal.is_terminal(sys.stderr) and not quiet)
        diagnosis = Diagnosis(request, on_result=progress.update)
    for warning in diagnosis.warnings:
        print(f"portprobe: warning: {warning}", file=sys.stderr)
    report = cli_terminal.run_until_interrupted(diagnosis, progress)
    if redact:
        from portprobe.report.redact import redact_report

        report = redact_report(report)
    failure = cli_terminal.emit(report, destination, quiet=quiet, verbose=verbose)
    if failure is not None:
        raise failure
    raise typer.Exit(_exit_code(report, request, destination.stdout_format))


def _exit_code(report: Any, request: Any, fmt: str) -> int:
    from portprobe.exit_codes import for_report
    from portprobe.report import check_assertions

    if report.interrupted:
        print("portprobe: interrupted; the report holds what completed", file=sys.stderr)
    failure = check_assertions(
        report,
        expect=request.expect,
        require_ports=request.require_ports,
        require_ready=request.require_ready,
    )
    if failure is not None and not report.interrupted:
        print(f"portprobe: assertion failed: {failure}", file=sys.stderr)
    return for_report(report, failure, expect_given=bool(request.expect), nagios=fmt == "nagios")


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
    from portprobe.cli_terminal import color_enabled
    from portprobe.render.catalog import catalog_to_dict, render_catalog_table
    from portprobe.targets.catalog import load_catalog

    loaded = load_catalog(catalog)
    if json_:
        import json

        print(json.dumps(catalog_to_dict(loaded), indent=2))
    else:
        print(render_catalog_table(loaded, color=color_enabled(sys.stdout)))


@app.command()
def platforms(
    json_: Annotated[bool, typer.Option("--json", help="Print the data file as JSON.")] = False,
    sources: Annotated[bool, typer.Option("--sources", help="Show each source URL.")] = False,
) -> None:
    """List the platforms portprobe recognises: how, the ports each blocks, how to lift it.

    Examples:

      portprobe platforms

      portprobe platforms --sources

      portprobe platforms --json | jq '.platforms[].id'
    """
    from portprobe.cli_terminal import color_enabled
    from portprobe.environment.platforms import load_platforms
    from portprobe.render.platforms import platforms_to_dict, render_platforms_table

    loaded = load_platforms()
    if json_:
        import json

        print(json.dumps(platforms_to_dict(loaded), indent=2))
    else:
        table = render_platforms_table(
            loaded, color=color_enabled(sys.stdout), show_sources=sources
        )
        print(table)


cli_merge.register(app)


# --- entry point ---------------------------------------------------------------------------

_COMMANDS = ("diagnose", "targets", "platforms", "merge")
_ROOT_FLAGS = ("--help", "-h", "--version", "--install-completion", "--show-completion")


def _with_default_command(argv: list[str]) -> list[str]:
    """``portprobe [options]`` means ``portprobe diagnose [options]`` (the spec)."""
    if argv and (argv[0] in _COMMANDS or argv[0] in _ROOT_FLAGS):
        return argv
    return ["diagnose", *argv]


def _wants_nagios(argv: Sequence[str]) -> bool:
    """A monitoring plugin reports its own usage errors as UNKNOWN (3), not 2."""
    for i, arg in enumerate(argv):
        if arg == "--format=nagios" or (arg == "--format" and argv[i + 1 : i + 2] == ["nagios"]):
            return True
    return False


def _fail(message: str, code: int) -> int:
    print(f"portprobe: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> None:
    """The ``portprobe`` command: run, flush, and leave without the interpreter's teardown.

    Tearing down trio's, dnspython's and typer's module graphs costs ~90 ms at exit, a
    sixth of a whole diagnosis, while nothing is left to do: the report file is written
    and fsync'd, stdout and stderr are flushed here, and portprobe registers no atexit
    work (mypy exits the same way, for the same reason). ``run`` is the in-process form.
    """
    code = run(list(sys.argv[1:] if argv is None else argv))
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nobody reads
            stream.flush()
    os._exit(code)


def run(argv: list[str]) -> int:
    """Run the CLI and return its exit code; every expected error is one line on stderr."""
    from typer.exceptions import TyperException

    verbose = "-v" in argv or "--verbose" in argv
    usage = NAGIOS_UNKNOWN if _wants_nagios(argv) else USAGE
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=_with_default_command(argv), prog_name="portprobe", standalone_mode=False
        )
    except typer.Exit as exc:
        return exc.exit_code
    except TyperException as exc:  # usage errors: bad option, bad value
        return _fail(f"error: {one_line(exc.format_message())}", usage)
    except PortprobeError as exc:  # bad input, unreadable file, unwritable output
        return _fail(f"error: {one_line(str(exc))}", usage)
    except (typer.Abort, KeyboardInterrupt):
        return _fail("interrupted", INTERRUPTED)
    except Exception as raised:
        if verbose:
            import traceback

            traceback.print_exc()
        bug: BaseException = raised
        while isinstance(bug, BaseExceptionGroup) and len(bug.exceptions) == 1:
            bug = bug.exceptions[0]  # a bug raised inside a trio nursery: name the real one
        return _fail(
            f"internal error: {type(bug).__name__}: {one_line(str(bug))}. This is a bug in "
            f"portprobe {__version__}; please report it to {ISSUES_URL} with the command line"
            + ("" if verbose else " and the traceback that -v prints"),
            INTERNAL_ERROR,
        )
    return int(result) if isinstance(result, int) else 0
