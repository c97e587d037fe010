"""classify(): the one map from (what went wrong, at which phase) to a probe's outcome.

One row per phase x kind of failure, so a change in what any failure means shows here.
The exceptions are built the way trio and ssl raise them: a broken TLS or socket stream
is ``trio.BrokenResourceError`` whose ``__cause__`` carries the ``ssl``/``OSError`` detail.
"""

from __future__ import annotations

import errno
import ssl
import typing

import pytest
import trio

from portprobe.probe.errors import Deadline, Phase, classify
from portprobe.protocol.smtp import PeerClosed, ReplyLimitError, SMTPProtocolError


def broken(cause: BaseException) -> trio.BrokenResourceError:
    try:
        raise trio.BrokenResourceError from cause
    except trio.BrokenResourceError as exc:
        return exc


def os_error(number: int) -> OSError:
    return OSError(number, errno.errorcode[number])


def verify_error() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "certificate has expired"
    return exc


KINDS: dict[str, BaseException | Deadline] = {
    "deadline": Deadline(10.0),
    "refused": os_error(errno.ECONNREFUSED),
    "unreachable": os_error(errno.EHOSTUNREACH),
    "emfile": os_error(errno.EMFILE),
    "kernel-timeout": os_error(errno.ETIMEDOUT),
    "reset": broken(os_error(errno.ECONNRESET)),
    "tls-alert": broken(ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE]")),
    "tls-verify": broken(verify_error()),
    "protocol": SMTPProtocolError("peer sent an HTTP response: 'HTTP/1.1'"),
    "limit": ReplyLimitError("reply line longer than 2048 bytes"),
    "closed": PeerClosed(partial=False),
    "closed-mid-reply": PeerClosed(partial=True),
}

# (phase, kind) -> (state or None, error.kind or None, anomaly or None)
Row = tuple[str | None, str | None, str | None]
TABLE: dict[tuple[Phase, str], Row] = {
    ("connect", "deadline"): ("filtered", "timeout", None),
    ("connect", "refused"): ("refused", "connect", None),
    ("connect", "unreachable"): ("unreachable", "connect", None),
    ("connect", "emfile"): ("error", "local-resource", None),
    ("connect", "kernel-timeout"): ("filtered", "timeout", None),
    ("tls", "deadline"): ("tls-error", "timeout", None),
    ("tls", "reset"): ("tls-error", "tls", None),
    ("tls", "tls-alert"): ("tls-error", "tls", None),
    ("tls", "tls-verify"): ("tls-error", "tls-verify", None),
    ("tls", "refused"): ("tls-error", "tls", None),
    ("greeting", "deadline"): ("no-banner", "timeout", None),
    ("greeting", "reset"): ("no-banner", "reset", None),
    ("greeting", "tls-alert"): ("no-banner", "tls", None),
    ("greeting", "protocol"): ("not-smtp", "protocol", None),
    ("greeting", "limit"): ("not-smtp", "protocol", None),
    ("greeting", "closed"): ("no-banner", "closed", None),
    ("greeting", "closed-mid-reply"): ("no-banner", "closed", None),
    ("tls-upgrade", "deadline"): (None, "timeout", "starttls-handshake-failed"),
    ("tls-upgrade", "tls-alert"): (None, "tls", "starttls-handshake-failed"),
    ("tls-upgrade", "reset"): (None, "tls", "starttls-handshake-failed"),
    ("tls-upgrade", "tls-verify"): (None, "tls-verify", "starttls-handshake-failed"),
}
# After the greeting, the state stays what the greeting made it; the failure is evidence.
for _phase in ("ehlo", "starttls"):
    TABLE[(_phase, "deadline")] = (None, "timeout", None)
    TABLE[(_phase, "reset")] = (None, "reset", None)
    TABLE[(_phase, "tls-alert")] = (None, "tls", None)
    TABLE[(_phase, "protocol")] = (None, "protocol", None)
    TABLE[(_phase, "limit")] = (None, "protocol", None)
    TABLE[(_phase, "closed")] = (None, "closed", None)
    TABLE[(_phase, "closed-mid-reply")] = (None, "closed", None)
# After QUIT nothing is worth recording.
for _kind in KINDS:
    TABLE[("quit", _kind)] = (None, None, None)


@pytest.mark.parametrize(("phase", "kind"), sorted(TABLE), ids=lambda v: str(v))
def test_every_phase_and_kind(phase: Phase, kind: str) -> None:
    failure = classify(KINDS[kind], phase=phase)
    state, error_kind, anomaly = TABLE[(phase, kind)]
    assert failure.state == state
    assert (failure.error.kind if failure.error else None) == error_kind
    assert failure.anomaly == anomaly


def test_the_table_covers_every_phase() -> None:
    assert {phase for phase, _ in TABLE} == set(typing.get_args(Phase))


def test_messages_say_where_and_carry_the_errno() -> None:
    f = classify(KINDS["reset"], phase="ehlo")
    assert f.error is not None and f.error.errno == "ECONNRESET"
    assert f.error.message.endswith("during ehlo")
    f = classify(KINDS["reset"], phase="greeting")
    assert f.error is not None and f.error.message.endswith("before a greeting")
    f = classify(Deadline(2.5), phase="connect")
    assert f.error is not None and "within 2.5 s" in f.error.message
    f = classify(Deadline(30.0), phase="greeting")
    assert f.error is not None and "within 30 s" in f.error.message
    f = classify(KINDS["closed-mid-reply"], phase="greeting")
    assert f.error is not None and "middle of a reply" in f.error.message


@pytest.mark.parametrize(
    ("cause", "phase"),
    [(ValueError("a bug"), "greeting"), (KINDS["protocol"], "connect"), (KeyError(), "quit")],
)
def test_what_is_not_a_network_failure_is_refused(cause: BaseException, phase: Phase) -> None:
    if phase == "quit":
        # After QUIT everything is ignored by design; only before it do bugs surface.
        assert classify(cause, phase=phase).error is None
        return
    with pytest.raises(TypeError):
        classify(cause, phase=phase)
