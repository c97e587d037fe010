"""``portprobe diagnose``: plan, probe, decide, render — and never lose a started report.

Order matters for the user: every input that can be checked without the network (catalog,
CA file, output path, name syntax) is checked first, so a typo costs no probing time; a
Ctrl-C during probing still renders and writes what was gathered, flagged ``interrupted``.
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import trio

from portprobe import __version__, exit_codes
from portprobe.model import Family, Plan, ProbeResult
from portprobe.output import (
    OutputError,
    check_writable,
    resolve_output_path,
    write_atomically,
)
from portprobe.probe import ProbeConfig, Runner
from portprobe.probe.tls import TLSContexts, make_contexts

if TYPE_CHECKING:
    from portprobe.cli import DiagnoseOptions
    from portprobe.targets.catalog import Catalog


@dataclass
class _Outcome:
    plan: Plan
    results: list[ProbeResult]
    interrupted: bool
    warnings: list[str]


def _families(options: DiagnoseOptions) -> tuple[Family, ...]:
    if options.ipv4_only:
        return ("ipv4",)
    if options.ipv6_only:
        return ("ipv6",)
    return ("ipv4", "ipv6")


def _load_tls(options: DiagnoseOptions) -> TLSContexts:
    ca = str(options.ca_file) if options.ca_file else None
    if ca is not None:
        try:
            with open(ca, "rb"):
                pass
        except OSError as exc:
            raise OutputError(f"--ca-file: cannot read {ca}: {exc.strerror or exc}") from exc
    try:
        return make_contexts(ca)
    except (ssl.SSLError, ValueError) as exc:
        raise OutputError(f"--ca-file: {ca} holds no usable PEM certificate ({exc})") from exc


class Progress:
    """A live line on stderr while probes run; silent when stderr is not a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.done = 0
        self.port25: Counter[str] = Counter()

    def update(self, result: ProbeResult) -> None:
        self.done += 1
        if result.spec.port == 25:
            self.port25[result.state] += 1
        if self.enabled:
            states = ", ".join(f"{n} {s}" for s, n in self.port25.most_common())
            line = f"probing {self.done}/{self.total}" + (f" · port 25: {states}" if states else "")
            sys.stderr.write("\r\x1b[K" + line[:200])
            sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


async def _gather(
    options: DiagnoseOptions, catalog: Catalog | None, tls: TLSContexts, progress_on: bool
) -> _Outcome:
    from portprobe.targets.resolve import build_plan, parse_nameserver

    nameservers = [parse_nameserver(ns) for ns in options.nameservers]
    outcome = _Outcome(plan=Plan(specs=()), results=[], interrupted=False, warnings=[])
    runner: Runner | None = None
    async with trio.open_nursery() as nursery:

        async def watch_for_ctrl_c() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    outcome.interrupted = True
                    nursery.cancel_scope.cancel()
                    return

        nursery.start_soon(watch_for_ctrl_c)
        if progress_on:
            sys.stderr.write("resolving…")
            sys.stderr.flush()
        outcome.plan = await build_plan(
            domains=options.domains,
            targets=options.targets,
            catalog=catalog,
            ports=options.ports,
            families=_families(options),
            nameservers=nameservers,
            dns_timeout=options.dns_timeout,
            max_mx=options.max_mx,
            max_addresses=options.max_addresses,
            port_map=options.port_map,
        )
        specs = (*outcome.plan.specs, *outcome.plan.unresolved)
        progress = Progress(len(specs), progress_on)
        runner = Runner(
            specs,
            ProbeConfig(
                timeout=options.timeout,
                connect_timeout=options.connect_timeout,
                ehlo_name=options.ehlo_name,
            ),
            concurrency=options.concurrency,
            per_host=options.per_host,
            tls=tls,
            on_result=progress.update,
        )
        outcome.warnings.extend(runner.warnings)
        for warning in runner.warnings:
            print(f"portprobe: warning: {warning}", file=sys.stderr)
        try:
            await runner.run()
        finally:
            progress.clear()
        nursery.cancel_scope.cancel()
    if progress_on and runner is None:
        sys.stderr.write("\r\x1b[K")
    if runner is not None:
        outcome.results = runner.results
    return outcome


