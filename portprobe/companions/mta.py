"""The local MTA as a companion of the probes (see :mod:`portprobe.companions`).

The MTA's settings and queue are read when the :class:`~portprobe.diagnosis.Diagnosis` is
made, not while the probes run: the queue's deferred domains must join the targets before
planning, and a missing ``--mail-log`` or ``--postfix-config`` is the user's typo,
reported before any network activity (a few tens of ms: ``postconf``, ``postqueue -j``).
Postfix's log, which can take a few hundred ms, is read by :meth:`MtaCompanion.run` in a
thread once the probes are under way. Every read is bounded (each tool call, the log's
tail); ``contribute`` joins the view with the verdict and readiness once both are known.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from portprobe.advice import without_replaced
from portprobe.errors import InputError
from portprobe.model import ProbeResult
from portprobe.mta import read as mta_read
from portprobe.mta.model import MailLog, MtaView
from portprobe.mta.read import MtaOptions, Run, read_mta

if TYPE_CHECKING:
    import trio

    from portprobe.outcome import Report
    from portprobe.request import DiagnoseRequest


def check_mta_paths(request: DiagnoseRequest) -> None:
    """What the user typed must exist: a one-line error (exit 2), not a note."""
    if request.postfix_config is not None and not (request.postfix_config / "main.cf").is_file():
        raise InputError(f"--postfix-config: no main.cf in {request.postfix_config}")
    if request.exim_config is not None and not request.exim_config.is_file():
        raise InputError(f"--exim-config: {request.exim_config} is not a file")
    if request.mail_log is not None and not request.mail_log.exists():
        raise InputError(f"--mail-log: {request.mail_log} does not exist")


#: Reads what is still unread (Postfix's log) and returns it with its notes.
LogLater = Callable[[], tuple[MailLog, tuple[str, ...]]]


def read_for(
    request: DiagnoseRequest, *, run: Run | None = None, root: Path | None = None
) -> tuple[MtaView | None, LogLater | None]:
    """The MTA's settings and queue now; Postfix's log later, beside the probes, when its
    queue already names the deferred domains (the log can take a few hundred ms)."""
    check_mta_paths(request)
    options = MtaOptions(
        mode=request.mta,
        postfix_config=request.postfix_config,
        exim_config=request.exim_config,
        mail_log=request.mail_log,
    )
    run = run or mta_read.system_run
    root = root or Path("/")
    view = read_mta(options, run=run, root=root, log=False)
    later: LogLater | None = None
    if view is not None and view.kind == "postfix" and view.queue.readable:
        later = functools.partial(mta_read.read_postfix_log, options, run=run, root=root)
    return view, later


def queue_domains(view: MtaView | None, limit: int) -> tuple[str, ...]:
    """Up to ``limit`` deferred destination domains, most messages first."""
    if view is None or limit <= 0:
        return ()
    domains = [d.domain for d in view.queue.destinations if d.domain]
    if not domains:  # no readable queue: the log's recent deferrals, newest first
        domains = [d.domain for d in reversed(view.log.deferrals) if d.domain]
    return tuple(dict.fromkeys(domains))[:limit]


class MtaCompanion:
    """Adds ``mta`` (or nothing, when there is no MTA) and its notes to the report."""

    def __init__(
        self,
        view: MtaView | None,
        later: LogLater | None = None,
        *,
        ready: trio.Event | None = None,
    ) -> None:
        self.view = view
        self._later = later
        self._ready = ready

    def observe(self, result: ProbeResult) -> None:
        pass

    async def run(self, probes_done: trio.Event) -> None:
        """Read the log in a thread once the probes are under way (``ready``: every name
        resolved and a first result in), so that it never delays a first SYN."""
        import trio

        if self._later is None:
            return
        if self._ready is not None:
            await self._ready.wait()
        later = self._later
        log = await trio.to_thread.run_sync(later, abandon_on_cancel=True)
        self._fill(log)

    def _fill(self, read: tuple[MailLog, tuple[str, ...]]) -> None:
        if self.view is not None:
            log, notes = read
            self.view = replace(self.view, log=log, notes=(*self.view.notes, *notes))
        self._later = None

    def contribute(self, report: Report) -> Report:
        from portprobe.companions.mta_advice import assess

        if self._later is not None:  # run() never got to it (an interrupted run)
            self._fill(self._later())
        if self.view is None:
            return report
        reachable = frozenset(p for p, s in report.ports.items() if s.tested and s.genuine)
        view = assess(self.view, report.verdict, report.readiness, reachable)
        verdict = replace(
            report.verdict, advice=without_replaced(report.verdict.advice, view.advice)
        )
        readiness = report.readiness
        if readiness is not None:
            readiness = replace(readiness, advice=without_replaced(readiness.advice, view.advice))
        return replace(
            report,
            mta=view,
            verdict=verdict,
            readiness=readiness,
            notes=(*report.notes, *view.notes),
        )
