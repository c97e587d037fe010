"""encode_command: the writing half of the sans-I/O SMTP code, and the reader's EOF.

Only EHLO, HELO, STARTTLS and QUIT can be encoded; nothing a peer or a user supplies can
smuggle a second command (CR, LF, NUL) or non-ASCII onto the wire.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portprobe.protocol.smtp import (
    NEED_DATA,
    CommandError,
    PeerClosed,
    ReplyReader,
    encode_command,
)


@pytest.mark.parametrize(
    ("verb", "arg", "wire"),
    [
        ("EHLO", "mx.example.org", b"EHLO mx.example.org\r\n"),
        ("EHLO", "[192.0.2.7]", b"EHLO [192.0.2.7]\r\n"),
        ("EHLO", "[IPv6:2001:db8::7]", b"EHLO [IPv6:2001:db8::7]\r\n"),
        ("HELO", "xn--bcher-kva.example", b"HELO xn--bcher-kva.example\r\n"),
        ("STARTTLS", None, b"STARTTLS\r\n"),
        ("QUIT", None, b"QUIT\r\n"),
    ],
)
def test_the_four_commands(verb: str, arg: str | None, wire: bytes) -> None:
    assert encode_command(verb, arg) == wire


@pytest.mark.parametrize(
    ("verb", "arg"),
    [
        ("MAIL", "FROM:<a@b.example>"),
        ("RCPT", "TO:<a@b.example>"),
        ("DATA", None),
        ("AUTH", "PLAIN AGFAAGI="),
        ("VRFY", "postmaster"),
        ("RSET", None),
        ("ehlo", "mx.example.org"),  # verbs are exact: nothing is normalised into shape
        ("EHLO", None),  # EHLO needs a name
        ("QUIT", "now"),  # QUIT takes none
        ("STARTTLS", "x"),
        ("EHLO", "x.example\r\nMAIL FROM:<a@b.example>"),
        ("EHLO", "x.example\n"),
        ("EHLO", "x.example\r"),
        ("EHLO", "x\x00.example"),
        ("EHLO", "bücher.example"),
        ("EHLO", ""),
        ("EHLO", "a b.example"),
        ("EHLO", "[999.1.1.1]"),
    ],
)
def test_anything_else_is_refused(verb: str, arg: str | None) -> None:
    with pytest.raises(CommandError):
        encode_command(verb, arg)


@given(st.text(max_size=80))
def test_no_argument_ever_adds_a_line(arg: str) -> None:
    try:
        wire = encode_command("EHLO", arg)
    except CommandError:
        return
    assert wire.count(b"\n") == 1 and wire.endswith(b"\r\n") and wire.isascii()
    assert b"\x00" not in wire and b"\r" not in wire[:-2]


def test_command_error_is_a_value_error() -> None:
    # Callers that guard with ValueError (ProbeConfig's EHLO-name check) keep working.
    assert issubclass(CommandError, ValueError)


# --- feed(b"") is the end of the stream (h11's EOF) ---------------------------------------------


@pytest.mark.parametrize(
    ("data", "partial"),
    [(b"", False), (b"220-mx.example ready\r\n", True), (b"220 mx.exa", True)],
)
def test_eof_before_a_complete_reply(data: bytes, partial: bool) -> None:
    reader = ReplyReader()
    if data:
        reader.feed(data)
    assert reader.next_reply() is NEED_DATA
    reader.feed(b"")
    with pytest.raises(PeerClosed) as caught:
        reader.next_reply()
    assert caught.value.partial is partial


def test_eof_after_complete_replies_still_returns_them_first() -> None:
    reader = ReplyReader()
    reader.feed(b"221 bye\r\n")
    reader.feed(b"")
    reply = reader.next_reply()
    assert not isinstance(reply, type(NEED_DATA)) and reply.code == 221
    with pytest.raises(PeerClosed):
        reader.next_reply()
