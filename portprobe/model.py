"""Result types shared by every layer: what was planned, what each probe saw.

Pure data: no trio, socket, ssl, dns or typer here (tests/test_layers.py holds that line).
Every type is a frozen dataclass with one ``to_dict`` path to JSON; a step never reached
is ``None`` (JSON ``null``) so the report's shape is fixed for ``jq``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from portprobe.vocab import DnsOutcome, Family, IcmpMeaning

Mode = Literal["starttls", "implicit-tls", "plain"]
StartTLS = Literal["offered", "not-offered", "stripped", "n/a"]

#: The probe states of the spec.
State = Literal[
    "open",
    "rejected",
    "no-banner",
    "not-smtp",
    "tls-error",
    "refused",
    "filtered",
    "unreachable",
    "dns-error",
    "error",
]


def mode_for_port(port: int) -> Mode:
    """Implicit TLS on 465 (RFC 8314 §3.3); plain + STARTTLS (RFC 3207) elsewhere."""
    return "implicit-tls" if port == 465 else "starttls"


@dataclass(frozen=True)
class Expectation:
    """What a genuine answer from a catalog host looks like (all optional)."""

    greeting_pattern: str | None = None  # regex matched against the greeting text
    starttls: bool | None = None  # True: documented to offer STARTTLS
    cert_name: str | None = None  # a name the certificate must cover (wildcards allowed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "greeting_pattern": self.greeting_pattern,
            "starttls": self.starttls,
            "cert_name": self.cert_name,
        }


#: (family, ICMP type, code) → meaning. ICMP (RFC 792, RFC 1812 §5.2.7.1): type 3
#: destination unreachable, type 11 time exceeded. ICMPv6 (RFC 4443 §3.1, §3.3): type 1
#: destination unreachable (code 5 "source address failed ingress/egress policy" and 6
#: "reject route to destination" are policy, so prohibited), type 3 time exceeded.
_ICMP_MEANINGS: dict[tuple[str, int, int | None], IcmpMeaning] = {
    ("ipv4", 3, 0): "net-unreachable",
    ("ipv4", 3, 1): "host-unreachable",
    ("ipv4", 3, 3): "port-unreachable",
    ("ipv4", 3, 9): "net-prohibited",
    ("ipv4", 3, 10): "host-prohibited",
    ("ipv4", 3, 13): "admin-prohibited",
    ("ipv4", 11, None): "time-exceeded",
    ("ipv6", 1, 0): "net-unreachable",
    ("ipv6", 1, 1): "admin-prohibited",
    ("ipv6", 1, 3): "host-unreachable",
    ("ipv6", 1, 4): "port-unreachable",
    ("ipv6", 1, 5): "admin-prohibited",
    ("ipv6", 1, 6): "admin-prohibited",
    ("ipv6", 3, None): "time-exceeded",
}


@dataclass(frozen=True)
class IcmpReport:
    """An ICMP error that ended a connect, as the kernel queued it (Linux ≥ 5.8).

    ``type``/``code`` are ICMP's (RFC 792) or ICMPv6's (RFC 4443) numbers, for ``family``;
    ``sender`` is the address of whoever sent it (a router, a firewall, this machine);
    ``errno`` the symbolic error the kernel made of it.
    """

    family: Family
    type: int
    code: int
    sender: str | None
    errno: str
    #: The sender is one of this machine's own addresses: a local firewall rule answered.
    local: bool = False

    @property
    def meaning(self) -> IcmpMeaning:
        table = _ICMP_MEANINGS
        found = table.get((self.family, self.type, self.code))
        return found or table.get((self.family, self.type, None), "other")

    def to_dict(self) -> dict[str, Any]:
        """The shape of ``probes[].icmp`` (spec "Path")."""
        return {"type": self.type, "code": self.code, "from": self.sender, "meaning": self.meaning}


@dataclass(frozen=True)
class ProbeSpec:
    """One probe: one (host name, address, port).

    ``port`` is the role (25, 465, 587, 2525) the verdict reasons about; ``connect_port``
    is the port actually dialled (the same, unless ``--port-map`` moved the role, as tests
    and labs do to run without root).
    """

    target: str  # what the user named: a domain, a host, or a catalog provider
    host: str  # host name (SNI, certificate check) or the IP literal itself
    address: str | None  # IP literal, no brackets; None when the name did not resolve
    family: Family | None
    port: int
    provider: str | None = None
    connect_port: int | None = None
    negative: bool = False  # the catalog documents this port as NOT answering
    expect: Expectation | None = None

    @property
    def mode(self) -> Mode:
        return mode_for_port(self.port)

    @property
    def dial_port(self) -> int:
        return self.connect_port if self.connect_port is not None else self.port

    @property
    def provider_key(self) -> str:
        """Groups probes that belong to one independent operator."""
        return self.provider or self.target


@dataclass(frozen=True)
class Reply:
    """One complete SMTP reply (RFC 5321 §4.2): a code and one or more text lines."""

    code: int
    lines: tuple[str, ...]  # text after the code and separator, decoded, unsanitised
    enhanced: str | None = None  # RFC 3463 enhanced status code of the first line

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text": self.text, "enhanced": self.enhanced}


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    san: tuple[str, ...]
    not_after: str | None  # ISO 8601 UTC
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "san": list(self.san),
            "not_after": self.not_after,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class TLSInfo:
    version: str | None
    cipher: str | None
    verified: bool
    verify_error: str | None
    cert: CertInfo | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "cipher": self.cipher,
            "verified": self.verified,
            "verify_error": self.verify_error,
            "cert": self.cert.to_dict() if self.cert else None,
        }


@dataclass(frozen=True)
class ErrorInfo:
    kind: str  # e.g. "connect", "timeout", "protocol", "tls", "dns", "local", "bug"
    message: str
    errno: str | None = None  # symbolic name, e.g. "ECONNREFUSED"
    #: The ICMP error the kernel queued for a failed connect (probe/connect.py), where
    #: there was one; in the JSON as the probe's ``icmp``.
    icmp: IcmpReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "errno": self.errno, "message": self.message}


@dataclass(frozen=True)
class Timings:
    """Milliseconds per phase; ``None`` for a phase never reached."""

    connect: float | None = None
    greeting: float | None = None
    ehlo: float | None = None
    tls: float | None = None
    total: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "connect": self.connect,
            "greeting": self.greeting,
            "ehlo": self.ehlo,
            "tls": self.tls,
            "total": self.total,
        }


@dataclass(frozen=True)
class ProbeResult:
    """How a probe ended (``state``) kept apart from what it saw on the way."""

    spec: ProbeSpec
    state: State
    greeting: Reply | None = None
    ehlo: tuple[str, ...] | None = None  # EHLO keyword lines (after TLS when TLS succeeded)
    ehlo_plain: tuple[str, ...] | None = None  # the EHLO lines before STARTTLS, if any
    helo_fallback: bool = False
    starttls: StartTLS = "n/a"
    starttls_reply: Reply | None = None
    tls: TLSInfo | None = None
    anomalies: tuple[str, ...] = ()
    error: ErrorInfo | None = None
    timings: Timings = field(default_factory=Timings)
    quit_sent: bool = False
    # The first line of the EHLO/HELO reply (``host Hello name [IP]``): where servers echo
    # the client address (mail readiness reads it); in the JSON as ``ehlo_hello``.
    ehlo_hello: str | None = None
    # Connection attempts (SYNs) of the last conversation: 1, or 2 when portprobe sent its
    # own redundant SYN; None when no connection was tried (dns-error).
    syn_attempts: int | None = None
    # True when ``filtered`` was decided by the redundant-SYN schedule, before the hard
    # connect timeout (probe/pathwait.py); False otherwise.
    decided_early: bool = False

    @property
    def connected(self) -> bool:
        return self.timings.connect is not None

    def to_dict(self) -> dict[str, Any]:
        s = self.spec
        return {
            "target": s.target,
            "provider": s.provider,
            "host": s.host,
            "address": s.address,
            "family": s.family,
            "port": s.port,
            "connect_port": s.dial_port,
            "mode": s.mode,
            "negative_control": s.negative,
            "state": self.state,
            "greeting": self.greeting.to_dict() if self.greeting else None,
            "ehlo": list(self.ehlo) if self.ehlo is not None else None,
            "ehlo_plain": list(self.ehlo_plain) if self.ehlo_plain is not None else None,
            "ehlo_hello": self.ehlo_hello,
            "helo_fallback": self.helo_fallback,
            "starttls": self.starttls,
            "starttls_reply": self.starttls_reply.to_dict() if self.starttls_reply else None,
            "tls": self.tls.to_dict() if self.tls else None,
            "anomalies": list(self.anomalies),
            "error": self.error.to_dict() if self.error else None,
            "timings_ms": self.timings.to_dict(),
            "quit_sent": self.quit_sent,
            "syn_attempts": self.syn_attempts,
            "decided_early": self.decided_early,
            "icmp": self.error.icmp.to_dict() if self.error and self.error.icmp else None,
        }


def format_nameserver(ip: str, port: int = 53) -> str:
    """``192.0.2.1:53`` / ``[2001:db8::1]:53``: the form ``--nameserver`` reads back."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True)
