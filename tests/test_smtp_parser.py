"""The sans-I/O reply reader: the same bytes whole, byte by byte, and with trailing data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portprobe.model import Reply
from portprobe.protocol.smtp import (
    NEED_DATA,
    ReplyLimitError,
    ReplyLimits,
    ReplyReader,
    SMTPProtocolError,
    ehlo_keywords,
    greeting_domain,
    has_keyword,
    is_masked_greeting,
    is_stripped_starttls,
)


def read_all(data: bytes, *, chunk: int | None = None, limits: ReplyLimits | None = None):
    reader = ReplyReader(limits or ReplyLimits())
    replies: list[Reply] = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        reader.feed(piece)
        while True:
            event = reader.next_reply()
            if event is NEED_DATA:
                break
            assert isinstance(event, Reply)
            replies.append(event)
    return replies, reader


CASES = [
    (b"220 mx.example ESMTP ready\r\n", [(220, ("mx.example ESMTP ready",))]),
    (b"220-mx.example\r\n220-second\r\n220 last\r\n", [(220, ("mx.example", "second", "last"))]),
    (b"220 bare LF ok\n", [(220, ("bare LF ok",))]),
    (b"250\r\n", [(250, ("",))]),
    (b"220 a\r\n250 b\r\n", [(220, ("a",)), (250, ("b",))]),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
@pytest.mark.parametrize("chunk", [None, 1])
def test_replies_whole_and_byte_by_byte(data: bytes, expected: list, chunk: int | None) -> None:
    replies, reader = read_all(data, chunk=chunk)
    assert [(r.code, r.lines) for r in replies] == expected
    assert reader.trailing_data == b""


def test_trailing_data_is_kept_for_the_caller() -> None:
    # RFC 3207 §4.2: bytes after the STARTTLS 220 must be discarded, and noticed.
    reader = ReplyReader()
    reader.feed(b"220 go ahead\r\n\x16\x03\x01injected")
    reply = reader.next_reply()
    assert isinstance(reply, Reply) and reply.code == 220
    assert reader.trailing_data == b"\x16\x03\x01injected"
    assert reader.discard_trailing_data() == b"\x16\x03\x01injected"
    assert reader.trailing_data == b""


def test_enhanced_status_code_parsed_only_when_class_matches() -> None:
    replies, _ = read_all(b"554 5.7.1 blocked using zen.spamhaus.org\r\n250 2.0.0 ok\r\n")
    assert replies[0].enhanced == "5.7.1"
    assert replies[1].enhanced == "2.0.0"
    replies, _ = read_all(b"554 2.7.1 mismatched class\r\n")
    assert replies[0].enhanced is None


def test_invalid_utf8_is_kept_visible() -> None:
    replies, _ = read_all(b"220 caf\xc3\xa9 \xff\xfe\r\n")
    assert replies[0].lines == ("café \\xff\\xfe",)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n", "HTTP"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "SSH"),
        (b"\x15\x03\x01\x00\x02\x02\x46", "TLS"),
        (b"220-first\r\n250 second\r\n", "disagree"),
        (b"22x hello\r\n", "not an SMTP reply"),
        (b"220hello\r\n", "not an SMTP reply"),
    ],
)
def test_not_smtp(data: bytes, what: str) -> None:
    with pytest.raises(SMTPProtocolError, match=what):
        read_all(data)


def test_not_smtp_detected_before_a_newline() -> None:
    # An HTTP or TLS peer may never send a newline we are waiting for: fail on the prefix.
    reader = ReplyReader()
    reader.feed(b"HTTP")
    with pytest.raises(SMTPProtocolError):
        reader.next_reply()


def test_line_limit_enforced_while_bytes_arrive() -> None:
    limits = ReplyLimits(max_line=100)
    reader = ReplyReader(limits)
    reader.feed(b"220 " + b"a" * 96)
    assert reader.next_reply() is NEED_DATA
    reader.feed(b"aa")
    with pytest.raises(ReplyLimitError, match="longer than 100"):
        reader.next_reply()
    assert reader.buffered <= 102


def test_line_count_and_byte_limits() -> None:
    with pytest.raises(ReplyLimitError, match="more than 5 lines"):
        read_all(b"220-x\r\n" * 10 + b"220 end\r\n", limits=ReplyLimits(max_lines=5))
    with pytest.raises(ReplyLimitError, match="larger than 64"):
        read_all(
            b"220-" + b"y" * 40 + b"\r\n" + b"220 " + b"z" * 40 + b"\r\n",
            limits=ReplyLimits(max_bytes=64),
        )


def test_ehlo_helpers() -> None:
    reply = Reply(250, ("mx.example hello", "PIPELINING", "STARTTLS", "SIZE 1000", "AUTH PLAIN"))
    keywords = ehlo_keywords(reply)
    assert keywords == ("PIPELINING", "STARTTLS", "SIZE 1000", "AUTH PLAIN")
    assert has_keyword(keywords, "starttls")
    assert not has_keyword(("XSTARTTLSX",), "STARTTLS")  # no substring sniffing
    assert is_stripped_starttls(("PIPELINING", "XXXXXXXA"))
    assert not is_stripped_starttls(keywords)


def test_greeting_helpers() -> None:
    assert is_masked_greeting(Reply(220, ("*" * 30,)))
    assert is_masked_greeting(Reply(220, ("******************** 0*0*0 ****",)))
    assert not is_masked_greeting(Reply(220, ("mx.example ESMTP ***",)))
    assert greeting_domain(Reply(220, ("MX.Example. ESMTP",))) == "mx.example"
    assert greeting_domain(Reply(220, ("*****",))) is None


@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=64))
def test_random_bytes_never_escape_the_error_types(data: bytes, chunk: int) -> None:
    """Whatever a peer sends, the reader returns replies, asks for more, or says why not."""
    reader = ReplyReader(ReplyLimits(max_line=256, max_lines=20, max_bytes=2048))
    try:
        for i in range(0, len(data), chunk):
            reader.feed(data[i : i + chunk])
            while (event := reader.next_reply()) is not NEED_DATA:
                assert isinstance(event, Reply)
                assert 200 <= event.code <= 559
                assert all("\n" not in line for line in event.lines)
            assert reader.buffered <= 256 + chunk
    except SMTPProtocolError:
        pass


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=200, max_value=559).filter(lambda c: c % 100 < 60),
            st.lists(
                st.text(
                    alphabet=st.characters(
                        blacklist_categories=("Cs",), blacklist_characters="\r\n"
                    ),
                    max_size=40,
                ),
                min_size=1,
                max_size=5,
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([None, 1, 7]),
)
def test_round_trip_of_well_formed_replies(replies: list, chunk: int | None) -> None:
    wire = b""
    for code, lines in replies:
        for i, line in enumerate(lines):
            sep = " " if i == len(lines) - 1 else "-"
            wire += f"{code}{sep}{line}\r\n".encode()
    parsed, _ = read_all(wire, chunk=chunk, limits=ReplyLimits(max_bytes=1 << 20))
    assert [(r.code, r.lines) for r in parsed] == [(c, tuple(lines)) for c, lines in replies]
