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

from portprobe.model import ErrorInfo, State

# Errors that mean "something on the path said no (or no way there)": ICMP unreachable of
# any kind, no route, or a local firewall rule. EADDRNOTAVAIL shows up for IPv6 when the
# host has no usable source address for that destination — no route, in effect.
_UNREACHABLE = frozenset(
    {
        _errno.EHOSTUNREACH,
        _errno.ENETUNREACH,
        _errno.EACCES,
        _errno.EPERM,
        _errno.EADDRNOTAVAIL,
        _errno.ENONET,
        _errno.EHOSTDOWN,
        _errno.ENETDOWN,
        _errno.EAFNOSUPPORT,
    }
)
_LOCAL_RESOURCE = frozenset({_errno.EMFILE, _errno.ENFILE, _errno.ENOBUFS, _errno.ENOMEM})


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
    if number == _errno.ECONNREFUSED:
        return "refused", ErrorInfo(
            "connect", "connection refused (RST or ICMP port unreachable)", name
        )
    if number in _UNREACHABLE:
        return "unreachable", ErrorInfo("connect", _message(exc), name)
    if number in _LOCAL_RESOURCE:
        return "error", ErrorInfo("local-resource", _message(exc), name)
    if number == _errno.ETIMEDOUT:
        # The kernel gave up on its SYN retries before our deadline: still a silent drop.
        return "filtered", ErrorInfo("timeout", "no answer to the connection attempt", name)
    return "error", ErrorInfo("connect", _message(exc), name)


def describe_tls_error(exc: BaseException) -> tuple[ErrorInfo, str | None]:
    """An ``ErrorInfo`` for a failed handshake, plus the verification error if that was it.

    trio wraps ``ssl.SSLError`` in ``BrokenResourceError``; the cause carries the detail.
    """
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, ssl.SSLCertVerificationError):
        verify = cause.verify_message or str(cause)
        return ErrorInfo("tls-verify", verify, errno_name(cause)), verify
    if isinstance(cause, ssl.SSLError):
        reason = cause.reason or cause.strerror or str(cause)
        return ErrorInfo("tls", f"TLS handshake failed: {reason}", None), None
    if isinstance(cause, OSError):
        return ErrorInfo("tls", f"TLS handshake failed: {_message(cause)}", errno_name(cause)), None
    return ErrorInfo("tls", f"TLS handshake failed: {_message(cause)}", None), None


def describe_io_error(exc: BaseException) -> ErrorInfo:
    """An ``ErrorInfo`` for a connection that broke after it was established."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, OSError) and cause.errno == _errno.ECONNRESET:
        return ErrorInfo("reset", "connection reset by peer", "ECONNRESET")
    if isinstance(cause, OSError):
        return ErrorInfo("io", _message(cause), errno_name(cause))
    if isinstance(cause, ssl.SSLError):
        return ErrorInfo("tls", cause.reason or str(cause), None)
    return ErrorInfo("io", _message(cause), None)
