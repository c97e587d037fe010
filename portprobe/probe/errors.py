"""One place that turns what went wrong into a probe state.

A network failure is a result, not an exception: everything ordinary that can happen to a
probe is mapped here, so the engine and the runner never untangle errors themselves.

Linux facts this mapping rests on (see also the verdict module, which reads timings):
- a TCP RST and an ICMP port-unreachable both surface as ECONNREFUSED;
- ICMP administratively-prohibited surfaces as EHOSTUNREACH on IPv4 and EACCES on IPv6
  (RFC 4443 code 1), a local firewall REJECT/DROP on output as EPERM;
- a silently dropped SYN never surfaces at all: only our own timeout says so.
"""

from __future__ import annotations

import errno as _errno
import ssl
from dataclasses import dataclass
from typing import Final, Literal

import trio

from portprobe.model import ErrorInfo, State
from portprobe.probe.connect import KernelReport
from portprobe.protocol.smtp import PeerClosed, SMTPProtocolError

#: Where a probe can be when something goes wrong, in the order a probe walks them.
#: ``tls`` is the implicit-TLS handshake (465, before any greeting); ``tls-upgrade`` the
#: handshake after a STARTTLS ``220``; ``ehlo`` covers the EHLO inside TLS as well.
Phase = Literal["connect", "tls", "greeting", "ehlo", "starttls", "tls-upgrade", "quit"]


@dataclass(frozen=True)
class Deadline:
    """A cancel scope of ours fired: the probe's clock ran out, nothing was raised."""

    seconds: float  # how long that clock was (or how long the connect attempt waited)


@dataclass(frozen=True)
class Failure:
    """What a failure at one phase means: the state it decides (None: keep the state the
    probe had, e.g. ``open`` after a good greeting), the error to record (None: nothing
    worth recording, as after QUIT) and an anomaly code, if any."""

    state: State | None
    error: ErrorInfo | None
    anomaly: str | None = None


#: Every exception the network can raise into an attempt; anything else is a bug.
EXPECTED: Final = (OSError, trio.BrokenResourceError, SMTPProtocolError, PeerClosed)


def errnos(*names: str) -> frozenset[int]:
    """The numbers of the errno names this system has: ENONET is Linux's alone, and on
    Windows a socket reports WSA numbers (CPython maps ECONNREFUSED, EHOSTUNREACH and the
    other socket names to them, but not EACCES), so each set names both spellings."""
    return frozenset(getattr(_errno, name) for name in names if hasattr(_errno, name))


# Errors that mean "something on the path said no (or no way there)": ICMP unreachable of
# any kind, no route, or a local firewall rule. EADDRNOTAVAIL shows up for IPv6 when the
# host has no usable source address for that destination — no route, in effect.
_UNREACHABLE = errnos(
    "EHOSTUNREACH",
    "ENETUNREACH",
    "EACCES",
    "EPERM",
    "EADDRNOTAVAIL",
    "ENONET",
    "EHOSTDOWN",
    "ENETDOWN",
    "EAFNOSUPPORT",
    "WSAEHOSTUNREACH",
    "WSAENETUNREACH",
    "WSAEACCES",
    "WSAEADDRNOTAVAIL",
    "WSAEHOSTDOWN",
    "WSAENETDOWN",
    "WSAEAFNOSUPPORT",
)
_LOCAL_RESOURCE = errnos("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "WSAEMFILE", "WSAENOBUFS")
_REFUSED = errnos("ECONNREFUSED", "WSAECONNREFUSED")
_TIMED_OUT = errnos("ETIMEDOUT", "WSAETIMEDOUT")
_RESET = errnos("ECONNRESET", "WSAECONNRESET")


def is_local_resource(exc: OSError) -> bool:
    """Out of sockets or memory here: says nothing about the path or the peer."""
    return exc.errno in _LOCAL_RESOURCE


def errno_name(exc: BaseException) -> str | None:
    number = getattr(exc, "errno", None)
    if isinstance(number, int):
        return _errno.errorcode.get(number, str(number))
    return None


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def classify_connect_error(exc: OSError) -> tuple[State, ErrorInfo]:
    """Map a failed ``connect()`` to ``refused`` / ``unreachable`` / ``error``."""
    number = exc.errno
    name = errno_name(exc)
    # What the kernel's error queue said, where the connector read it (probe/connect.py).
    report = getattr(exc, "report", None)
    icmp = report.icmp if isinstance(report, KernelReport) else None
    if number in _REFUSED:
        return "refused", ErrorInfo(
            "connect", "connection refused (RST or ICMP port unreachable)", name, icmp
        )
    if number in _UNREACHABLE:
        return "unreachable", ErrorInfo("connect", _message(exc), name, icmp)
    if number in _LOCAL_RESOURCE:
        return "error", ErrorInfo("local-resource", _message(exc), name)
    if number in _TIMED_OUT:
        # The kernel gave up on its SYN retries before our deadline: still a silent drop.
        return "filtered", ErrorInfo("timeout", "no answer to the connection attempt", name)
    return "error", ErrorInfo("connect", _message(exc), name, icmp)


def describe_tls_error(exc: BaseException) -> tuple[ErrorInfo, str | None]:
    """An ``ErrorInfo`` for a failed handshake, plus the verification error if that was it.

    trio wraps ``ssl.SSLError`` in ``BrokenResourceError``; the cause carries the detail.
    """
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, ssl.SSLCertVerificationError):
        verify = cause.verify_message or str(cause)
        return ErrorInfo("tls-verify", verify, errno_name(cause)), verify
    if isinstance(cause, ssl.SSLError):
        reason = getattr(cause, "reason", None) or cause.strerror or str(cause)
        return ErrorInfo("tls", f"TLS handshake failed: {reason}", None), None
    if isinstance(cause, OSError):
        return ErrorInfo("tls", f"TLS handshake failed: {_message(cause)}", errno_name(cause)), None
    return ErrorInfo("tls", f"TLS handshake failed: {_message(cause)}", None), None