class DNSQuery:
    """One DNS lookup and how it ended: evidence, since a DNS failure is not a port block."""

    name: str
    rdtype: str  # "MX", "A", "AAAA"
    outcome: DnsOutcome
    answers: tuple[str, ...] = ()  # MX as "10 mx.example.net.", A/AAAA as literals
    nameserver: str | None = None
    elapsed_ms: float | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.rdtype,
            "outcome": self.outcome,
            "answers": list(self.answers),
            "nameserver": self.nameserver,
            "elapsed_ms": self.elapsed_ms,
            "message": self.message,
        }


@dataclass(frozen=True)
class DnsAnswer:
    """What one DNS query returned, whoever asked it (the planner, the readiness checks).

    ``values`` as text, in the answer's order: addresses (A/AAAA); ``"10 mx.example.net."``
    sorted by preference, then name (MX; ``"0 ."`` is the root); names without the final
    dot (PTR); the first strings of each record joined (TXT). ``message`` says why, in one
    line, when the outcome is not ``ok`` (and notes a CNAME when it is); ``nameserver``
    is who answered (or who was asked), ``truncated`` that values were dropped.
    """

    outcome: DnsOutcome
    values: tuple[str, ...] = ()
    message: str | None = None
    truncated: bool = False
    nameserver: str | None = None
    elapsed_ms: float | None = None

    @property
    def answers(self) -> tuple[str, ...]:
        return self.values

    def evidence(self, name: str, rdtype: str) -> DNSQuery:
        """This answer as the report's record of the lookup of ``name``/``rdtype``."""
        return DNSQuery(
            name, rdtype, self.outcome, self.values, self.nameserver, self.elapsed_ms, self.message
        )


class DnsLookup(Protocol):
    """The DNS seam, one for every caller: what a test or a library user replaces.

    ``server`` None asks the configured resolver (recursion, retries); a ``(ip, port)``
    asks that server directly. It never raises for DNS trouble (NXDOMAIN, SERVFAIL, a
    timeout are a :class:`DnsAnswer` whose outcome says so) and bounds its own time.
    :class:`portprobe.probe.dnsclient.DnsClient` is the real one.
    """

    async def query(
        self, name: str, rdtype: str, server: tuple[str, int] | None = None
    ) -> DnsAnswer: ...


@dataclass(frozen=True)
class Plan:
    """What to probe, and the DNS evidence gathered while deciding it.

    ``unresolved`` are specs whose host did not resolve (``address`` None): the runner
    turns each into a ``dns-error`` result without touching the network.
    """

    specs: tuple[ProbeSpec, ...]
    dns: tuple[DNSQuery, ...] = ()
    unresolved: tuple[ProbeSpec, ...] = ()
    notes: tuple[str, ...] = ()
