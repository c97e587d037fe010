"""The library call: a validated request in, a typed report out.

    import trio, portprobe
    req = portprobe.DiagnoseRequest(domains=("example.org",), families=("ipv4",))
    report = trio.run(portprobe.diagnose, req)
    report.verdict.port25, report.to_dict()

Nothing here prints, exits, traps signals or writes files: those are the CLI's
(``portprobe.cli`` and ``portprobe.cli_terminal``). Every user error is a
:class:`~portprobe.errors.PortprobeError` raised *before* any network activity and outside
any nursery: ``DiagnoseRequest`` checks every value when it is made, and ``Diagnosis``
loads the files it names (catalog, CA file) when it is made, so a typo costs no probing.

A network failure is never an exception: it is a probe result. To stop a run early and
keep what it found, cancel the scope around :meth:`Diagnosis.run` and call
:meth:`Diagnosis.report` with ``interrupted=True``.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from portprobe import defaults
from portprobe._version import __version__
from portprobe.errors import InputError
from portprobe.model import ProbeResult
from portprobe.vocab import FAMILIES, MAIL_PORTS, VERDICTS, Family

if TYPE_CHECKING:
    import trio

    from portprobe.environment.platforms import PlatformCatalog
    from portprobe.outcome import Report
    from portprobe.pipeline import Pipeline
    from portprobe.readiness.check import ReadinessCheck

#: Called once for every finished probe, in completion order (progress lines, streaming).
OnResult = Callable[[ProbeResult], None]


def _positive(name: str, value: float, *, integer: bool = False) -> None:
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise InputError(f"{name}: must be a whole number greater than 0 (got {value!r})")
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        kind = "a whole number" if integer else "a finite number"
        raise InputError(f"{name}: must be {kind} greater than 0 (got {value!r})")


@dataclass(frozen=True)
class DiagnoseRequest:
    """What to diagnose, validated once here; ``to_dict()`` is the report's ``parameters``.

    With neither ``domains`` nor ``targets`` the catalog is probed (``catalog`` names a
    TOML file, None the built-in one). Option names in the CLI map one to one onto these
    fields; the spec's defaults live in :mod:`portprobe.defaults`.
    """

    domains: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    catalog: Path | None = None
    ports: tuple[int, ...] = MAIL_PORTS
    families: tuple[Family, ...] = FAMILIES
    nameservers: tuple[str, ...] = ()  # "IP", "IP:PORT", "[IPv6]:PORT"
    ca_file: Path | None = None
    timeout: float = defaults.TIMEOUT
    connect_timeout: float = defaults.CONNECT_TIMEOUT  # clamped to ``timeout``
    dns_timeout: float = defaults.DNS_TIMEOUT
    concurrency: int = defaults.CONCURRENCY
    per_host: int = defaults.PER_HOST
    ehlo_name: str | None = None
    port_map: Mapping[int, int] = field(default_factory=dict)
    max_mx: int = defaults.MAX_MX
    max_addresses: int = defaults.MAX_ADDRESSES
    # Mail readiness (spec "Mail readiness").
    readiness: bool = True
    public_ips: tuple[str, ...] = ()
    dnsbl_zones: tuple[str, ...] = ()
    # Environment (spec "Environment"): local evidence only.
    sysfs: Path = Path("/sys")
    platform: str | None = None
    environ: Mapping[str, str] | None = field(default=None, compare=False, repr=False)
    # CI assertions, recorded with the parameters and checked by ``check_assertions``.
    expect: tuple[str, ...] = ()
    require_ports: tuple[int, ...] = ()
    require_ready: bool = False

    def __post_init__(self) -> None:
        from portprobe.protocol.smtp import ehlo_name_problem
        from portprobe.targets.resolve import parse_domain, parse_nameserver, parse_target

        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        for name in ("domains", "targets", "nameservers", "public_ips", "dnsbl_zones", "expect"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise InputError(f"{name}: give a sequence of strings, not one string")
            put(name, tuple(value))
        put("ports", tuple(dict.fromkeys(self.ports)))
        put("families", tuple(dict.fromkeys(self.families)))
        put("require_ports", tuple(dict.fromkeys(self.require_ports)))
        for value in self.domains:
            parse_domain(value)
        for value in self.targets:
            parse_target(value)
        for value in self.nameservers:
            parse_nameserver(value)
        if not self.ports:
            raise InputError("--ports: give at least one of 25, 465, 587, 2525")
        for port in self.ports:
            if port not in MAIL_PORTS:
                allowed = ", ".join(map(str, MAIL_PORTS))
                raise InputError(f"--ports: {port} is not one of {allowed} (see --port-map)")
        if not self.families or any(f not in FAMILIES for f in self.families):
            raise InputError(f"families: give one or both of {', '.join(FAMILIES)}")
        for name in ("timeout", "connect_timeout", "dns_timeout"):
            _positive(f"--{name.replace('_', '-')}", getattr(self, name))
        for name in ("concurrency", "per_host", "max_mx", "max_addresses"):
            _positive(f"--{name.replace('_', '-')}", getattr(self, name), integer=True)
        put("connect_timeout", min(self.connect_timeout, self.timeout))
        if self.ehlo_name is not None and (problem := ehlo_name_problem(self.ehlo_name)):
            raise InputError(f"--ehlo-name: {self.ehlo_name!r} {problem}")
        for role, actual in self.port_map.items():
            if role not in MAIL_PORTS:
                raise InputError(f"--port-map: {role} is not one of 25, 465, 587, 2525")
            if not (isinstance(actual, int) and 1 <= actual <= 65535):
                raise InputError(f"--port-map: {actual} is not a port number (1-65535)")
        put("port_map", MappingProxyType(dict(self.port_map)))
        for verdict in self.expect:
            if verdict not in VERDICTS:
                raise InputError(f"--expect: {verdict!r} is not a verdict ({', '.join(VERDICTS)})")
        for port in self.require_ports:
            if port not in self.ports:
                raise InputError(f"--require-port: {port} is not among the probed ports")
        if self.public_ips or self.dnsbl_zones:
            from portprobe.readiness.settings import parse_dnsbl_zone, parse_public_ip

            put("public_ips", tuple(parse_public_ip(a) for a in self.public_ips))
            put("dnsbl_zones", tuple(parse_dnsbl_zone(z) for z in self.dnsbl_zones))
        if self.require_ready and not self.readiness:
            raise InputError("--require-ready needs the readiness checks; drop --no-readiness")
        if not self.sysfs.is_dir():
            raise InputError(f"--sysfs: {self.sysfs} is not a directory")

    @property
    def uses_catalog(self) -> bool:
        return not self.domains and not self.targets

    @property
    def checks_readiness(self) -> bool:
        """Readiness asks the internet about *this machine*; a run that only probes
        loopback literals is a local test, and its whoami and DNSBL queries would leave
        through the system resolver for nothing, so it skips them (and says so), unless
        ``--public-ip`` names the address to check."""
        if not self.readiness:
            return False
        if self.uses_catalog or self.domains or self.public_ips:
            return True
        return not all(_is_loopback(t) for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        """The report's ``parameters``: the options as resolved (reports/README.md)."""
        catalog = None
        if self.uses_catalog:
            catalog = str(self.catalog) if self.catalog else "built-in"
        return {
            "ports": list(self.ports),
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "dns_timeout": self.dns_timeout,
            "families": list(self.families),
            "targets": list(self.targets),
            "domains": list(self.domains),
            "catalog": catalog,
            "nameservers": list(self.nameservers),
            "ca_file": str(self.ca_file) if self.ca_file else None,
            "concurrency": self.concurrency,
            "per_host": self.per_host,
            "ehlo_name": self.ehlo_name,
            "port_map": {str(k): v for k, v in self.port_map.items()},
            "expect": list(self.expect),
            "require_ports": list(self.require_ports),
            "max_mx": self.max_mx,
            "max_addresses": self.max_addresses,
            "readiness": self.readiness,
            "public_ips": list(self.public_ips),
            "dnsbl_zones": list(self.dnsbl_zones),
            "require_ready": self.require_ready,
            "sysfs": str(self.sysfs),
            "platform": self.platform,
        }