def describe_io_error(exc: BaseException) -> ErrorInfo:
    """An ``ErrorInfo`` for a connection that broke after it was established."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, OSError) and cause.errno in _RESET:
        return ErrorInfo("reset", "connection reset by peer", "ECONNRESET")
    if isinstance(cause, ssl.SSLError):  # before OSError: SSLError is one
        return ErrorInfo("tls", getattr(cause, "reason", None) or str(cause), None)
    if isinstance(cause, OSError):
        return ErrorInfo("io", _message(cause), errno_name(cause))
    return ErrorInfo("io", _message(cause), None)


def _suffix(error: ErrorInfo, words: str) -> ErrorInfo:
    return ErrorInfo(error.kind, f"{error.message} {words}", error.errno)


def classify(cause: BaseException | Deadline, *, phase: Phase) -> Failure:
    """The one map from (what went wrong, where) to a probe's state and error.

    RFC 5321 §3.1: the server speaks first, so everything that ends a probe before a
    complete greeting says the service is not there (``no-banner``, ``not-smtp``, or
    ``tls-error`` on 465); after the greeting the state stays what the greeting made it
    and the failure is recorded as evidence. After QUIT nothing matters any more.
    """
    if phase == "quit":
        return Failure(None, None)
    if isinstance(cause, Deadline):
        return _deadline(cause.seconds, phase)
    if phase == "connect":
        if isinstance(cause, OSError):
            state, error = classify_connect_error(cause)
            return Failure(state, error)
        raise TypeError(f"unexpected {type(cause).__name__} while connecting") from cause
    if phase in ("tls", "tls-upgrade") and isinstance(cause, (OSError, trio.BrokenResourceError)):
        error, _ = describe_tls_error(cause)
        if phase == "tls":
            return Failure("tls-error", error)
        return Failure(None, error, "starttls-handshake-failed")
    if isinstance(cause, SMTPProtocolError):
        if phase == "greeting":
            return Failure("not-smtp", ErrorInfo("protocol", str(cause)))
        return Failure(None, ErrorInfo("protocol", f"during {phase}: {cause}"))
    if isinstance(cause, PeerClosed):
        if phase == "greeting":
            return Failure("no-banner", ErrorInfo("closed", f"{cause} before a complete greeting"))
        return Failure(None, ErrorInfo("closed", f"{cause} during {phase}"))
    if isinstance(cause, (OSError, trio.BrokenResourceError)):
        error = describe_io_error(cause)
        if phase == "greeting":
            return Failure("no-banner", _suffix(error, "before a greeting"))
        return Failure(None, _suffix(error, f"during {phase}"))
    raise TypeError(f"not a network failure: {cause!r}") from cause


def _deadline(seconds: float, phase: Phase) -> Failure:
    if phase == "connect":
        return Failure(
            "filtered",
            ErrorInfo("timeout", f"no answer to the connection attempt within {seconds:.1f} s"),
        )
    if phase == "tls":
        return Failure("tls-error", ErrorInfo("timeout", "TLS handshake stalled"))
    if phase == "greeting":
        return Failure(
            "no-banner", ErrorInfo("timeout", f"no complete greeting within {seconds:g} s")
        )
    anomaly = "starttls-handshake-failed" if phase == "tls-upgrade" else None
    return Failure(None, ErrorInfo("timeout", f"timed out during {phase}"), anomaly)
