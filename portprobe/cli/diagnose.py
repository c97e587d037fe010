"""``portprobe [diagnose]``: options in, a request, one run, a renderer, an exit code.

Each step is a named function: :func:`build_request` (options to a validated
:class:`~portprobe.diagnosis.DiagnoseRequest`), :func:`check_families_reach_targets`,
:func:`run_and_report` (the run, the renderers) and :func:`exit_code`. Everything heavy is
imported inside them, so ``--help`` loads none of it.
"""

from __future__ import annotations

import ipaddress
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from portprobe import defaults
from portprobe.cli.options import (
    MAIL_PORTS_TEXT,
    CaFileOption,
    CatalogOption,
    ColorMode,
    ColorOption,
    ConcurrencyOption,
    ConnectTimeoutOption,
    ContainerOption,
    DeadlineOption,
    DnsblOption,
    DnsTimeoutOption,
    DomainOption,
    EhloNameOption,
    EximConfigOption,
    ExpectOption,
    Ipv4Option,
    Ipv6Option,
    JsonOption,
    MailLogOption,
    MaxAddressesOption,
    MaxHopsOption,
    MaxMxOption,
    MtaOption,
    NameserverOption,
    NetnsOption,
    NoAsnOption,
    NoReadinessOption,
    PerHostOption,
    PlatformOption,
    PortMapOption,
    PortsOption,
    PostfixConfigOption,
    PublicIpOption,
    QueueDestinationsOption,
    QuietOption,
    RedactOption,
    ReportFormatOption,
    ReportOutputOption,
    RequirePortOption,
    RequireReadyOption,
    SysfsOption,
    TargetOption,
    TimeoutOption,
    TraceOption,
    VerboseOption,
    choose_format,
    parse_deadline,
    parse_expect,
    parse_families,
    parse_port_map,
    parse_ports,
)
from portprobe.errors import InputError
from portprobe.exit_codes import NAGIOS_UNKNOWN, USAGE
from portprobe.text import one_line
from portprobe.vocab import FORMATS

if TYPE_CHECKING:
    from portprobe.cli.terminal import Destination, Progress
    from portprobe.diagnosis import DiagnoseRequest, Diagnosis
    from portprobe.mta.read import Run
    from portprobe.outcome import Report


