"""Hand-built probe results for table-driven tests of the verdict, report and renderers.

Each helper makes one ``ProbeResult`` the way the engine would record that outcome:
``open_(...)`` a genuine greeting, ``dropped(...)`` a connect timeout, ``reset(...)`` an
ECONNREFUSED, and so on. Scenarios are lists of these; hosts default to
``mx.<provider>.example`` / ``smtp.<provider>.example`` so greetings name their host.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from portprobe.model import (
    CertInfo,
    DNSQuery,
    ErrorInfo,
    Expectation,
    Family,
    Plan,
    ProbeResult,
    ProbeSpec,
    Reply,
    StartTLS,
    Timings,
    TLSInfo,
)
from portprobe.report import annotate, build_report, decide
from portprobe.report.verdict import Verdict

_ADDR = {"ipv4": "192.0.2.{n}", "ipv6": "2001:db8::{n}"}
_counter = iter(range(1, 10_000))


def spec(
    provider: str,
    port: int,
    *,
    family: Family = "ipv4",
    host: str | None = None,
    address: str | None = None,
    negative: bool = False,
    expect: Expectation | None = None,
) -> ProbeSpec:
    if host is None:
        host = f"mx.{provider}.example" if port == 25 else f"smtp.{provider}.example"
    if address is None:
        # Same host + family -> same address, so timing comparisons find their control.
        n = sum(map(ord, f"{provider}|{host}")) % 250 + 1
        address = _ADDR[family].format(n=n)
    return ProbeSpec(
        target=provider,
        host=host,
        address=address,
        family=family,
        port=port,
        provider=provider,
        negative=negative,
        expect=expect,
    )


def cert(name: str, issuer: str = "C=US, O=Let's Encrypt, CN=R11") -> CertInfo:
    return CertInfo(
        subject=f"CN={name}", issuer=issuer, san=(name,), not_after="2027-01-01T00:00:00Z"
    )


def tls(
    name: str, *, verified: bool = True, issuer: str = "C=US, O=Let's Encrypt, CN=R11"
) -> TLSInfo:
    return TLSInfo(
        version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384",
        verified=verified,
        verify_error=None if verified else "hostname mismatch",
        cert=cert(name, issuer),
    )


def open_(
    provider: str,
    port: int = 25,
    *,
    family: Family = "ipv4",
    host: str | None = None,
    greeting: str | None = None,
    code: int = 220,
    starttls: StartTLS | None = None,
    ehlo: tuple[str, ...] | None = None,
    tls_info: TLSInfo | bool | None = True,
    anomalies: tuple[str, ...] = (),
    connect_ms: float = 30.0,
    **kw: Any,
) -> ProbeResult:
    """A probe that connected and got a greeting (2xx: ``open``, else ``rejected``)."""
    s = spec(provider, port, family=family, host=host, **kw)
    text = greeting if greeting is not None else f"{s.host} ESMTP ready"
    if starttls is None:
        starttls = "n/a" if port == 465 else "offered"
    if ehlo is None:
        ehlo = ("SIZE 35882577", "8BITMIME", "STARTTLS") if starttls == "offered" else ("SIZE 1",)
    if tls_info is True:
        tls_info = tls(s.host) if starttls == "offered" or port == 465 else None
    elif tls_info is False:
        tls_info = None
    rejected = not 200 <= code < 300
    return ProbeResult(
        spec=s,
        state="rejected" if rejected else "open",
        greeting=Reply(code=code, lines=tuple(text.split("\n"))),
        ehlo=None if rejected else ehlo,
        starttls="n/a" if rejected else starttls,
        tls=None if rejected else tls_info,
        anomalies=anomalies,
        timings=Timings(connect=connect_ms, greeting=connect_ms + 20, total=connect_ms + 80),
    )


def rejected(provider: str, code: int, text: str, port: int = 25, **kw: Any) -> ProbeResult:
    return open_(provider, port, code=code, greeting=text, **kw)


def _failed(
    state: Any,
    provider: str,
    port: int,
    *,
    family: Family = "ipv4",
    errno: str | None = None,
    total_ms: float = 5000.0,
    connected: bool = False,
    kind: str = "connect",
    **kw: Any,
) -> ProbeResult:
    return ProbeResult(
        spec=spec(provider, port, family=family, **kw),
        state=state,
        error=ErrorInfo(kind=kind, message=f"{state} on port {port}", errno=errno),
        timings=Timings(connect=5.0 if connected else None, total=total_ms),
    )


def dropped(provider: str, port: int = 25, **kw: Any) -> ProbeResult:
    return _failed("filtered", provider, port, kind="timeout", **kw)


def reset(provider: str, port: int = 25, *, total_ms: float = 30.0, **kw: Any) -> ProbeResult:
    return _failed("refused", provider, port, errno="ECONNREFUSED", total_ms=total_ms, **kw)


def prohibited(provider: str, port: int = 25, **kw: Any) -> ProbeResult:
    errno = "EACCES" if kw.get("family") == "ipv6" else "EHOSTUNREACH"
    kw.setdefault("total_ms", 12.0)
    return _failed("unreachable", provider, port, errno=errno, **kw)


def no_banner(provider: str, port: int = 25, **kw: Any) -> ProbeResult:
    return _failed("no-banner", provider, port, connected=True, kind="timeout", **kw)


def dns_error(provider: str, port: int = 25) -> ProbeResult:
    s = ProbeSpec(
        target=provider,
        host=f"mx.{provider}.example",
        address=None,
        family=None,
        port=port,
        provider=provider,
    )
    return ProbeResult(
        spec=s, state="dns-error", error=ErrorInfo(kind="dns", message="name does not resolve")
    )


def dnsq(name: str, outcome: Any = "ok", rdtype: str = "MX") -> DNSQuery:
    answers = ("10 mx.example.net.",) if outcome == "ok" else ()
    return DNSQuery(
        name=name,
        rdtype=rdtype,
        outcome=outcome,
        answers=answers,
        nameserver="192.0.2.53",
        elapsed_ms=12.0,
    )


def healthy(
    provider: str, family: Family = "ipv4", ports: Iterable[int] = (587, 465)
) -> list[ProbeResult]:
    """Control probes of ``provider`` that work: the submission ports answer."""
    return [open_(provider, p, family=family) for p in ports]


PROVIDERS = ("alpha", "bravo", "charlie")

T0 = datetime(2026, 11, 29, 0, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 29, 0, 0, 7, 250_000, tzinfo=UTC)

PARAMETERS = {
    "ports": [25, 465, 587, 2525],
    "timeout": 10.0,
    "families": ["ipv4", "ipv6"],
    "targets": [],
    "domains": [],
    "nameservers": [],
    "concurrency": 16,
    "ehlo_name": "probe.example",
    "ca_file": None,
}


def report_for(
    results: list[ProbeResult],
    dns: Iterable[DNSQuery] = (),
    *,
    interrupted: bool = False,
    verdict: Verdict | None = None,
    notes: tuple[str, ...] = (),
) -> dict[str, Any]:
    dns = tuple(dns)
    if verdict is None:
        verdict = decide(annotate(results), dns, used_catalog=True)
    plan = Plan(specs=tuple(r.spec for r in results), dns=dns, notes=notes)
    return build_report(
        results=results,
        plan=plan,
        verdict=verdict,
        parameters=PARAMETERS,
        tool_version="0.1.0",
        started_at=T0,
        finished_at=T1,
        interrupted=interrupted,
    )
