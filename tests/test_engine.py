"""One probe against real servers on loopback: every recorded field, every state.

aiosmtpd (a real SMTP server, in a thread) with trustme certificates runs on real
loopback sockets and the real clock, with no timing assertions. The raw trio servers run
over in-memory streams through the connector seam, inside the test's own trio run, so
the tests that wait (never speaks, drips, pauses) use the mock clock, take no real time,
and cannot race bytes in flight. The connect phase's schedule is in test_syn_retry.py.
"""

from __future__ import annotations

import errno
import ssl
from pathlib import Path

import pytest
import trio
import trio.testing

from portprobe.model import ProbeSpec
from portprobe.probe import ProbeConfig, probe
from portprobe.probe.tls import make_contexts
from tests.servers import (
    HOST,
    Certs,
    Transcript,
    aiosmtpd_server,
    closed_port,
    make_certs,
    serve_memory,
    simple_smtp_dialogue,
    spec,
)

FAST = ProbeConfig(timeout=5.0, connect_timeout=2.0)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def run_probe(s: ProbeSpec, certs: Certs | None = None, config: ProbeConfig = FAST):
    tls = make_contexts(str(certs.ca_file) if certs else None)
    return trio.run(lambda: probe(s, config, tls=tls))


# --- real SMTP (aiosmtpd) -------------------------------------------------------------------


def test_plain_greeting_without_starttls() -> None:
    with aiosmtpd_server() as port:
        r = run_probe(spec(port, role=587))
    assert r.state == "open"
    assert r.greeting is not None and r.greeting.code == 220
    assert r.greeting.lines[0].startswith(HOST)
    assert r.ehlo is not None and "8BITMIME" in r.ehlo
    assert r.starttls == "not-offered"
    assert r.tls is None and r.error is None
    assert r.quit_sent
    t = r.timings
    assert t.connect is not None and t.greeting is not None and t.ehlo is not None
    assert t.tls is None and t.total is not None and t.total >= t.connect


def test_starttls_offered_and_verified(certs: Certs) -> None:
    with aiosmtpd_server(starttls=certs.server_context()) as port:
        r = run_probe(spec(port, role=25), certs)
    assert r.state == "open"
    assert r.starttls == "offered"
    assert r.ehlo_plain is not None and "STARTTLS" in r.ehlo_plain
    assert r.ehlo is not None and "STARTTLS" not in r.ehlo  # EHLO again inside TLS
    assert r.tls is not None
    assert r.tls.verified and r.tls.verify_error is None
    assert r.tls.version in ("TLSv1.2", "TLSv1.3") and r.tls.cipher
    assert r.tls.cert is not None and r.tls.cert.san[0] == HOST
    assert r.tls.cert.not_after is not None and r.tls.cert.not_after.endswith("Z")
    assert r.timings.tls is not None and r.anomalies == ()


def test_implicit_tls_on_465(certs: Certs) -> None:
    with aiosmtpd_server(implicit_tls=certs.server_context()) as port:
        r = run_probe(spec(port, role=465), certs)
    assert r.spec.mode == "implicit-tls"
    assert r.state == "open" and r.starttls == "n/a"
    assert r.greeting is not None and r.greeting.code == 220
    assert r.tls is not None and r.tls.verified
    assert r.ehlo is not None and r.quit_sent


def test_plain_server_on_465_is_a_tls_error(certs: Certs) -> None:
    # A plain SMTP server where implicit TLS is expected: the handshake meets a greeting.
    with aiosmtpd_server() as port:
        r = run_probe(spec(port, role=465), certs)
    assert r.state == "tls-error"
    assert r.error is not None and r.error.kind == "tls"
    assert r.greeting is None


@pytest.mark.parametrize(
    ("leaf", "message"),
    [("wrong_name", "Hostname mismatch"), ("expired", "certificate has expired")],
)
def test_bad_certificate_is_evidence_not_failure(certs: Certs, leaf: str, message: str) -> None:
    ctx = certs.server_context(getattr(certs, leaf))
    with aiosmtpd_server(starttls=ctx) as port:
        r = run_probe(spec(port, role=587), certs)
    assert r.state == "open" and r.starttls == "offered"
    assert r.tls is not None
    assert r.tls.verified is False
    assert r.tls.verify_error is not None and message in r.tls.verify_error
    # The certificate itself is still recorded (from the unverified second look).
    assert r.tls.cert is not None
    if leaf == "wrong_name":
        assert r.tls.cert.san == ("other.test.example",)
    else:
        assert r.tls.cert.not_after is not None and r.tls.cert.not_after < "2100"
    assert r.ehlo is not None


