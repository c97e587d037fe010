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

Shape: one conversation is an ``_Attempt`` whose phases are methods; each sets
``obs.phase`` first, and whatever the network raises ends in the one ``except`` of
``_Attempt.run``, which asks ``errors.classify`` what it means at that phase. The connect
phase is ``PathEvidence.race`` (at most two SYNs, see pathwait.py). A certificate that
does not verify is not an exception: the attempt returns an ``_Unverified`` marker and
``probe`` looks a second time without verification, to record the certificate.
"""

from __future__ import annotations

import ipaddress
import math
import ssl
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
from portprobe.probe.connect import DEFAULT_OPTIONS, Connector, SocketOptions, open_tcp
from portprobe.probe.errors import (
    EXPECTED,
    Deadline,
    Failure,
    Phase,
    classify,
    describe_tls_error,
)
from portprobe.probe.pathwait import PathEvidence, SynRace
from portprobe.probe.session import SMTPSession
from portprobe.probe.tls import TLSContexts, make_contexts, tls_info
from portprobe.protocol.smtp import (
    ehlo_keywords,
    ehlo_name_problem,
    has_keyword,
    is_masked_greeting,
    is_stripped_starttls,
)


@dataclass(frozen=True)
class ProbeConfig:
    timeout: float = defaults.TIMEOUT  # all phases together (--timeout)
    connect_timeout: float = defaults.CONNECT_TIMEOUT  # the TCP handshake alone
    # The name sent in EHLO (--ehlo-name); None sends our address literal, which RFC 5321
    # §4.1.4 allows and which never needs a DNS lookup of our own name.
    ehlo_name: str | None = None
    # How long to wait for the 221 after QUIT: politeness, not evidence.
    quit_timeout: float = 1.0
    # Send a redundant SYN and call a silent port filtered early, from the round trips
    # measured in this run (probe/pathwait.py). False: one SYN, wait for connect_timeout.
    redundant_syn: bool = True
    # What the connector sets before the SYN (probe/connect.py): ICMP errors queued.
    socket_options: SocketOptions = DEFAULT_OPTIONS

    def __post_init__(self) -> None:
        for name in ("timeout", "connect_timeout", "quit_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number above 0, not {value!r}")
        if self.ehlo_name is not None and (problem := ehlo_name_problem(self.ehlo_name)):
            raise ValueError(f"EHLO name {self.ehlo_name!r} {problem}")


@dataclass(frozen=True)
class _Unverified:
    """The marker an attempt returns when the certificate did not verify: not a failure,
    so the engine looks once more without verification to record the certificate."""

    message: str


@dataclass
class _Observation:
    """What one attempt saw so far; ``freeze`` turns it into a ``ProbeResult``."""

    phase: Phase = "connect"
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
    timings: Timings = field(default_factory=Timings)
    quit_sent: bool = False
    syn_attempts: int | None = None
    decided_early: bool = False
    ehlo_hello: str | None = None

    def failed(self, failure: Failure) -> None:
        if failure.state is not None:
            self.state = failure.state
        if self.error is None:
            self.error = failure.error
        if failure.anomaly is not None:
            self.anomaly(failure.anomaly)

    def anomaly(self, code: str) -> None:
        if code not in self.anomalies:
            self.anomalies.append(code)

    def timed(self, **phases: float) -> None:
        self.timings = replace(self.timings, **{k: _ms(v) for k, v in phases.items()})

    def freeze(self, spec: ProbeSpec, total: float) -> ProbeResult:
        return ProbeResult(
            spec=spec,
            state=self.state or "error",
            greeting=self.greeting,
            ehlo=self.ehlo,
            ehlo_plain=self.ehlo_plain,
            helo_fallback=self.helo_fallback,
            starttls=self.starttls,
            starttls_reply=self.starttls_reply,
            tls=self.tls,
            anomalies=tuple(self.anomalies),
            error=self.error,
            timings=replace(self.timings, total=_ms(total)),
            quit_sent=self.quit_sent,
            syn_attempts=self.syn_attempts,
            decided_early=self.decided_early,
            ehlo_hello=self.ehlo_hello,
        )


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _address_literal(stream: trio.abc.Stream) -> str:
    if isinstance(stream, trio.SocketStream):
        local = str(stream.socket.getsockname()[0])
    else:
        local = getattr(stream, "local_address")  # noqa: B009 - the Connector contract
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
    evidence = evidence or PathEvidence()
    started = trio.current_time()
    deadline = started + config.timeout
    if spec.address is None:
        return ProbeResult(
            spec=spec,
            state="dns-error",
            error=ErrorInfo("dns", f"{spec.host} did not resolve"),
            timings=Timings(total=0.0),
        )
    outcome = await _Attempt(spec, config, tls.verify, deadline, evidence, connector).run()
    if isinstance(outcome, _Unverified):
        # Evidence, not a failure: talk once more without verification to see the cert.
        retry = _Attempt(spec, config, tls.no_verify, deadline, evidence, connector)
        obs = await retry.run()
        assert isinstance(obs, _Observation)  # CERT_NONE cannot fail verification
        if obs.tls is not None:
            obs.tls = replace(obs.tls, verified=False, verify_error=outcome.message)
    else:
        obs = outcome
    return obs.freeze(spec, trio.current_time() - started)


class _Attempt:
    """One conversation with one host: connect, (TLS), greeting, EHLO, STARTTLS, QUIT.

    Each phase is a method that sets ``obs.phase`` first; whatever the network raises
    anywhere ends up in the one ``except`` of ``run``, which asks ``classify`` what it
    means at that phase.
    """

    def __init__(
        self,
        spec: ProbeSpec,
        config: ProbeConfig,
        context: ssl.SSLContext,
        deadline: float,
        evidence: PathEvidence,
        connector: Connector,
    ) -> None:
        assert spec.address is not None and spec.family is not None
        self.spec = spec
        self.family = spec.family
        self.config = config
        self.context = context
        self.deadline = deadline
        self.evidence = evidence
        self.connector = connector
        self.obs = _Observation()
        self.syn: SynRace[trio.abc.Stream] = SynRace()
        self.stream: trio.abc.Stream | None = None  # the outermost layer (TLS over TCP)

    async def run(self) -> _Observation | _Unverified:
        obs = self.obs
        try:
            with trio.move_on_at(self.deadline) as hard:
                unverified = await self._phases()
                if unverified is not None:
                    return unverified
            if hard.cancelled_caught:
                obs.failed(classify(Deadline(self.config.timeout), phase=obs.phase))
        except EXPECTED as exc:
            obs.failed(classify(exc, phase=obs.phase))
        finally:
            obs.syn_attempts = self.syn.attempts or None
            obs.decided_early = self.syn.decided_early
            for resource in (self.stream, self.syn.stream):
                if resource is not None:
                    await trio.aclose_forcefully(resource)
        return obs

    async def _phases(self) -> _Unverified | None:
        tcp = await self._connect()
        if tcp is None:
            return None
        self.stream = tcp
        ehlo_name = self.config.ehlo_name or _address_literal(tcp)
        if self.spec.mode == "implicit-tls":
            self.obs.phase = "tls"
            tls_stream = await self._handshake(tcp)
            if isinstance(tls_stream, _Unverified):
                return tls_stream
            self.stream = tls_stream
        session = SMTPSession(self.stream)
        if not await self._read_greeting(session):
            return None
        ehlo = await self._ehlo(session, ehlo_name)
        if ehlo is not None and self.spec.mode == "starttls":
            if has_keyword(ehlo, "STARTTLS"):
                self.obs.starttls = "offered"
                upgraded = await self._starttls(session, ehlo_name)
                if isinstance(upgraded, _Unverified):
                    return upgraded
                if not upgraded:
                    return None  # unusable after the upgrade: no QUIT into a broken stream
            elif is_stripped_starttls(ehlo):
                # The keyword was overwritten in transit (Cisco ESMTP inspection style).
                self.obs.starttls = "stripped"
                self.obs.anomaly("starttls-stripped")
            else:
                self.obs.starttls = "not-offered"
        await self._quit(session)
        return None

    async def _connect(self) -> trio.abc.Stream | None:
        """TCP with at most two SYN attempts (see pathwait); None when nothing answered."""
        started = trio.current_time()
        hard = min(self.deadline, started + self.config.connect_timeout)
        syn = self.syn
        # Without the schedule, a PathEvidence of our own knows no round trip: one SYN.
        evidence = self.evidence if self.config.redundant_syn else PathEvidence()
        await evidence.race(
            syn,
            lambda: self.connector(self.spec, self.config.socket_options),
            trio.aclose_forcefully,
            family=self.family,
            hard_deadline=hard,
            port=self.spec.dial_port,
            negative=self.spec.negative,
        )
        if syn.error is not None:
            raise syn.error
        if syn.stream is None:
            self.obs.failed(classify(Deadline(syn.waited), phase="connect"))
            return None
        self.obs.timed(connect=syn.waited)
        stream, syn.stream = syn.stream, None
        return stream

    async def _handshake(
        self, transport: trio.abc.Stream
    ) -> trio.SSLStream[trio.abc.Stream] | _Unverified:
        """TLS over ``transport`` with SNI = the host name (RFC 6066 §3)."""
        started = trio.current_time()
        tls_stream = trio.SSLStream(transport, self.context, server_hostname=self.spec.host)
        try:
            await tls_stream.do_handshake()
        except (trio.BrokenResourceError, OSError) as exc:
            _, verify_error = describe_tls_error(exc)
            if verify_error is not None and self.context.verify_mode != ssl.CERT_NONE:
                return _Unverified(verify_error)
            raise
        spent = trio.current_time() - started
        self.obs.timed(tls=(self.obs.timings.tls or 0.0) / 1000.0 + spent)
        verified = self.context.verify_mode != ssl.CERT_NONE
        self.obs.tls = tls_info(tls_stream, verified=verified, verify_error=None)
        return tls_stream

    async def _read_greeting(self, session: SMTPSession) -> bool:
        """Wait for the whole greeting; True when it invites us to go on (2xx)."""
        obs = self.obs
        obs.phase = "greeting"
        started = trio.current_time()
        greeting = await session.read_reply()
        obs.timed(greeting=trio.current_time() - started)
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
            await session.send("QUIT")
            return False
        obs.failed(
            Failure("not-smtp", ErrorInfo("protocol", f"a {greeting.code} reply is not a greeting"))
        )
        return False

    async def _ehlo(self, session: SMTPSession, name: str) -> tuple[str, ...] | None:
        obs = self.obs
        obs.phase = "ehlo"
        started = trio.current_time()
        reply = await session.command("EHLO", name)
        if obs.timings.ehlo is None:
            obs.timed(ehlo=trio.current_time() - started)
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
        obs.failed(Failure(None, ErrorInfo("protocol", f"EHLO answered with {reply.code}")))
        return None

    async def _starttls(self, session: SMTPSession, ehlo_name: str) -> bool | _Unverified:
        """Upgrade, then EHLO again inside TLS (RFC 3207 §4.2).

        True: go on to QUIT (upgraded, or refused with the connection still usable);
        False: the connection is unusable; or the unverified-certificate marker.
        """
        obs = self.obs
        obs.phase = "starttls"
        started = trio.current_time()
        reply = await session.command("STARTTLS")
        obs.starttls_reply = reply
        if reply.code != 220:
            obs.anomaly("starttls-refused")
            return True
        obs.timed(tls=trio.current_time() - started)
        obs.phase = "tls-upgrade"
        tls_stream = await self._handshake(session.stream)
        if isinstance(tls_stream, _Unverified):
            return tls_stream
        self.stream = tls_stream
        if session.switch_stream(tls_stream):
            obs.anomaly("starttls-trailing-data")
        obs.ehlo_plain = obs.ehlo
        obs.ehlo = None
        return await self._ehlo(session, ehlo_name) is not None

    async def _quit(self, session: SMTPSession) -> None:
        obs = self.obs
        obs.phase = "quit"
        obs.quit_sent = True
        with trio.move_on_after(self.config.quit_timeout):
            await session.command("QUIT")
