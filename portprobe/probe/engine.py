"""One probe: TCP connect, greeting, EHLO, TLS, QUIT — every phase timed and recorded.

The order of a probe follows the RFCs it is polite to:
- RFC 5321 §3.1 / §4.3.1: the server speaks first. We send nothing before the final line
  of the greeting (``220-`` lines continue it): Postfix postscreen and Sendmail
  greet_pause drop clients that talk early, and delay the greeting by seconds to catch
  them, so the greeting wait is long while the connect wait is short.
- RFC 5321 §4.1.1.1: EHLO, and HELO when EHLO is refused (a 5xx). We record the reply.
- RFC 3207: STARTTLS when offered on 25/587/2525; after the handshake everything learned
  before is forgotten and EHLO is sent again (§4.2). RFC 8314 §3.3: on 465 TLS comes first.
- RFC 5321 §4.1.1.10: QUIT, and wait briefly for the 221.
Nothing else is ever sent: no MAIL, RCPT, DATA, AUTH or VRFY.

How a probe ended (``state``) is kept apart from what it saw: a failure at any phase still
returns the greeting, capabilities and certificate it got before. Only bugs raise.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import trio

from portprobe import defaults
from portprobe.model import (
    ErrorInfo,
    ProbeResult,
    ProbeSpec,
    Reply,
    StartTLS,
    State,
    Timings,
    TLSInfo,
)
from portprobe.probe.errors import (
    classify_connect_error,
    describe_io_error,
    describe_tls_error,
)
from portprobe.probe.pathwait import PathEvidence
from portprobe.probe.session import PeerClosed, SMTPSession
from portprobe.probe.tls import TLSContexts, make_contexts, tls_info
from portprobe.protocol.smtp import (
    SMTPProtocolError,
    ehlo_keywords,
    ehlo_name_problem,
    has_keyword,
    is_masked_greeting,
    is_stripped_starttls,
)

Connector = Callable[[ProbeSpec], Awaitable[trio.SocketStream]]


@dataclass(frozen=True)
class ProbeConfig:
    timeout: float = defaults.TIMEOUT  # all phases together (--timeout)
    connect_timeout: float = defaults.CONNECT_TIMEOUT  # the TCP handshake alone
    # The name sent in EHLO (--ehlo-name); None sends our address literal, which RFC 5321
    # §4.1.4 allows and which never needs a DNS lookup of our own name.
    ehlo_name: str | None = None
    # How long to wait for the 221 after QUIT: politeness, not evidence.
    quit_timeout: float = 1.0

    def __post_init__(self) -> None:
        for name in ("timeout", "connect_timeout", "quit_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number above 0, not {value!r}")
        if self.ehlo_name is not None and (problem := ehlo_name_problem(self.ehlo_name)):
            raise ValueError(f"EHLO name {self.ehlo_name!r} {problem}")


async def open_tcp(spec: ProbeSpec) -> trio.SocketStream:
    """The default connector: one TCP connection to exactly this address (no fallback)."""
    assert spec.address is not None
    family = socket.AF_INET6 if spec.family == "ipv6" else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((spec.address, spec.dial_port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


class _CertificateUnverified(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _Observation:
    """What one attempt saw so far; frozen into a ``ProbeResult`` at the end."""

    phase: str = "connect"
    state: State | None = None
    greeting: Reply | None = None
    ehlo: tuple[str, ...] | None = None
    ehlo_plain: tuple[str, ...] | None = None
    helo_fallback: bool = False
    starttls: StartTLS = "n/a"
    starttls_reply: Reply | None = None
    tls: TLSInfo | None = None
    anomalies: list[str] = field(default_factory=list)
    error: ErrorInfo | None = None
    times: dict[str, float] = field(default_factory=dict)
    quit_sent: bool = False
    ehlo_hello: str | None = None

    def fail(self, state: State | None, error: ErrorInfo) -> None:
        if state is not None:
            self.state = state
        if self.error is None:
            self.error = error

    def anomaly(self, code: str) -> None:
        if code not in self.anomalies:
            self.anomalies.append(code)

    def deadline_reached(self, mode: str, seconds: float) -> None:
        """The probe's hard deadline cancelled it: what that means depends on the phase."""
        if self.phase == "connect":
            self.fail("filtered", ErrorInfo("timeout", "no answer to the connection attempt"))
        elif self.phase == "tls" and mode == "implicit-tls" and self.greeting is None:
            self.fail("tls-error", ErrorInfo("timeout", "TLS handshake stalled"))
        elif self.phase == "greeting":
            self.fail(
                "no-banner",
                ErrorInfo("timeout", f"no complete greeting within {seconds:g} s"),
            )
        elif self.phase != "quit":
            if self.phase == "tls":  # a STARTTLS handshake that never finished
                self.anomaly("starttls-handshake-failed")
            self.fail(None, ErrorInfo("timeout", f"timed out during {self.phase}"))


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _ehlo_argument(config: ProbeConfig, stream: trio.SocketStream) -> str:
    if config.ehlo_name:
        return config.ehlo_name
    local = stream.socket.getsockname()[0]
    ip = ipaddress.ip_address(local.split("%", 1)[0])
    return f"[IPv6:{ip}]" if ip.version == 6 else f"[{ip}]"