def diagnose(
    domain: DomainOption = None,
    target: TargetOption = None,
    ports: PortsOption = MAIL_PORTS_TEXT,
    nameserver: NameserverOption = None,
    ca_file: CaFileOption = None,
    catalog: CatalogOption = None,
    ipv4: Ipv4Option = False,
    ipv6: Ipv6Option = False,
    timeout: TimeoutOption = defaults.TIMEOUT,
    connect_timeout: ConnectTimeoutOption = defaults.CONNECT_TIMEOUT,
    dns_timeout: DnsTimeoutOption = defaults.DNS_TIMEOUT,
    deadline: DeadlineOption = None,
    concurrency: ConcurrencyOption = defaults.CONCURRENCY,
    per_host: PerHostOption = defaults.PER_HOST,
    fmt: ReportFormatOption = None,
    json_: JsonOption = False,
    output: ReportOutputOption = None,
    color: ColorOption = ColorMode.AUTO,
    expect: ExpectOption = None,
    require_port: RequirePortOption = None,
    require_ready: RequireReadyOption = False,
    ehlo_name: EhloNameOption = None,
    port_map: PortMapOption = None,
    max_mx: MaxMxOption = defaults.MAX_MX,
    max_addresses: MaxAddressesOption = defaults.MAX_ADDRESSES,
    no_readiness: NoReadinessOption = False,
    public_ip: PublicIpOption = None,
    dnsbl: DnsblOption = None,
    redact: RedactOption = False,
    sysfs: SysfsOption = None,
    platform: PlatformOption = None,
    mta: MtaOption = "auto",
    postfix_config: PostfixConfigOption = None,
    exim_config: EximConfigOption = None,
    mail_log: MailLogOption = None,
    queue_destinations: QueueDestinationsOption = defaults.QUEUE_DESTINATIONS,
    netns: NetnsOption = None,
    container: ContainerOption = None,
    trace: TraceOption = "auto",
    max_hops: MaxHopsOption = defaults.MAX_HOPS,
    no_asn: NoAsnOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Probe ports 25, 465, 587 and 2525 and decide whether port 25 is blocked.

    Examples:

      portprobe diagnose --domain gmail.com

      portprobe diagnose --target smtp.example.net --ports 25,587 -v

      portprobe diagnose --format markdown >> "$GITHUB_STEP_SUMMARY"

      portprobe diagnose --format junit -o junit.xml --expect open
    """
    started = time.monotonic()
    from portprobe import truststore

    # The system trust store loads in a thread beside the imports below (trio,
    # dnspython): ~30 ms sooner to the first SYN. Diagnosis takes it.
    with truststore.preloading():
        from portprobe.cli.terminal import Destination, Progress, color_enabled, is_terminal
        from portprobe.diagnosis import Diagnosis

        fmt = choose_format(fmt, json_, FORMATS)
        seconds = parse_deadline(deadline)
        request = build_request(
            domain=domain, target=target, ports=ports, nameserver=nameserver,
            ca_file=ca_file, catalog=catalog, ipv4=ipv4, ipv6=ipv6, timeout=timeout,
            connect_timeout=connect_timeout, dns_timeout=dns_timeout,
            concurrency=concurrency, per_host=per_host, expect=expect,
            require_port=require_port, require_ready=require_ready, ehlo_name=ehlo_name,
            port_map=port_map, max_mx=max_mx, max_addresses=max_addresses,
            no_readiness=no_readiness, public_ip=public_ip, dnsbl=dnsbl, sysfs=sysfs,
            platform=platform, trace=trace, max_hops=max_hops, no_asn=no_asn,
        )  # fmt: skip
        request = with_mta(
            request, mta=mta, postfix_config=postfix_config, exim_config=exim_config,
            mail_log=mail_log, queue_destinations=queue_destinations,
        )  # fmt: skip
        check_families_reach_targets(request)
        mta_run, mta_root = enter_namespace(request, netns, container, bool(nameserver))
        shown = Presentation(
            destination=Destination.prepare(fmt, output, datetime.now(UTC)),
            quiet=quiet,
            verbose=verbose,
            redact=redact,
            color=color_enabled(sys.stdout, color),
            deadline=None if seconds is None else started + seconds,
            deadline_text=deadline,
        )
        progress = Progress(is_terminal(sys.stderr) and not quiet)
        diagnosis = Diagnosis(
            request, on_result=progress.update, mta_run=mta_run, mta_root=mta_root
        )
    raise typer.Exit(run_and_report(diagnosis, progress, shown))


def enter_namespace(
    request: DiagnoseRequest, netns: str | None, container: str | None, nameservers_given: bool
) -> tuple[Run | None, Path | None]:
    """``--netns``/``--container``: re-run inside that network namespace (this returns
    only there, or when neither is given), and how to read a container's own MTA: its
    tools through its exec, its files through /proc/PID/root."""
    if netns is None and container is None:
        return None, None
    from portprobe.cli.namespace import container_root, container_tool, enter

    enter(netns, container, nameservers_given=nameservers_given)  # re-exec inside
    if container is None or request.mta == "none":
        return None, None
    from portprobe.mta.read import container_run

    return container_run([container_tool(), "exec", container]), container_root(container)


@dataclass(frozen=True)
class Presentation:
    """How a run is bounded and shown, decided from the options before any probe."""

    destination: Destination
    quiet: bool
    verbose: bool
    redact: bool
    color: bool
    deadline: float | None  # a time.monotonic() instant
    deadline_text: str | None  # as the user wrote it, for the message


def build_request(
    *,
    domain: Sequence[str] | None,
    target: Sequence[str] | None,
    ports: str,
    nameserver: Sequence[str] | None,
    ca_file: Path | None,
    catalog: Path | None,
    ipv4: bool,
    ipv6: bool,
    timeout: float,
    connect_timeout: float,
    dns_timeout: float,
    per_host: int,
    ehlo_name: str | None,
    port_map: Sequence[str] | None,
    max_mx: int,
    max_addresses: int,
    no_readiness: bool,
    public_ip: Sequence[str] | None,
    # What only the main command offers (serve's modules have their own words for it).
    concurrency: int = defaults.CONCURRENCY,
    expect: str | None = None,
    require_port: Sequence[int] | None = None,
    require_ready: bool = False,
    dnsbl: Sequence[str] | None = None,
    sysfs: Path | None = None,
    platform: str | None = None,
    trace: str = "auto",
    max_hops: int = defaults.MAX_HOPS,
    no_asn: bool = False,
) -> DiagnoseRequest:
    """The options as typer hands them over, turned into the library's validated request."""
    from portprobe.diagnosis import DiagnoseRequest

    return DiagnoseRequest(
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
        trace=trace,
        max_hops=max_hops,
        asn=not no_asn,
    )


def with_mta(
    request: DiagnoseRequest,
    *,
    mta: str,
    postfix_config: Path | None,
    exim_config: Path | None,
    mail_log: Path | None,
    queue_destinations: int,
) -> DiagnoseRequest:
    """The request with the local mail server's options (spec "The local mail server")."""
    from dataclasses import replace

    from portprobe.vocab import MTA_MODES

    if mta not in MTA_MODES:
        raise InputError(f"--mta: {mta!r} is not one of {', '.join(MTA_MODES)}")
    if mta == "none" and (postfix_config or exim_config or mail_log):
        raise InputError(
            "--mta none reads no mail server; drop --postfix-config/--exim-config/--mail-log"
        )
    return replace(
        request,
        mta=mta,
        postfix_config=postfix_config,
        exim_config=exim_config,
        mail_log=mail_log,
        queue_destinations=queue_destinations,
    )


def _literal_family(target: str) -> str | None:
    """``ipv4``/``ipv6`` for an IP literal target (brackets allowed), None for a name."""
    text = target.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return f"ipv{ipaddress.ip_address(text).version}"
    except ValueError:
        return None


def check_families_reach_targets(request: DiagnoseRequest) -> None:
    """``--target ::1 -4`` would probe nothing: say so before the run, not after it."""
    if request.domains or not request.targets or len(request.families) != 1:
        return
    family = request.families[0]
    if all(_literal_family(t) not in (None, family) for t in request.targets):
        flag = "-4" if family == "ipv4" else "-6"
        other = "IPv6" if family == "ipv4" else "IPv4"
        raise InputError(f"{flag} excludes every target: each --target is an {other} address")


def run_and_report(diagnosis: Diagnosis, progress: Progress, shown: Presentation) -> int:
    """Run, render to the file and stdout, and return the exit code."""
    from portprobe.cli.terminal import emit, run_until_stopped

    for warning in diagnosis.warnings:
        print(f"portprobe: warning: {warning}", file=sys.stderr)
    report, stopped = run_until_stopped(diagnosis, progress, shown.deadline)
    if shown.redact:
        from portprobe.report.redact import redact_report

        report = redact_report(report)
    destination = shown.destination
    failure = emit(report, destination, quiet=shown.quiet, verbose=shown.verbose, color=shown.color)
    if failure is not None:
        print(f"portprobe: error: {one_line(str(failure))}", file=sys.stderr)
        return NAGIOS_UNKNOWN if destination.stdout_format == "nagios" else USAGE
    if stopped == "deadline":
        print(
            f"portprobe: --deadline {shown.deadline_text} passed; the report holds what completed",
            file=sys.stderr,
        )
    elif stopped is not None:
        print("portprobe: interrupted; the report holds what completed", file=sys.stderr)
    return exit_code(report, diagnosis.request, destination.stdout_format)


def exit_code(report: Report, request: DiagnoseRequest, fmt: str) -> int:
    """Interrupted, then the CI assertions, then the verdict (``exit_codes.for_report``)."""
    from portprobe.exit_codes import for_report
    from portprobe.report import check_assertions

    failure = check_assertions(
        report,
        expect=request.expect,
        require_ports=request.require_ports,
        require_ready=request.require_ready,
    )
    if failure is not None and not report.interrupted:
        print(f"portprobe: assertion failed: {failure}", file=sys.stderr)
    return for_report(report, failure, expect_given=bool(request.expect), nagios=fmt == "nagios")