def _is_loopback(target: str) -> bool:
    import ipaddress

    from portprobe.targets.resolve import parse_target

    literal = parse_target(target)[1]
    return literal is not None and ipaddress.ip_address(literal).is_loopback


LOOPBACK_NOTE = (
    "Mail readiness was not checked: every target is a loopback address, so this run says "
    "nothing about this machine's public address (--public-ip with --domain checks it)."
)


def _load_tls(ca_file: Path | None) -> Any:
    import ssl

    from portprobe.errors import TLSConfigError
    from portprobe.probe.tls import make_contexts

    ca = str(ca_file) if ca_file else None
    if ca is not None:
        try:
            with open(ca, "rb"):
                pass
        except OSError as exc:
            raise TLSConfigError(f"--ca-file: cannot read {ca}: {exc.strerror or exc}") from exc
    try:
        return make_contexts(ca)
    except (ssl.SSLError, ValueError) as exc:
        raise TLSConfigError(f"--ca-file: {ca} holds no usable PEM certificate ({exc})") from exc


class Diagnosis:
    """One run: made (and every file loaded) before the network, run once, reported.

    ``report()`` may be called after ``run()`` returned or after the scope around it was
    cancelled; probes that had not finished are then missing, as the report's notes say.
    """

    def __init__(self, request: DiagnoseRequest, *, on_result: OnResult | None = None) -> None:
        from portprobe.pipeline import Pipeline
        from portprobe.probe import ProbeConfig
        from portprobe.targets.resolve import parse_nameserver

        self.request = request
        self._on_result = on_result
        catalog = None
        if request.uses_catalog or request.catalog is not None:
            from portprobe.targets.catalog import load_catalog

            catalog = load_catalog(request.catalog)
        nameservers = tuple(parse_nameserver(ns) for ns in request.nameservers)
        self._pipeline: Pipeline = Pipeline(
            domains=request.domains,
            targets=request.targets,
            catalog=catalog if request.uses_catalog else None,
            ports=request.ports,
            families=request.families,
            nameservers=nameservers,
            dns_timeout=request.dns_timeout,
            max_mx=request.max_mx,
            max_addresses=request.max_addresses,
            port_map=request.port_map,
            config=ProbeConfig(
                timeout=request.timeout,
                connect_timeout=request.connect_timeout,
                ehlo_name=request.ehlo_name,
            ),
            concurrency=request.concurrency,
            per_host=request.per_host,
            tls=_load_tls(request.ca_file),
            on_result=self._result_arrived,
        )
        # The platform table is package data: loaded now only to check --platform, else
        # while the probes wait on the network (see _prepare_report).
        self._platforms: PlatformCatalog | None = None
        self._platform: str | None = None
        if request.platform:
            from portprobe.environment.detect import check_platform

            self._platform = check_platform(request.platform, self._load_platforms())
        self._readiness: ReadinessCheck | None = None
        if request.checks_readiness:
            from portprobe.readiness.check import ReadinessCheck
            from portprobe.readiness.settings import load_readiness_settings

            settings = load_readiness_settings(
                request.catalog,
                extra_zones=request.dnsbl_zones,
                public_ips=request.public_ips,
                ehlo_name=request.ehlo_name,
                dns_timeout=request.dns_timeout,
                nameservers=nameservers,
                families=request.families,
                echo_wait=request.timeout,
            )
            self._readiness = ReadinessCheck(settings)
        self.started_at: datetime | None = None
        self._results_flowing: trio.Event | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Problems with the run itself (known before it starts), e.g. a lowered concurrency."""
        return self._pipeline.warnings

    def _load_platforms(self) -> PlatformCatalog:
        if self._platforms is None:
            from portprobe.environment.platforms import load_platforms

            self._platforms = load_platforms()
        return self._platforms

    def _result_arrived(self, result: ProbeResult) -> None:
        if self._results_flowing is not None:
            self._results_flowing.set()
        if self._readiness is not None:
            self._readiness.observe(result)  # servers that echo our address in EHLO
        if self._on_result is not None:
            self._on_result(result)

    async def run(self) -> None:
        """Probe, and check readiness alongside; every lookup and probe is bounded."""
        import trio

        if self.started_at is not None:
            raise RuntimeError("a Diagnosis runs once; make a new one")
        self.started_at = datetime.now(UTC)
        probes_done = trio.Event()
        self._results_flowing = trio.Event()
        async with trio.open_nursery() as nursery:
            if self._readiness is not None:
                nursery.start_soon(self._readiness.run, probes_done)
            nursery.start_soon(self._prepare_report)
            try:
                await self._pipeline.run()
            finally:
                probes_done.set()
                self._results_flowing.set()

    async def _prepare_report(self) -> None:
        """Import and load what :meth:`report` needs while the probes wait on the network.

        ~20 ms of imports and data files that would otherwise come after the last probe.
        Not before every name is resolved and a first result is in, so that no lookup or
        first SYN waits behind it. :meth:`report` does the same itself if this never ran.
        """
        assert self._results_flowing is not None
        await self._pipeline.planned.wait()
        await self._results_flowing.wait()
        import portprobe.environment.detect
        import portprobe.report
        import portprobe.report.platform_advice  # noqa: F401

        self._load_platforms()

    def report(self, *, interrupted: bool = False) -> Report:
        from dataclasses import replace

        from portprobe.report import build_report

        finished_at = datetime.now(UTC)
        plan = self._pipeline.plan()
        if self.request.readiness and not self.request.checks_readiness:
            plan = replace(plan, notes=(*plan.notes, LOOPBACK_NOTE))
        report = build_report(
            results=self._pipeline.results(),
            plan=plan,
            parameters=self.request.to_dict(),
            tool_version=__version__,
            started_at=self.started_at or finished_at,
            finished_at=finished_at,
            interrupted=interrupted,
            used_catalog=self.request.uses_catalog,
            warnings=self.warnings,
            hostname=socket.gethostname() or None,
        )
        if self._readiness is not None:
            report = replace(report, readiness=self._readiness.result(report.verdict.port25))
        return self._with_environment(report)

    def _with_environment(self, report: Report) -> Report:
        """Where this runs turns the verdict into that platform's own next step."""
        from dataclasses import replace

        from portprobe.environment.detect import detect_environment
        from portprobe.report.platform_advice import advise, filter_generic_advice

        platforms = self._load_platforms()
        environment = detect_environment(
            sysfs=self.request.sysfs,
            environ=os.environ if self.request.environ is None else self.request.environ,
            ptr_names=report.readiness.ptr_names() if report.readiness is not None else (),
            override=self._platform,
            platforms=platforms,
        )
        environment = advise(environment, platforms, verdict=report.verdict, ports=report.ports)
        generic = filter_generic_advice(report.verdict.advice, environment, platforms)
        return replace(
            report, environment=environment, verdict=replace(report.verdict, advice=generic)
        )


async def diagnose(request: DiagnoseRequest, *, on_result: OnResult | None = None) -> Report:
    """Run one diagnosis and return its report (see the module docstring)."""
    diagnosis = Diagnosis(request, on_result=on_result)
    await diagnosis.run()
    return diagnosis.report()
