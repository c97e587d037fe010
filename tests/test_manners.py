"""Manners, proved by a server that records every byte portprobe sends.

Spec "Safety and manners": portprobe sends only EHLO (HELO as fallback), STARTTLS and
QUIT — never MAIL, RCPT, DATA, AUTH or VRFY, even when the server advertises AUTH and
VRFY and answers everything with 250; it sends nothing before the final line of a
multi-line greeting, however long the pause before it; and it says QUIT whenever the
session got as far as a greeting (inside TLS, after STARTTLS, too).

The recording server is a raw trio server over in-memory streams (the engine's
connector seam), in the test's trio run under the mock clock, so a 25 s greet_pause costs
no time and no clock jump races bytes in flight; one test runs the CLI in a subprocess
against a thread-based recording server (tests/hostile_servers.py) to show the same
holds end to end.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
import trio.testing
import trustme

from portprobe.model import ProbeResult
from portprobe.probe import ProbeConfig, probe
from portprobe.probe.connect import Connector
from portprobe.probe.tls import make_contexts
from tests.hostile_servers import RecordingSMTP, ThreadedPeer
from tests.servers import Certs, make_certs, serve_memory, spec

ALLOWED = {"EHLO", "HELO", "STARTTLS", "QUIT"}
FORBIDDEN = {"MAIL", "RCPT", "DATA", "AUTH", "VRFY", "EXPN", "BDAT", "ETRN", "NOOP", "RSET"}
CONFIG = ProbeConfig(timeout=30.0, connect_timeout=2.0)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@dataclass
class Recording:
    """Every command line received, the layer it came in, and when (trio time)."""

    lines: list[tuple[float, str, bytes]] = field(default_factory=list)
    final_greeting_sent_at: float | None = None
    first_byte_at: float | None = None

    @property
    def verbs(self) -> list[tuple[str, str]]:
        return [
            (layer, line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace"))
            for _, layer, line in self.lines
        ]


@dataclass(frozen=True)
class Server:
    """How the recording server behaves; every answer is an invitation to misbehave."""

    greeting: tuple[bytes, ...] = (b"220-rec.test ESMTP", b"220 rec.test ready")
    pause: float = 6.0  # before the final greeting line: postscreen's greet_pause
    ehlo: bytes | None = None  # None: a generous 250 offering AUTH, VRFY, STARTTLS if TLS
    starttls: bytes = b"220 2.0.0 Ready to start TLS"
    tls: bool = False  # STARTTLS with a real certificate
    implicit_tls: bool = False


async def recording_server(
    nursery: trio.Nursery, server: Server, certs: Certs
) -> tuple[Connector, Recording]:
    recording = Recording()
    context = certs.server_context()

    async def handler(stream: trio.abc.Stream, _t: object) -> None:
        layer = "plain"
        conn: trio.abc.Stream = stream
        if server.implicit_tls:
            conn = trio.SSLStream(stream, context, server_side=True)
            await conn.do_handshake()
            layer = "tls"
        for line in server.greeting[:-1]:
            await conn.send_all(line + b"\r\n")
        await trio.sleep(server.pause)
        recording.final_greeting_sent_at = trio.current_time()
        await conn.send_all(server.greeting[-1] + b"\r\n")
        buf = b""
        while True:
            while b"\n" not in buf:
                data = await conn.receive_some(4096)
                if not data:
                    return
                if recording.first_byte_at is None:
                    recording.first_byte_at = trio.current_time()
                buf += data
            line, _, buf = buf.partition(b"\n")
            recording.lines.append((trio.current_time(), layer, line + b"\n"))
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                if server.ehlo is not None:
                    await conn.send_all(server.ehlo + b"\r\n")
                    continue
                caps = b"250-rec.test\r\n250-AUTH PLAIN LOGIN\r\n250-VRFY\r\n250-PIPELINING\r\n"
                if server.tls and layer == "plain":
                    caps += b"250-STARTTLS\r\n"
                await conn.send_all(caps + b"250 SMTPUTF8\r\n")
            elif verb == b"STARTTLS" and layer == "plain":
                await conn.send_all(server.starttls + b"\r\n")
                if server.starttls.startswith(b"220"):
                    conn = trio.SSLStream(stream, context, server_side=True)
                    await conn.do_handshake()
                    layer = "tls"
            elif verb == b"QUIT":
                await conn.send_all(b"221 2.0.0 Bye\r\n")
                return
            else:
                await conn.send_all(b"250 2.0.0 OK\r\n")

    connector, _ = await serve_memory(nursery, handler)
    return connector, recording


async def record(server: Server, certs: Certs, role: int) -> tuple[ProbeResult, Recording]:
    async with trio.open_nursery() as nursery:
        connector, recording = await recording_server(nursery, server, certs)
        result = await probe(
            spec(1, role=role),
            CONFIG,
            tls=make_contexts(str(certs.ca_file)),
            connector=connector,
        )
        nursery.cancel_scope.cancel()
    return result, recording


CASES = [
    # (id, server, role, expected (layer, verb) sequence, expected state)
    ("plain-587", Server(), 587, [("plain", "EHLO"), ("plain", "QUIT")], "open"),
    (
        "starttls-25",
        Server(tls=True),
        25,
        [("plain", "EHLO"), ("plain", "STARTTLS"), ("tls", "EHLO"), ("tls", "QUIT")],
        "open",
    ),
    (
        "implicit-tls-465",
        Server(implicit_tls=True),
        465,
        [("tls", "EHLO"), ("tls", "QUIT")],
        "open",
    ),
    (
        "starttls-refused-2525",
        Server(tls=True, starttls=b"454 4.7.0 TLS not available"),
        2525,
        [("plain", "EHLO"), ("plain", "STARTTLS"), ("plain", "QUIT")],
        "open",
    ),
    (
        "ehlo-refused-helo",
        Server(ehlo=b"502 5.5.2 EHLO not understood"),
        25,
        [("plain", "EHLO"), ("plain", "HELO"), ("plain", "QUIT")],
        "open",
    ),
    (
        "554-greeting",
        Server(greeting=(b"554-rec.test no service", b"554 5.7.1 you are listed")),
        25,
        [("plain", "QUIT")],
        "rejected",
    ),
    (
        "421-greeting-long-pause",
        Server(greeting=(b"421-rec.test busy", b"421 4.3.2 try later"), pause=25.0),
        587,
        [("plain", "QUIT")],
        "rejected",
    ),
]


@pytest.mark.parametrize(
    ("server", "role", "expected", "state"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_only_allowed_commands_after_the_whole_greeting_ending_with_quit(
    autojump_clock: trio.testing.MockClock,
    certs: Certs,
    server: Server,
    role: int,
    expected: list[tuple[str, str]],
    state: str,
) -> None:
    result, recording = await record(server, certs, role)
    assert result.state == state, result.error
    verbs = {verb for _, verb in recording.verbs}
    assert verbs <= ALLOWED and not verbs & FORBIDDEN, recording.lines
    assert recording.verbs == expected
    # Nothing before the final greeting line, however long the pause.
    assert recording.first_byte_at is not None and recording.final_greeting_sent_at is not None
    assert recording.first_byte_at >= recording.final_greeting_sent_at
    assert result.quit_sent
    # Every line is a whole command line in CRLF, ASCII only.
    for _, _, line in recording.lines:
        assert line.endswith(b"\r\n") and line.isascii()


async def test_tls_session_is_verified_and_ended_inside_tls(
    autojump_clock: trio.testing.MockClock, certs: Certs
) -> None:
    result, recording = await record(Server(tls=True), certs, 25)
    assert result.tls is not None and result.tls.verified
    # The EHLO after STARTTLS and the QUIT were read by the TLS layer of the server.
    assert recording.verbs[-2:] == [("tls", "EHLO"), ("tls", "QUIT")]


async def test_ehlo_name_is_the_only_argument_sent(
    autojump_clock: trio.testing.MockClock, certs: Certs
) -> None:
    _result, recording = await record(Server(), certs, 587)
    ehlo = recording.lines[0][2]
    assert ehlo == b"EHLO [127.0.0.1]\r\n"
    assert recording.lines[-1][2] == b"QUIT\r\n"


# --- the CLI, end to end --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ip_certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """A CA and a server certificate for 127.0.0.1 (what the CLI checks for an IP target)."""
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("ipca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ca_file, ctx


def test_cli_session_manners_against_a_recording_server(
    ip_certs: tuple[Path, ssl.SSLContext],
) -> None:
    ca_file, context = ip_certs
    with (
        ThreadedPeer(RecordingSMTP(tls=context)) as starttls_peer,
        ThreadedPeer(RecordingSMTP(implicit_tls=context)) as tls_peer,
    ):
        args = ["--target", "127.0.0.1", "--ca-file", str(ca_file), "--json", "--timeout", "8"]
        for role, peer in ((25, starttls_peer), (587, starttls_peer), (2525, starttls_peer)):
            args += ["--port-map", f"{role}={peer.port}"]
        args += ["--port-map", f"465={tls_peer.port}"]
        proc = subprocess.run(
            [sys.executable, "-m", "portprobe", *args],
            capture_output=True,
            timeout=60,
            check=False,
        )
        sessions = starttls_peer.sessions + tls_peer.sessions
    assert proc.returncode not in (1, 2), proc.stderr
    report = json.loads(proc.stdout)
    assert {p["state"] for p in report["probes"]} == {"open"}
    assert all(p["tls"]["verified"] for p in report["probes"])
    assert len(sessions) == 4  # one connection per role: no retry, no extra look
    for session in sessions:
        assert not session.spoke_early
        assert set(session.verbs) <= ALLOWED, session.lines
        assert session.verbs[-1] == "QUIT" and session.closed_cleanly
        assert session.lines[-1][0] == "tls"  # QUIT inside TLS on every role