async def probe(
    spec: ProbeSpec,
    config: ProbeConfig | None = None,
    *,
    tls: TLSContexts | None = None,
    evidence: PathEvidence | None = None,
    connector: Connector = open_tcp,
) -> ProbeResult:
    """Run one probe to completion within ``config.timeout``; never raises for the network."""
    config = config or ProbeConfig()
    tls = tls or make_contexts()
    started = trio.current_time()
    deadline = started + config.timeout
    if spec.address is None:
        return ProbeResult(
            spec=spec,
            state="dns-error",
            error=ErrorInfo("dns", f"{spec.host} did not resolve"),
            timings=Timings(total=0.0),
        )
    try:
        obs = await _attempt(spec, config, tls.verify, deadline, evidence, connector)
    except _CertificateUnverified as unverified:
        # Evidence, not a failure: talk once more without verification to see the cert.
        obs = await _attempt(spec, config, tls.no_verify, deadline, evidence, connector)
        if obs.tls is not None:
            obs.tls = replace(obs.tls, verified=False, verify_error=unverified.message)
    total = trio.current_time() - started
    t = obs.times
    return ProbeResult(
        spec=spec,
        state=obs.state or "error",
        greeting=obs.greeting,
        ehlo=obs.ehlo,
        ehlo_plain=obs.ehlo_plain,
        helo_fallback=obs.helo_fallback,
        starttls=obs.starttls,
        starttls_reply=obs.starttls_reply,
        tls=obs.tls,
        anomalies=tuple(obs.anomalies),
        error=obs.error,
        timings=Timings(
            connect=t.get("connect"),
            greeting=t.get("greeting"),
            ehlo=t.get("ehlo"),
            tls=t.get("tls"),
            total=_ms(total),
        ),
        quit_sent=obs.quit_sent,
        ehlo_hello=obs.ehlo_hello,
    )


async def _attempt(
    spec: ProbeSpec,
    config: ProbeConfig,
    context: ssl.SSLContext,
    deadline: float,
    evidence: PathEvidence | None,
    connector: Connector,
) -> _Observation:
    obs = _Observation()
    tcp: trio.SocketStream | None = None
    stream: trio.abc.Stream | None = None
    try:
        with trio.move_on_at(deadline) as hard:
            tcp = await _connect(spec, config, obs, deadline, evidence, connector)
            if tcp is None:
                return obs
            stream = tcp
            ehlo_name = _ehlo_argument(config, tcp)
            if spec.mode == "implicit-tls":
                obs.phase = "tls"
                stream = await _handshake(spec, tcp, context, obs)
                if stream is None:
                    return obs
            await _converse(spec, config, SMTPSession(stream), obs, context, ehlo_name)
        if hard.cancelled_caught:
            obs.deadline_reached(spec.mode, config.timeout)
    finally:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        elif tcp is not None:
            await trio.aclose_forcefully(tcp)
    return obs


async def _connect(
    spec: ProbeSpec,
    config: ProbeConfig,
    obs: _Observation,
    deadline: float,
    evidence: PathEvidence | None,
    connector: Connector,
) -> trio.SocketStream | None:
    assert spec.address is not None and spec.family is not None
    started = trio.current_time()
    hard = min(deadline, started + config.connect_timeout)
    evidence = evidence or PathEvidence()
    with evidence.watch(spec.family, spec.address, started, hard) as scope:
        try:
            tcp = await connector(spec)
        except OSError as exc:
            state, error = classify_connect_error(exc)
            obs.fail(state, error)
            obs.times["connect_failed"] = _ms(trio.current_time() - started)
            return None
    if scope.cancelled_caught:
        waited = trio.current_time() - started
        obs.fail(
            "filtered",
            ErrorInfo("timeout", f"no answer to the connection attempt within {waited:.1f} s"),
        )
        return None
    elapsed = trio.current_time() - started
    evidence.record_connect(spec.family, spec.address, elapsed)
    obs.times["connect"] = _ms(elapsed)
    return tcp


async def _handshake(
    spec: ProbeSpec, transport: trio.abc.Stream, context: ssl.SSLContext, obs: _Observation
) -> trio.SSLStream[trio.abc.Stream] | None:
    """TLS over ``transport`` with SNI = the host name; None (and obs updated) on failure."""
    started = trio.current_time()
    tls_stream = trio.SSLStream(transport, context, server_hostname=spec.host)
    try:
        await tls_stream.do_handshake()
    except (trio.BrokenResourceError, OSError) as exc:
        error, verify_error = describe_tls_error(exc)
        if verify_error is not None and context.verify_mode != ssl.CERT_NONE:
            raise _CertificateUnverified(verify_error) from exc
        if spec.mode == "implicit-tls" and obs.greeting is None:
            obs.fail("tls-error", error)
        else:
            obs.anomaly("starttls-handshake-failed")
            obs.fail(None, error)
        return None
    obs.times["tls"] = round(obs.times.get("tls", 0.0) + _ms(trio.current_time() - started), 3)
    obs.tls = tls_info(tls_stream, verified=context.verify_mode != ssl.CERT_NONE, verify_error=None)
    return tls_stream