def _parameters(options: DiagnoseOptions, families: tuple[str, ...]) -> dict[str, Any]:
    return {
        "ports": list(options.ports),
        "timeout": options.timeout,
        "connect_timeout": options.connect_timeout,
        "dns_timeout": options.dns_timeout,
        "families": list(families),
        "targets": list(options.targets),
        "domains": list(options.domains),
        "catalog": _catalog_name(options),
        "nameservers": list(options.nameservers),
        "ca_file": str(options.ca_file) if options.ca_file else None,
        "concurrency": options.concurrency,
        "per_host": options.per_host,
        "ehlo_name": options.ehlo_name,
        "port_map": {str(k): v for k, v in options.port_map.items()},
        "expect": list(options.expect),
        "require_ports": list(options.require_ports),
    }


def _catalog_name(options: DiagnoseOptions) -> str | None:
    if options.targets or options.domains:
        return None
    return str(options.catalog) if options.catalog else "built-in"


def run_diagnose(options: DiagnoseOptions) -> int:
    from portprobe.targets.resolve import parse_domain, parse_nameserver, parse_target

    # 1. Everything that can be checked offline, before any probe.
    for ns in options.nameservers:
        parse_nameserver(ns)
    for t in options.targets:
        parse_target(t)
    for d in options.domains:
        parse_domain(d)
    catalog = None
    use_catalog = not options.domains and not options.targets
    if use_catalog or options.catalog is not None:
        from portprobe.targets.catalog import load_catalog

        catalog = load_catalog(options.catalog)
    tls = _load_tls(options)
    stdout_fmt = options.fmt or "table"
    file_fmt = options.fmt or "json"
    started_at = datetime.now(UTC)
    out_path = None
    if options.output is not None:
        out_path = resolve_output_path(options.output, file_fmt, started_at)
        check_writable(out_path)

    # 2. Probe. Ctrl-C (or SIGTERM) cancels, and we keep what completed.
    progress_on = sys.stderr.isatty() and not options.quiet
    try:
        outcome = trio.run(_gather, options, catalog if use_catalog else None, tls, progress_on)
    except KeyboardInterrupt:
        outcome = _Outcome(plan=Plan(specs=()), results=[], interrupted=True, warnings=[])
    finished_at = datetime.now(UTC)

    # 3. Decide and report (imported only now: nothing here is needed before the first SYN).
    from portprobe.render import render, verdict_line
    from portprobe.report.annotate import annotate
    from portprobe.report.build import build_report, check_assertions, exit_code
    from portprobe.report.verdict import decide

    verdict = decide(annotate(outcome.results), outcome.plan.dns, used_catalog=use_catalog)
    parameters = _parameters(options, _families(options))
    report = build_report(
        results=outcome.results,
        plan=outcome.plan,
        verdict=verdict,
        parameters=parameters,
        tool_version=__version__,
        started_at=started_at,
        finished_at=finished_at,
        interrupted=outcome.interrupted,
    )
    if outcome.warnings:
        report.setdefault("warnings", []).extend(outcome.warnings)
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else None

    # 4. Write the file first: a broken pipe on stdout must not cost the report. A file
    # that cannot be written (disk full) must not cost the printed report either.
    write_failure: OutputError | None = None
    if out_path is not None:
        try:
            write_atomically(
                out_path,
                render(file_fmt, report, color=False, width=None, verbose=options.verbose),
            )
        except OutputError as exc:
            write_failure = exc
    try:
        if options.quiet and stdout_fmt == "table":
            print(verdict_line(report))
        else:
            text = render(stdout_fmt, report, color=color, width=width, verbose=options.verbose)
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass

    if write_failure is not None:
        print(f"portprobe: error: {write_failure}", file=sys.stderr)
        return exit_codes.USAGE

    # 5. Exit code: interruption first, then CI assertions, then the verdict.
    if outcome.interrupted:
        print("portprobe: interrupted; the report holds what completed", file=sys.stderr)
        return exit_codes.INTERRUPTED
    failure = check_assertions(report, expect=options.expect, require_ports=options.require_ports)
    if failure is not None:
        print(f"portprobe: assertion failed: {failure}", file=sys.stderr)
    return exit_code(report, failure, expect_given=bool(options.expect))