def test_unknown_ca_is_not_verified(certs: Certs) -> None:
    with aiosmtpd_server(implicit_tls=certs.server_context()) as port:
        r = run_probe(spec(port, role=465), certs=None)
    assert r.state == "open"
    assert r.tls is not None and not r.tls.verified
    assert r.tls.verify_error is not None and "issuer" in r.tls.verify_error


def test_closed_port_is_refused() -> None:
    r = run_probe(spec(closed_port()))
    assert r.state == "refused"
    assert r.error is not None and r.error.errno == "ECONNREFUSED"
    assert r.timings.connect is None and r.greeting is None


def test_ipv6_loopback_when_available() -> None:
    try:
        with aiosmtpd_server(address="::1") as port:
            r = run_probe(spec(port, address="::1", role=587))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    assert r.spec.family == "ipv6" and r.state == "open"


# --- raw servers over in-memory streams, under the mock clock --------------------------------


async def raw_probe(handler, role: int = 25, config: ProbeConfig = FAST):
    async with trio.open_nursery() as nursery:
        connector, transcript = await serve_memory(nursery, handler)
        result = await probe(spec(1, role=role), config, tls=make_contexts(), connector=connector)
        nursery.cancel_scope.cancel()
    return result, transcript


async def test_multiline_greeting_with_pause_waits_for_the_last_line(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sent_final_at: list[float] = []

    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        await stream.send_all(b"220-slow.test ESMTP postscreen-style\r\n")
        await trio.sleep(3.0)  # greet_pause: clients that talk now are dropped
        sent_final_at.append(trio.current_time())
        await simple_smtp_dialogue(stream, t, greeting=b"220 slow.test ready\r\n")

    r, transcript = await raw_probe(handler)
    assert r.state == "open"
    assert r.greeting is not None and r.greeting.lines == (
        "slow.test ESMTP postscreen-style",
        "slow.test ready",
    )
    assert transcript.chunks, "the client said nothing at all"
    first_sent = transcript.chunks[0][0]
    assert first_sent >= sent_final_at[0], "client spoke before the final greeting line"
    assert transcript.data.startswith(b"EHLO [127.0.0.1]\r\n")
    assert transcript.data.endswith(b"QUIT\r\n")
    assert r.timings.greeting is not None and r.timings.greeting >= 3000


async def test_554_greeting_is_rejected_and_we_say_goodbye(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        await stream.send_all(
            b"554 5.7.1 Service unavailable; client [127.0.0.1] blocked using zen.spamhaus.org\r\n"
        )
        await t.read_line(stream, bytearray())

    r, transcript = await raw_probe(handler)
    assert r.state == "rejected"
    assert r.greeting is not None and r.greeting.code == 554
    assert r.greeting.enhanced == "5.7.1" and "spamhaus" in r.greeting.text
    assert r.ehlo is None and r.quit_sent
    assert transcript.data == b"QUIT\r\n"


async def test_silent_peer_is_no_banner_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        await trio.sleep_forever()

    start = trio.current_time()
    r, transcript = await raw_probe(handler, config=ProbeConfig(timeout=30.0))
    assert r.state == "no-banner"
    assert r.error is not None and r.error.kind == "timeout"
    assert trio.current_time() - start == pytest.approx(30.0, abs=0.5)
    assert transcript.data == b""  # never spoke first


async def test_http_peer_is_not_smtp(autojump_clock: trio.testing.MockClock) -> None:
    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await trio.sleep_forever()

    r, _ = await raw_probe(handler)
    assert r.state == "not-smtp"
    assert r.error is not None and "HTTP" in r.error.message


@pytest.mark.parametrize(("timeout", "state"), [(30.0, "open"), (5.0, "no-banner")])
async def test_dripped_greeting(
    autojump_clock: trio.testing.MockClock, timeout: float, state: str
) -> None:
    greeting = b"220 drip.test ESMTP\r\n"  # 21 bytes, one a second

    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        for byte in greeting:
            await stream.send_all(bytes([byte]))
            await trio.sleep(1.0)
        await simple_smtp_dialogue(stream, t, greeting=b"")

    r, _ = await raw_probe(handler, config=ProbeConfig(timeout=timeout))
    assert r.state == state


async def test_megabyte_without_newline_is_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        for _ in range(16):
            await stream.send_all(b"220" + b"A" * 65533)
        await trio.sleep_forever()

    r, _ = await raw_probe(handler)
    assert r.state == "not-smtp"
    assert r.error is not None and "longer than" in r.error.message


async def test_close_right_after_accept(autojump_clock: trio.testing.MockClock) -> None:
    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        return

    r, _ = await raw_probe(handler)
    assert r.state == "no-banner"
    assert r.error is not None and r.error.kind == "closed"


async def test_helo_fallback_when_ehlo_refused(autojump_clock: trio.testing.MockClock) -> None:
    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        await stream.send_all(b"220 old.test SMTP\r\n")
        buf = bytearray()
        while (line := await t.read_line(stream, buf)) is not None:
            if line.startswith(b"EHLO"):
                await stream.send_all(b"502 5.5.1 EHLO not implemented\r\n")
            elif line.startswith(b"HELO"):
                await stream.send_all(b"250 old.test\r\n")
            elif line.startswith(b"QUIT"):
                await stream.send_all(b"221 bye\r\n")
                return

    r, transcript = await raw_probe(handler, role=587)
    assert r.state == "open" and r.helo_fallback
    assert r.ehlo == () and "helo-fallback" in r.anomalies
    assert b"HELO [127.0.0.1]\r\n" in transcript.data


async def test_stripped_starttls_and_masked_greeting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(stream: trio.SocketStream, t: Transcript) -> None:
        await stream.send_all(b"220 ******************************\r\n")
        buf = bytearray()
        while (line := await t.read_line(stream, buf)) is not None:
            if line.startswith(b"EHLO"):
                await stream.send_all(b"250-mx.test\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n")
            elif line.startswith(b"QUIT"):
                await stream.send_all(b"221 bye\r\n")
                return

    r, transcript = await raw_probe(handler)
    assert r.state == "open"
    assert r.starttls == "stripped"
    assert set(r.anomalies) >= {"masked-greeting", "starttls-stripped"}
    assert b"STARTTLS" not in transcript.data


async def test_starttls_refusal_is_kept_in_the_json(autojump_clock: trio.testing.MockClock) -> None:
    async def handler(stream: trio.abc.Stream, t: Transcript) -> None:
        await stream.send_all(b"220 tls.test ESMTP\r\n")
        buf = bytearray()
        while (line := await t.read_line(stream, buf)) is not None:
            if line.startswith(b"EHLO"):
                await stream.send_all(b"250-tls.test\r\n250 STARTTLS\r\n")
            elif line.startswith(b"STARTTLS"):
                await stream.send_all(b"454 4.7.0 TLS not available due to local problem\r\n")
            elif line.startswith(b"QUIT"):
                await stream.send_all(b"221 bye\r\n")
                return

    r, transcript = await raw_probe(handler, role=587)
    assert r.state == "open" and "starttls-refused" in r.anomalies
    d = r.to_dict()
    assert d["starttls_reply"] == {
        "code": 454,
        "text": "4.7.0 TLS not available due to local problem",
        "enhanced": "4.7.0",
    }
    # An ordinary probe: one SYN, nothing decided early, QUIT said.
    assert d["syn_attempts"] == 1 and d["decided_early"] is False and d["quit_sent"] is True
    assert transcript.data.endswith(b"STARTTLS\r\nQUIT\r\n")


# --- the connect phase, through the connector seam -------------------------------------------


def failing_connector(number: int):
    async def connect(s: ProbeSpec, _options: object = None) -> trio.SocketStream:
        raise OSError(number, "simulated")

    return connect


@pytest.mark.parametrize(
    ("number", "state"),
    [
        (errno.EHOSTUNREACH, "unreachable"),
        (errno.ENETUNREACH, "unreachable"),
        (errno.EACCES, "unreachable"),
        (errno.EPERM, "unreachable"),
        (errno.ECONNREFUSED, "refused"),
        (errno.EMFILE, "error"),
    ],
)
async def test_connect_errors_map_to_states(number: int, state: str) -> None:
    r = await probe(spec(1), FAST, tls=make_contexts(), connector=failing_connector(number))
    assert r.state == state
    assert r.error is not None and r.error.errno == errno.errorcode[number]


def test_unresolved_spec_is_a_dns_error_without_network() -> None:
    s = ProbeSpec(target="nx.test", host="nx.test", address=None, family=None, port=25)
    r = trio.run(lambda: probe(s, FAST, tls=make_contexts()))
    assert r.state == "dns-error" and r.error is not None and r.error.kind == "dns"


def test_ca_file_is_loaded(certs: Certs, tmp_path: Path) -> None:
    contexts = make_contexts(str(certs.ca_file))
    assert contexts.verify.verify_mode == ssl.CERT_REQUIRED
    assert contexts.no_verify.verify_mode == ssl.CERT_NONE