async def _converse(
    spec: ProbeSpec,
    config: ProbeConfig,
    session: SMTPSession,
    obs: _Observation,
    context: ssl.SSLContext,
    ehlo_name: str,
) -> None:
    try:
        if not await _read_greeting(session, obs):
            return
        ehlo = await _ehlo(session, obs, ehlo_name)
        if ehlo is None:
            return await _quit(session, obs, config)
        if spec.mode == "starttls":
            if has_keyword(ehlo, "STARTTLS"):
                obs.starttls = "offered"
                if not await _starttls(spec, session, obs, context, ehlo_name):
                    return None
            elif is_stripped_starttls(ehlo):
                # The keyword was overwritten in transit (Cisco ESMTP inspection style).
                obs.starttls = "stripped"
                obs.anomaly("starttls-stripped")
            else:
                obs.starttls = "not-offered"
        await _quit(session, obs, config)
    except SMTPProtocolError as exc:
        if obs.phase == "greeting":
            obs.fail("not-smtp", ErrorInfo("protocol", str(exc)))
        else:
            obs.fail(None, ErrorInfo("protocol", f"during {obs.phase}: {exc}"))
    except PeerClosed as exc:
        if obs.phase == "greeting":
            obs.fail("no-banner", ErrorInfo("closed", f"{exc} before a complete greeting"))
        elif obs.phase != "quit":
            obs.fail(None, ErrorInfo("closed", f"{exc} during {obs.phase}"))
    except (trio.BrokenResourceError, OSError) as exc:
        error = describe_io_error(exc)
        if obs.phase == "greeting":
            obs.fail("no-banner", replace(error, message=f"{error.message} before a greeting"))
        elif obs.phase != "quit":
            obs.fail(None, replace(error, message=f"{error.message} during {obs.phase}"))
    return None


async def _read_greeting(session: SMTPSession, obs: _Observation) -> bool:
    """Wait for the whole greeting; True when it invites us to go on (2xx)."""
    obs.phase = "greeting"
    started = trio.current_time()
    greeting = await session.read_reply()
    obs.times["greeting"] = _ms(trio.current_time() - started)
    obs.greeting = greeting
    if is_masked_greeting(greeting):
        obs.anomaly("masked-greeting")
    if 200 <= greeting.code < 300:
        obs.state = "open"
        return True
    if greeting.code >= 400:
        # RFC 5321 §3.1: a 554 greeting means "no service here"; we still say goodbye.
        obs.state = "rejected"
        obs.phase = "quit"
        obs.quit_sent = True
        await session.stream.send_all(b"QUIT\r\n")
        return False
    obs.fail("not-smtp", ErrorInfo("protocol", f"a {greeting.code} reply is not a greeting"))
    return False


async def _ehlo(session: SMTPSession, obs: _Observation, name: str) -> tuple[str, ...] | None:
    obs.phase = "ehlo"
    started = trio.current_time()
    reply = await session.command("EHLO", name)
    if "ehlo" not in obs.times:
        obs.times["ehlo"] = _ms(trio.current_time() - started)
    if reply.code == 250:
        obs.ehlo_hello = reply.lines[0] if reply.lines else None
        obs.ehlo = ehlo_keywords(reply)
        return obs.ehlo
    if 500 <= reply.code < 600:
        # RFC 5321 §4.1.1.1: a server that does not know EHLO gets HELO.
        reply = await session.command("HELO", name)
        if reply.code == 250:
            obs.helo_fallback = True
            obs.anomaly("helo-fallback")
            obs.ehlo = ()
            return ()
    obs.fail(None, ErrorInfo("protocol", f"EHLO answered with {reply.code}"))
    return None


async def _starttls(
    spec: ProbeSpec,
    session: SMTPSession,
    obs: _Observation,
    context: ssl.SSLContext,
    ehlo_name: str,
) -> bool:
    """Upgrade, then EHLO again inside TLS; False when the connection is unusable after."""
    obs.phase = "starttls"
    started = trio.current_time()
    reply = await session.command("STARTTLS")
    obs.starttls_reply = reply
    if reply.code != 220:
        obs.anomaly("starttls-refused")
        return True
    obs.times["tls"] = _ms(trio.current_time() - started)
    obs.phase = "tls"
    plain = session.stream
    tls_stream = await _handshake(spec, plain, context, obs)
    if tls_stream is None:
        return False
    if session.switch_stream(tls_stream):
        obs.anomaly("starttls-trailing-data")
    obs.ehlo_plain = obs.ehlo
    obs.ehlo = None
    ehlo = await _ehlo(session, obs, ehlo_name)
    return ehlo is not None


async def _quit(session: SMTPSession, obs: _Observation, config: ProbeConfig) -> None:
    obs.phase = "quit"
    obs.quit_sent = True
    with trio.move_on_after(config.quit_timeout):
        await session.command("QUIT")
