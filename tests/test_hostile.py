"""Hostile peers on loopback: every probe ends by its deadline, in the right state, with
bounded memory, and nothing the peer sent can reach a terminal unescaped.

The peers are raw trio servers over in-memory lockstep streams (the engine's connector
seam) inside the test's own trio run, so the mock clock drives their pauses (a greeting
dripped one byte a second costs no real time), "within the deadline" is measured on
trio's clock, and no jump of that clock can race bytes in a kernel buffer. Lockstep
streams hold no buffer, so a flood is flow-controlled as it would be over TCP. Each
scenario is a row: what the peer does, the port role, the state the probe must end in,
and what else must hold. The renderers get the same hostile text (as a report dict) at
the end of the file.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portprobe.model import Plan, ProbeResult
from portprobe.probe import ProbeConfig, probe
from portprobe.probe.tls import make_contexts
from portprobe.protocol.smtp import (
    NEED_DATA,
    ReplyLimits,
    ReplyReader,
    SMTPProtocolError,
)
from portprobe.text import visible
from tests.servers import (
    Certs,
    MemoryConnection,
    Transcript,
    make_certs,
    serve_memory,
    serve_raw,
    spec,
)

TIMEOUT = 10.0
CONFIG = ProbeConfig(timeout=TIMEOUT, connect_timeout=2.0)

Handler = Callable[[trio.SocketStream, Transcript], Awaitable[None]]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


# --- what a hostile peer sends ---------------------------------------------------------------

#: Escape sequences that do something to a terminal when printed raw: retitle (OSC 0),
#: clear the screen (CSI 2J), write the clipboard (OSC 52), reorder the line (bidi RLO),
#: 8-bit CSI as valid UTF-8 (U+009B), a backspace and a NUL, and bytes that are not UTF-8.
NASTY = (
    b"\x1b]0;pwned\x07"
    b"\x1b[2J\x1b[31m"
    b"\x1b]52;c;cm0gLXJmIH4=\x07"
    b"\xe2\x80\xae"  # U+202E RIGHT-TO-LEFT OVERRIDE
    b"\xc2\x9b6n"  # U+009B CSI: "report cursor position" on 8-bit terminals
    b"\x08\x00\x7f"
    b"\xff\xfe\xc3"
)


async def read_command(stream: trio.SocketStream, t: Transcript, buf: bytearray) -> bytes | None:
    line = await t.read_line(stream, buf)
    return None if line is None else line.strip().split(b" ")[0].upper()


async def answer_until_quit(
    stream: trio.SocketStream, t: Transcript, buf: bytearray, ehlo: bytes
) -> None:
    while (verb := await read_command(stream, t, buf)) is not None:
        if verb == b"EHLO":
            await stream.send_all(ehlo)
        elif verb == b"QUIT":
            await stream.send_all(b"221 bye\r\n")
            return
        else:
            await stream.send_all(b"502 no\r\n")


def reset(stream: trio.abc.Stream) -> None:
    """Abort the connection: the peer sees a reset (RST), not an orderly close (FIN)."""
    if isinstance(stream, MemoryConnection):
        stream.reset()
        return
    assert isinstance(stream, trio.SocketStream)
    # Close with SO_LINGER 0: the kernel sends RST instead of FIN.
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


async def send_repeatedly(stream: trio.SocketStream, chunk: bytes, total: int) -> None:
    """Push ``total`` bytes built from one preallocated chunk (the peer's own memory flat)."""
    sent = 0
    while sent < total:
        await stream.send_all(chunk)
        sent += len(chunk)
    await trio.sleep_forever()


async def drip_forever(stream: trio.SocketStream, t: Transcript) -> None:
    # A greeting that never ends, one byte a second: "220-" continuation lines forever.
    line = b"220-drip.test still greeting\r\n"
    while True:
        for byte in line:
            await stream.send_all(bytes([byte]))
            await trio.sleep(1.0)


async def megabyte_no_newline_greeting(stream: trio.SocketStream, t: Transcript) -> None:
    await stream.send_all(b"220 ")
    await send_repeatedly(stream, b"A" * 65536, 4 * 1024 * 1024)


async def megabyte_no_newline_ehlo(stream: trio.SocketStream, t: Transcript) -> None:
    await stream.send_all(b"220 flood.test ESMTP\r\n")
    if await read_command(stream, t, bytearray()) == b"EHLO":
        await stream.send_all(b"250-")
        await send_repeatedly(stream, b"B" * 65536, 4 * 1024 * 1024)


_CONTINUATION = b"220-flood.test " + b"x" * 48 + b"\r\n"  # 65 bytes


async def continuation_flood_greeting(stream: trio.SocketStream, t: Transcript) -> None:
    await send_repeatedly(stream, _CONTINUATION * 1000, 10_000 * len(_CONTINUATION))


async def continuation_flood_ehlo(stream: trio.SocketStream, t: Transcript) -> None:
    await stream.send_all(b"220 flood.test ESMTP\r\n")
    if await read_command(stream, t, bytearray()) == b"EHLO":
        await send_repeatedly(stream, (b"250-" + _CONTINUATION[4:]) * 1000, 10_000 * 65)


async def escapes_everywhere(stream: trio.SocketStream, t: Transcript) -> None:
    await stream.send_all(b"220-evil.test " + NASTY + b"\r\n220 evil.test " + NASTY + b"\r\n")
    await answer_until_quit(
        stream,
        t,
        bytearray(),
        b"250-evil.test " + NASTY + b"\r\n250-X-" + NASTY + b"\r\n250 8BITMIME\r\n",
    )


async def never_speaks(stream: trio.SocketStream, t: Transcript) -> None:
    await trio.sleep_forever()


async def http_instead(stream: trio.SocketStream, t: Transcript) -> None:
    await stream.send_all(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n")
    await trio.sleep_forever()


async def reset_mid_ehlo(stream: trio.SocketStream, t: Transcript) -> None:
    await stream.send_all(b"220 rst.test ESMTP\r\n")
    if await read_command(stream, t, bytearray()) == b"EHLO":
        await stream.send_all(b"250-rst.test\r\n250-PIPEL")
        reset(stream)


async def swallow_client_hello(stream: trio.SocketStream, t: Transcript) -> None:
    """Read what the client sends first (its ClientHello) and wait for it to be complete."""
    await t.receive(stream)


async def tls_stall(stream: trio.SocketStream, t: Transcript) -> None:
    await swallow_client_hello(stream, t)
    await trio.sleep_forever()


#: A fatal handshake_failure alert (RFC 8446 §6: content type 21, level 2, description 40).
TLS_ALERT = b"\x15\x03\x03\x00\x02\x02\x28"


async def tls_alert(stream: trio.SocketStream, t: Transcript) -> None:
    await swallow_client_hello(stream, t)
    await stream.send_all(TLS_ALERT)
    await trio.sleep_forever()


@dataclass(frozen=True)
class Scenario:
    name: str
    handler: Handler
    state: str
    role: int = 25
    error_kind: str | None = None
    anomaly: str | None = None
    error_mentions: str | None = None
    # The whole probe must end this early (mock-clock seconds); default: the deadline.
    within: float = TIMEOUT
    bounded_memory: bool = False
    greeting_seen: bool | None = None
    checks: tuple[Callable[[ProbeResult], bool], ...] = field(default=())


SCENARIOS = [
    Scenario(
        "greeting-dripped-forever",
        drip_forever,
        "no-banner",
        error_kind="timeout",
        greeting_seen=False,
    ),
    Scenario(
        "greeting-1mb-no-newline",
        megabyte_no_newline_greeting,
        "not-smtp",
        error_mentions="longer than",
        within=0.1,
        bounded_memory=True,
    ),
    Scenario(
        "ehlo-1mb-no-newline",
        megabyte_no_newline_ehlo,
        "open",
        error_kind="protocol",
        error_mentions="longer than",
        within=0.1,
        bounded_memory=True,
        greeting_seen=True,
    ),
    Scenario(
        "greeting-10000-continuation-lines",
        continuation_flood_greeting,
        "not-smtp",
        error_mentions="more than",
        within=0.1,
        bounded_memory=True,
    ),
    Scenario(
        "ehlo-10000-continuation-lines",
        continuation_flood_ehlo,
        "open",
        error_kind="protocol",
        error_mentions="more than",
        within=0.1,
        bounded_memory=True,
    ),
    Scenario("accepts-never-speaks", never_speaks, "no-banner", error_kind="timeout"),
    Scenario("http-instead-of-smtp", http_instead, "not-smtp", error_mentions="HTTP", within=0.1),
    Scenario(
        "reset-mid-ehlo",
        reset_mid_ehlo,
        "open",
        error_kind="reset",
        within=0.1,
        greeting_seen=True,
        checks=(lambda r: r.ehlo is None and not r.quit_sent,),
    ),
    Scenario(
        "tls-handshake-stalled-465",
        tls_stall,
        "tls-error",
        role=465,
        error_kind="timeout",
        greeting_seen=False,
    ),
    Scenario(
        "tls-alert-465",
        tls_alert,
        "tls-error",
        role=465,
        error_kind="tls",
        within=0.1,
        greeting_seen=False,
    ),
    Scenario(
        "tls-alert-after-starttls",
        # The same alert, on the STARTTLS path: the greeting stands, the upgrade failed.
        lambda s, t: starttls_with(s, t, TLS_ALERT),
        "open",
        anomaly="starttls-handshake-failed",
        error_kind="tls",
        within=0.1,
    ),
    Scenario(
        "starttls-220-then-plaintext",
        lambda s, t: starttls_with(s, t, b"250 fake.test pretends the handshake worked\r\n"),
        "open",
        anomaly="starttls-handshake-failed",
        error_kind="tls",
        within=0.1,
        greeting_seen=True,
        checks=(lambda r: r.tls is None and r.starttls == "offered",),
    ),
    Scenario(
        "escapes-in-greeting-and-ehlo",
        escapes_everywhere,
        "open",
        within=0.1,
        greeting_seen=True,
        checks=(lambda r: r.ehlo is not None and len(r.ehlo) == 2 and r.quit_sent,),
    ),
]


async def starttls_with(stream: trio.SocketStream, t: Transcript, after_hello: bytes) -> None:
    await stream.send_all(b"220 fake.test ESMTP\r\n")
    buf = bytearray()
    while (verb := await read_command(stream, t, buf)) is not None:
        if verb == b"EHLO":
            await stream.send_all(b"250-fake.test\r\n250 STARTTLS\r\n")
        elif verb == b"STARTTLS":
            await stream.send_all(b"220 go ahead\r\n")
            await swallow_client_hello(stream, t)
            await stream.send_all(after_hello)
            await trio.sleep_forever()


async def run_scenario(
    handler: Handler, role: int, *, real_socket: bool = False
) -> tuple[ProbeResult, float, Transcript]:
    tls = make_contexts()
    async with trio.open_nursery() as nursery:
        if real_socket:
            port, transcript = await serve_raw(nursery, handler)
            s, connector = spec(port, role=role), None
        else:
            memory, transcript = await serve_memory(nursery, handler)
            s, connector = spec(1, role=role), memory
        start = trio.current_time()
        if connector is None:
            result = await probe(s, CONFIG, tls=tls)
        else:
            result = await probe(s, CONFIG, tls=tls, connector=connector)
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    return result, elapsed, transcript


def test_a_real_rst_mid_ehlo_is_a_reset() -> None:
    # The kernel's own RST (SO_LINGER 0) over real loopback, on the real clock: the
    # in-memory reset above stands in for this everywhere else. No timing asserted.
    result, _, _ = trio.run(lambda: run_scenario(reset_mid_ehlo, 25, real_socket=True))
    assert result.state == "open" and result.greeting is not None
    assert result.error is not None and result.error.kind == "reset"
    assert result.error.errno == "ECONNRESET" and not result.quit_sent


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_hostile_peer_ends_in_time_in_the_right_state(
    autojump_clock: trio.testing.MockClock, scenario: Scenario
) -> None:
    result, elapsed, _ = await run_scenario(scenario.handler, scenario.role)
    assert result.state == scenario.state, result.error
    assert elapsed <= scenario.within + 0.01
    assert result.timings.total is not None and result.timings.total <= TIMEOUT * 1000 + 10
    if scenario.error_kind is not None:
        assert result.error is not None and result.error.kind == scenario.error_kind
    if scenario.error_mentions is not None:
        assert result.error is not None and scenario.error_mentions in result.error.message
    if scenario.anomaly is not None:
        assert scenario.anomaly in result.anomalies
    if scenario.greeting_seen is not None:
        assert (result.greeting is not None) == scenario.greeting_seen
    for check in scenario.checks:
        assert check(result), result
    # Whatever the peer sent, the result serialises, and its JSON is plain printable text.
    assert_terminal_safe(json.dumps(result.to_dict()))


FLOODS = [s for s in SCENARIOS if s.bounded_memory]


@pytest.mark.parametrize("scenario", FLOODS, ids=[s.name for s in FLOODS])
def test_floods_are_read_in_bounded_memory(scenario: Scenario) -> None:
    # Real clock: the flood arrives as fast as loopback carries it. Peer and probe share
    # this process, so the peak counts both; the peer pushes up to 4 MB from one 64 KB
    # chunk, the probe may keep at most a reply's worth (64 KB) plus a receive buffer.
    tracemalloc.start()
    try:
        result, _, _ = trio.run(run_scenario, scenario.handler, scenario.role)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.state == scenario.state
    assert peak < 1024 * 1024, f"peak {peak} bytes while reading a flood"


async def test_escapes_are_kept_as_evidence_but_visible_only_escaped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    result, _, _ = await run_scenario(escapes_everywhere, 25)
    assert result.greeting is not None and result.ehlo is not None
    # The model keeps what was sent (evidence), bad UTF-8 as \xNN text...
    assert "\x1b]0;pwned\x07" in result.greeting.text
    assert "\\xff\\xfe\\xc3" in result.greeting.text
    assert "\u202e" in result.greeting.text and "\x9b" in result.greeting.text
    # ...and visible() turns every control, format and C1 character into text.
    for text in (result.greeting.text, result.ehlo[0]):
        shown = visible(text)
        assert_terminal_safe(shown)
        assert "\\x1b]0;pwned\\x07" in shown and "\\u202e" in shown and "\\x9b" in shown


# --- what is printed ------------------------------------------------------------------------


def assert_terminal_safe(text: str, *, allow: str = "") -> None:
    """No C0 control (but allowed ones), no DEL, no C1, no bidi/format character."""
    import unicodedata

    for index, ch in enumerate(text):
        code = ord(ch)
        bad = (
            (code < 0x20 and ch not in allow)
            or 0x7F <= code <= 0x9F
            or unicodedata.category(ch) in ("Cf", "Zl", "Zp")
        )
        assert not bad, f"{ch!r} at {index}: {text[max(0, index - 30) : index + 30]!r}"


def hostile_report(results: list[ProbeResult]) -> Any:
    from portprobe import __version__
    from portprobe.report.build import build_report

    plan = Plan(specs=tuple(r.spec for r in results))
    now = datetime.now(UTC)
    return build_report(
        results=results,
        plan=plan,
        parameters={"ports": [25, 465, 587, 2525], "targets": ["127.0.0.1"]},
        tool_version=__version__,
        started_at=now,
        finished_at=now,
        interrupted=False,
    )


RENDER_FORMATS = ("table", "markdown", "junit", "json")


def render_all(report: dict) -> dict[tuple[str, bool, bool], str]:
    render_module = pytest.importorskip("portprobe.render", reason="renderers not written yet")
    out = {}
    for fmt in RENDER_FORMATS:
        for verbose in (False, True):
            for color in (False, True) if fmt == "table" else (False,):
                out[(fmt, verbose, color)] = render_module.render(
                    fmt, report, color=color, width=120, verbose=verbose
                )
    return out


async def garbage_with_escapes(stream: trio.SocketStream, t: Transcript) -> None:
    await stream.send_all(NASTY + b" not smtp at all\r\n")
    await trio.sleep_forever()


async def rejected_with_escapes(stream: trio.SocketStream, t: Transcript) -> None:
    await stream.send_all(b"554 5.7.1 blocked " + NASTY + b" see zen.spamhaus.org\r\n")
    await t.read_line(stream, bytearray())


#: Peers whose text ends up in the report: greeting, EHLO, error messages, reasons.
PRINTED = [
    (escapes_everywhere, 25),
    (garbage_with_escapes, 25),
    (rejected_with_escapes, 25),
    (http_instead, 587),
    (megabyte_no_newline_ehlo, 2525),
    (tls_alert, 465),
]


def hostile_results() -> list[ProbeResult]:
    async def all_of_them() -> list[ProbeResult]:
        return [(await run_scenario(handler, role))[0] for handler, role in PRINTED]

    return trio.run(all_of_them, clock=trio.testing.MockClock(autojump_threshold=0))


def strip_sgr(text: str) -> str:
    """Remove the renderer's own colour codes (SGR, ``ESC [ ... m``), only those."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def check_outputs(outputs: dict[tuple[str, bool, bool], str]) -> None:
    for (fmt, verbose, color), text in outputs.items():
        shown = strip_sgr(text) if color else text
        assert_terminal_safe(shown, allow="\n\t")
        if color:
            # The only escapes a colour table may print are its own SGR colour codes.
            assert "\x1b]" not in text and "\x1b[2J" not in text, (fmt, verbose)


def test_renderers_show_hostile_text_escaped() -> None:
    results = hostile_results()
    assert [r.state for r in results] == [
        "open",
        "not-smtp",
        "rejected",
        "not-smtp",
        "open",
        "tls-error",
    ]
    outputs = render_all(hostile_report(results))
    check_outputs(outputs)
    # The escaped evidence is still there for the user to read (not silently dropped).
    verbose_table = outputs[("table", True, False)]
    assert "pwned" in verbose_table and "\\x1b" in verbose_table
    # Alone, each one is the example the reasons quote: the reasons are escaped too.
    for result in results:
        check_outputs(render_all(hostile_report([result])))


# --- property tests ----------------------------------------------------------------------


def drain(reader: ReplyReader) -> tuple[list[tuple[int, tuple[str, ...]]], bool]:
    """Every reply the reader can give now, and whether it ended in a protocol error."""
    replies = []
    while True:
        try:
            event = reader.next_reply()
        except SMTPProtocolError:
            return replies, True
        if event is NEED_DATA:
            return replies, False
        replies.append((event.code, event.lines))


SMALL = ReplyLimits(max_line=64, max_lines=8, max_bytes=256)
# Bytes that look like SMTP often enough to reach deep into the parser.
smtp_ish = st.lists(
    st.one_of(
        st.sampled_from(
            [b"220", b"250", b"554", b"-", b" ", b"\r\n", b"\n", b"\r", b"\x1b[", b"\xff"]
        ),
        st.binary(max_size=24),
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.one_of(smtp_ish, st.binary(max_size=600)), cuts=st.lists(st.integers(0, 600)))
def test_reply_reader_survives_any_bytes_in_any_pieces(data: bytes, cuts: list[int]) -> None:
    whole = ReplyReader(SMALL)
    if data:  # feed(b"") is the end of the stream, not an empty piece
        whole.feed(data)
    expected, whole_failed = drain(whole)

    pieces = ReplyReader(SMALL)
    replies: list[tuple[int, tuple[str, ...]]] = []
    failed = False
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for lo, hi in itertools.pairwise(bounds):
        pieces.feed(data[lo:hi])
        got, failed = drain(pieces)
        replies += got
        # Bounded: never more than a line's worth waits for its newline.
        assert failed or pieces.buffered <= SMALL.max_line or b"\n" in pieces.trailing_data
        if failed:
            break
    assert replies == expected[: len(replies)]
    assert failed == whole_failed
    if not failed:
        assert replies == expected
    for code, lines in replies:
        assert 200 <= code <= 559
        assert len(lines) <= SMALL.max_lines
        for line in lines:
            assert_terminal_safe(visible(line))


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(greeting=st.binary(max_size=200), ehlo=st.lists(st.binary(max_size=60), max_size=4))
def test_renderers_escape_any_bytes(greeting: bytes, ehlo: list[bytes]) -> None:
    pytest.importorskip("portprobe.render", reason="renderers not written yet")
    from portprobe.model import Reply
    from portprobe.protocol.smtp import decode_text

    text = decode_text(greeting)
    result = ProbeResult(
        spec=spec(2500),
        state="open",
        greeting=Reply(220, tuple(text.split("\n")) or ("",)),
        ehlo=tuple(decode_text(line) for line in ehlo),
        starttls="not-offered",
    )
    for (_fmt, _verbose, color), out in render_all(hostile_report([result])).items():
        assert_terminal_safe(strip_sgr(out) if color else out, allow="\n\t")


def test_assert_terminal_safe_catches_what_it_should() -> None:
    for bad in ("\x1b[2J", "a\x00b", "\x9b", "\u202e", "\x7f", "\u2028"):
        with pytest.raises(AssertionError):
            assert_terminal_safe(bad)
    assert_terminal_safe("220 mx.example ESMTP \\x1b]0;pwned\\x07 ok\n", allow="\n")


def test_cli_table_shows_hostile_greeting_escaped() -> None:
    """End to end: the CLI's own stdout and stderr (verbose table) carry no raw control."""
    import subprocess
    import sys

    from tests.hostile_servers import NASTY, RecordingSMTP, ThreadedPeer

    with ThreadedPeer(RecordingSMTP(pause=0.0, greeting=NASTY)) as peer:
        roles = [a for r in (25, 587, 2525) for a in ("--port-map", f"{r}={peer.port}")]
        args = ["--target", "127.0.0.1", "-v", "--ports", "25,587,2525", "--format", "table"]
        proc = subprocess.run(
            [sys.executable, "-m", "portprobe", *args, *roles],
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode not in (1, 2), proc.stderr
    assert b"pwned" in proc.stdout and b"\\x1b" in proc.stdout  # shown, escaped
    for stream in (proc.stdout, proc.stderr):
        text = stream.decode("utf-8")  # strict: the output is valid UTF-8
        assert_terminal_safe(text, allow="\n")
