"""What the local mail server showed us: its settings, its queue, its log, and our reading.

Pure data: no trio, socket, ssl, dns or typer (tests/test_layers.py holds that line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portprobe.advice import Advice, texts
from portprobe.vocab import Family, MtaKind, MtaReason


@dataclass(frozen=True)
class QueueDestination:
    """One destination domain of the queue: how many messages wait, and why (the latest)."""

    domain: str
    count: int
    reason: MtaReason
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "count": self.count,
            "reason": self.reason,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class Queue:
    readable: bool
    total: int = 0
    deferred: int = 0
    destinations: tuple[QueueDestination, ...] = ()  # most messages first

    def to_dict(self) -> dict[str, Any]:
        return {
            "readable": self.readable,
            "total": self.total,
            "deferred": self.deferred,
            "destinations": [d.to_dict() for d in self.destinations],
        }


@dataclass(frozen=True)
class Deferral:
    """One delivery attempt the log says failed (deferred, or bounced for a 5xx)."""

    time: str | None  # as the log wrote it
    domain: str | None
    host: str | None  # the receiver's address (or name) tried
    family: Family | None
    reason: MtaReason
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "domain": self.domain,
            "host": self.host,
            "family": self.family,
            "reason": self.reason,
            "text": self.text,
        }


@dataclass(frozen=True)
class MailLog:
    readable: bool
    path: str | None  # a file, "journald", or None when no log was found
    deferrals: tuple[Deferral, ...] = ()  # oldest first, the most recent kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "readable": self.readable,
            "path": self.path,
            "deferrals": [d.to_dict() for d in self.deferrals],
        }


@dataclass(frozen=True)
class MtaView:
    """The local MTA as read (``read.py``), then joined with the run (``assess.py``)."""

    kind: MtaKind
    version: str | None
    found_by: str  # the command that found it, e.g. "postconf -c /etc/postfix-out"
    settings: Mapping[str, str]
    queue: Queue
    log: MailLog
    findings: tuple[str, ...] = ()
    advice: tuple[Advice, ...] = ()
    #: What could not be read (permissions, a failing tool): the report's notes.
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        name = {"postfix": "Postfix", "exim": "Exim"}[self.kind]
        return f"{name} {self.version}" if self.version else name

    def deferred_by_reason(self) -> dict[str, int]:
        """Deferred messages per reason (the queue's, else the log's attempts)."""
        counts: dict[str, int] = {}
        if self.queue.readable and self.queue.destinations:
            for dest in self.queue.destinations:
                counts[dest.reason] = counts.get(dest.reason, 0) + dest.count
        else:
            for deferral in self.log.deferrals:
                counts[deferral.reason] = counts.get(deferral.reason, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": self.version,
            "found_by": self.found_by,
            "settings": dict(self.settings),
            "queue": self.queue.to_dict(),
            "log": self.log.to_dict(),
            "findings": list(self.findings),
            "advice": list(texts(self.advice)),
        }
