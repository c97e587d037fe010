"""Table-driven tests of ``decide``: hand-built result sets -> verdict, families, evidence.

Each scenario is a small story about the network ("the ISP drops SYNs to port 25",
"an ASA masks the banner") told as probe results; the table says what the verdict must
conclude and which words the reasons must use so a user can check them against the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from portprobe.model import DNSQuery, ErrorInfo, Expectation, ProbeResult, Timings
from portprobe.report import annotate, decide
from portprobe.report.verdict import FAMILY_VERDICTS, VERDICTS
from tests.builders import (
    PROVIDERS,
    dns_error,
    dnsq,
    dropped,
    healthy,
    no_banner,
    open_,
    prohibited,
    rejected,
    reset,
    tls,
)


def controls(family: str = "ipv4", providers: tuple[str, ...] = PROVIDERS) -> list[ProbeResult]:
    return [r for p in providers for r in healthy(p, family)]  # type: ignore[arg-type]


def cross_probe(results: list[ProbeResult]) -> dict[int, tuple[str, ...]]:
    """Result index -> the anomaly codes ``annotate`` added to the probe's own."""
    found = {}
    for i, o in enumerate(annotate(results)):
        extra = tuple(code for code in o.anomalies if code not in o.result.anomalies)
        if extra:
            found[i] = extra
    return found


def error25(provider: str) -> ProbeResult:
    r = dropped(provider)
    return ProbeResult(spec=r.spec, state="error", error=ErrorInfo("local", "EADDRNOTAVAIL"))


@dataclass
class Case:
    id: str
    results: list[ProbeResult]
    port25: str
    ipv4: str = "untested"
    ipv6: str = "untested"
    confidence: str | None = None
    failure_mode: str | None = None
    reasons: tuple[str, ...] = ()  # substrings that must appear in the joined reasons
    advice: tuple[str, ...] = ()
    dns: tuple[DNSQuery, ...] = ()
    catalog: bool = True
    not_reasons: tuple[str, ...] = field(default=())
    refusal: str | None = None


MASKED = "*" * 24
SPAMHAUS = "5.7.1 Service unavailable; client [198.51.100.7] blocked using zen.spamhaus.org (PBL)"
GMAIL = (
    "5.7.1 The IP you're using to send mail is not authorized to send email directly "
    "to our servers. Please use the SMTP relay at your service provider instead."
)
#: Postfix anvil (smtpd_client_connection_count_limit / _rate_limit), as smtpd.c words it.
ANVIL = "4.7.0 mx.example Error: too many connections from 192.0.2.7"
GMAIL_RATE = (
    "4.7.0 [192.0.2.7] Our system has detected an unusual rate of unsolicited mail "
    "originating from your IP address. To protect our users from spam, mail sent from your "
    "IP address has been temporarily rate limited."
)
EXPECT_ALPHA = Expectation(greeting_pattern=r"^mx\.alpha\.example ESMTP", starttls=True)

CASES = [
    # --- open -------------------------------------------------------------------------
    Case(
        "open-everywhere",
        [open_(p) for p in PROVIDERS] + controls(),
        "open",
        "open",
        confidence="high",
        reasons=("3 greeted genuinely", "mx.alpha.example ESMTP ready"),
        advice=("PTR",),
    ),
    Case(
        "open-one-provider-down",
        [open_(p) for p in PROVIDERS] + [dropped("delta")] + controls(),
        "open",
        "open",
        confidence="medium",
        reasons=("Only delta (mx.delta.example) failed", "silently dropped"),
    ),
    Case(
        "open-one-host-refuses-554",
        [
            open_("alpha"),
            open_("bravo"),
            rejected("charlie", 554, "No SMTP service here"),
            *controls(),
        ],
        "open",
        "open",
        reasons=("charlie", "554 'No SMTP service here'"),
    ),
    Case("open-single-target-answers", [open_("solo")], "open", "open", confidence="low"),
    Case(
        "open-one-421-among-greetings-names-that-host",
        [open_("alpha"), open_("bravo"), rejected("charlie", 421, ANVIL), *controls()],
        "open",
        "open",
        confidence="medium",
        reasons=("2 greeted genuinely", "charlie (mx.charlie.example) answered 421", "not a block"),
        not_reasons=("refused this client in the greeting",),
    ),
    Case(
        "open-masked-at-one-destination-only",
        [
            open_("alpha", greeting=MASKED, anomalies=("masked-greeting",)),
            open_("bravo"),
            open_("charlie"),
            *controls(),
        ],
        "open",
        "open",
        reasons=("masked-greeting", "destination's own firewall"),
    ),
    # --- blocked: one case per failure mode -------------------------------------------
    Case(
        "blocked-dropped",
        [dropped(p) for p in PROVIDERS] + controls(),
        "blocked",
        "blocked",
        confidence="high",
        failure_mode="dropped",
        reasons=("all 3 providers", "silently dropped", "Ports 465/587 reached 3"),
        advice=("587", "2525", "ask the ISP"),
    ),
    Case(
        "blocked-reset",
        [reset(p) for p in PROVIDERS] + controls(),
        "blocked",
        "blocked",
        failure_mode="reset",
        reasons=("TCP reset or ICMP port-unreachable",),
    ),
    Case(
        "blocked-prohibited",
        [prohibited(p) for p in PROVIDERS] + controls(),
        "blocked",
        "blocked",
        failure_mode="prohibited",
        reasons=("administratively prohibited",),
    ),
    Case(
        "blocked-no-greeting",
        [no_banner(p) for p in PROVIDERS] + controls(),
        "blocked",
        "blocked",
        failure_mode="no-greeting",
        reasons=("never sent an SMTP greeting",),
    ),
    Case(
        "blocked-mixed",
        [dropped("alpha"), reset("bravo"), prohibited("charlie"), *controls()],
        "blocked",
        "blocked",
        failure_mode="mixed",
        reasons=("1 filtered, 1 refused, 1 unreachable",),
    ),
    Case(
        "blocked-single-provider-with-control",
        [dropped("solo"), open_("solo", 587)],
        "blocked",
        "blocked",
        confidence="low",
        failure_mode="dropped",
    ),
    Case(
        "blocked-rst-from-the-path",
        [reset(p, total_ms=1.2) for p in PROVIDERS]
        + [open_(p, 587, connect_ms=42.0) for p in PROVIDERS],
        "blocked",
        "blocked",
        failure_mode="reset",
        reasons=("arrived in 1.2 ms", "sent by something in between"),
    ),
    Case(
        "blocked-rst-at-host-rtt",
        [reset(p, total_ms=41.0) for p in PROVIDERS]
        + [open_(p, 587, connect_ms=42.0) for p in PROVIDERS],
        "blocked",
        "blocked",
        failure_mode="reset",
        reasons=("about one round trip",),
        not_reasons=("in between",),
    ),
    Case(
        "blocked-loopback-timing-proves-nothing",
        [reset(p, total_ms=0.05) for p in PROVIDERS]
        + [open_(p, 587, connect_ms=0.3) for p in PROVIDERS],
        "blocked",
        "blocked",
        failure_mode="reset",
        not_reasons=("in between", "round trip"),
    ),
    # --- inconclusive -----------------------------------------------------------------
    Case(
        "inconclusive-single-target-no-control",
        [dropped("solo")],
        "inconclusive",
        "inconclusive",
        confidence="low",
        dns=(dnsq("solo.example"),),
        reasons=("Only port 25 was probed",),
        advice=("--ports 25,587",),
    ),
    Case(
        "inconclusive-no-control-for-the-failing-providers",
        [dropped(p) for p in PROVIDERS] + [open_("delta", 587)],
        "inconclusive",
        "inconclusive",
        reasons=("No other port reached the same providers",),
        advice=("587",),
    ),
    Case(
        "inconclusive-host-refuses-25-itself",
        [reset("solo", total_ms=40.0), open_("solo", 587, connect_ms=41.0)],
        "inconclusive",
        "inconclusive",
        reasons=("may simply not accept connections on port 25",),
        advice=("--domain",),
    ),
    Case(
        "inconclusive-port-25-not-probed",
        controls(),
        "inconclusive",
        "inconclusive",
        reasons=("Port 25 was not probed",),
        advice=("Include port 25",),
    ),
    Case(
        "inconclusive-only-local-errors",
        [error25(p) for p in PROVIDERS] + controls(),
        "inconclusive",
        "inconclusive",
        reasons=("3 error",),
    ),
    Case(
        "inconclusive-dns-works-but-nothing-connects",
        [dropped(p, port) for p in PROVIDERS for port in (25, 587)],
        "inconclusive",
        "inconclusive",
        dns=(dnsq("alpha.example"), dnsq("bravo.example")),
        reasons=("DNS answered", "captive portal"),
    ),
    Case(
        "inconclusive-nxdomain-nothing-to-probe",
        [dns_error("typo")],
        "inconclusive",
        dns=(dnsq("typo.example", "nxdomain"),),
        reasons=("could not be resolved",),
        advice=("Check the host and domain names",),
    ),
    # --- offline ----------------------------------------------------------------------
    Case(
        "offline-nothing-connects-dns-fails",
        [prohibited(p, port, total_ms=0.1) for p in PROVIDERS for port in (25, 587, 465)],
        "offline",
        "offline",
        confidence="high",
        dns=(dnsq("alpha.example", "timeout"), dnsq("bravo.example", "timeout")),
        reasons=("DNS failed", "no network"),
        advice=("not a port-25 block",),
    ),
    Case(
        "offline-ip-targets-no-dns",
        [dropped(p, port) for p in PROVIDERS for port in (25, 587)],
        "offline",
        "offline",
        reasons=("Nothing reached anything",),
    ),
    Case(
        "offline-every-port-refused-everywhere",
        [reset(p, port) for p in PROVIDERS for port in (25, 587)],
        "offline",
        "offline",
        reasons=("Every connection was refused", "firewall that rejects all"),
        not_reasons=("no network",),
    ),
    Case(
        "offline-dns-failures-only",
        [],
        "offline",
        dns=(dnsq("alpha.example", "timeout"), dnsq("bravo.example", "servfail")),
        reasons=("DNS failed", "1 servfail, 1 timeout"),
    ),
    Case(
        "offline-unresolved-because-dns-timed-out",
        [dns_error("alpha"), dns_error("bravo")],
        "offline",
        dns=(dnsq("alpha.example", "timeout"), dnsq("bravo.example", "timeout")),
        reasons=("could not be resolved", "DNS failed"),
    ),
    # --- partial ----------------------------------------------------------------------
    Case(
        "partial-providers-disagree",
        [
            open_("alpha"),
            open_("bravo"),
            dropped("charlie"),
            dropped("delta"),
            *controls(providers=("alpha", "bravo", "charlie", "delta")),
        ],
        "partial",
        "partial",
        failure_mode="dropped",
        reasons=("answered at 2 providers (alpha, bravo)", "failed at 2 (charlie, delta"),
    ),
    Case(
        "partial-v4-blocked-v6-open",
        [dropped(p) for p in PROVIDERS]
        + controls()
        + [open_(p, family="ipv6") for p in PROVIDERS]
        + controls("ipv6"),
        "partial",
        "blocked",
        "open",
        failure_mode="dropped",
        reasons=("blocked over IPv4 but reaches the receivers over IPv6",),
        advice=("over IPv6 only",),
    ),
    Case(
        "partial-v6-blocked-v4-open",
        [open_(p) for p in PROVIDERS]
        + controls()
        + [prohibited(p, family="ipv6") for p in PROVIDERS]
        + controls("ipv6"),
        "partial",
        "open",
        "blocked",
        failure_mode="prohibited",
        reasons=("blocked over IPv6",),
    ),
    # --- families ---------------------------------------------------------------------
    Case(
        "ipv6-unavailable-verdict-is-ipv4s",
        [open_(p) for p in PROVIDERS]
        + controls()
        + [dropped(p, port, family="ipv6") for p in PROVIDERS for port in (25, 587)],
        "open",
        "open",
        "unavailable",
        reasons=("IPv6 is unavailable",),
    ),
    Case(
        "ipv6-only-port-25-tried-is-inconclusive-not-unavailable",
        [open_(p) for p in PROVIDERS] + controls() + [dropped(p, family="ipv6") for p in PROVIDERS],
        "open",
        "open",
        "inconclusive",
        confidence="high",
        reasons=("Over IPv6 only port 25 was probed",),
    ),
    Case(
        "ipv4-unavailable-ipv6-blocked",
        [prohibited(p, port) for p in PROVIDERS for port in (25, 587)]
        + [dropped(p, family="ipv6") for p in PROVIDERS]
        + controls("ipv6"),
        "blocked",
        "unavailable",
        "blocked",
        failure_mode="dropped",
        reasons=("IPv4 is unavailable", "over IPv6"),
    ),
    Case(
        "families-agree-blocked",
        [dropped(p, family=f) for p in PROVIDERS for f in ("ipv4", "ipv6")]
        + controls()
        + controls("ipv6"),
        "blocked",
        "blocked",
        "blocked",
        confidence="high",
        failure_mode="dropped",
    ),
    # --- intercepted ------------------------------------------------------------------
    Case(
        "intercepted-masked-greeting",
        [open_(p, greeting=MASKED, anomalies=("masked-greeting",)) for p in PROVIDERS] + controls(),
        "intercepted",
        "intercepted",
        confidence="high",
        reasons=("masked-greeting", "Cisco ASA/PIX"),
    ),
    Case(
        "intercepted-starttls-stripped",
        [
            open_(
                p,
                starttls="stripped",
                ehlo=("SIZE 1", "XXXXXXXA"),
                tls_info=None,
                anomalies=("starttls-stripped",),
            )
            for p in PROVIDERS
        ]
        + controls(),
        "intercepted",
        "intercepted",
        reasons=("starttls-stripped",),
        advice=("inspect esmtp",),
    ),
    Case(
        "intercepted-shared-greeting",
        [open_(p, greeting="proxy.isp.example ESMTP Postfix") for p in PROVIDERS] + controls(),
        "intercepted",
        "intercepted",
        confidence="high",
        reasons=("greeting-shared-across-providers", "very same greeting line"),
    ),
    Case(
        "intercepted-greeting-name-mismatch",
        [open_("solo", greeting="filter.isp.example ESMTP"), open_("solo", 587)],
        "intercepted",
        "intercepted",
        confidence="low",
        reasons=("greeting-name-mismatch",),
    ),
    Case(
        "intercepted-starttls-missing-on-25",
        [open_(p, starttls="not-offered", tls_info=None) for p in PROVIDERS] + controls(),
        "intercepted",
        "intercepted",
        reasons=("starttls-missing-on-25",),
    ),
    Case(
        "intercepted-cert-differs-from-587",
        [
            open_(
                p,
                host=f"smtp.{p}.example",
                tls_info=tls(
                    f"smtp.{p}.example",
                    verified=False,
                    issuer="CN=Avast Web/Mail Shield Root, O=Avast",
                ),
            )
            for p in PROVIDERS
        ]
        + controls(),
        "intercepted",
        "intercepted",
        confidence="high",
        reasons=("cert-differs-from-587", "TLS proxy"),
    ),
    Case(
        "intercepted-negative-control-answered",
        [open_(p) for p in PROVIDERS]
        + controls()
        + [open_("alpha", 25, host="smtp.alpha.example", negative=True)],
        "intercepted",
        "intercepted",
        reasons=("documents as closed",),
    ),
    Case(
        "intercepted-greeting-unexpected",
        [
            open_(
                "alpha",
                host="mx.alpha.example",
                greeting="mx.alpha.example Microsoft ESMTP",
                expect=EXPECT_ALPHA,
            ),
            open_("alpha", 587),
        ],
        "intercepted",
        "intercepted",
        reasons=("greeting-unexpected",),
    ),
    Case(
        "intercepted-cert-name-unexpected",
        [
            open_(
                "alpha",
                tls_info=tls("*.proxy.example"),
                expect=Expectation(cert_name="mx.alpha.example"),
            )
        ],
        "intercepted",
        "intercepted",
        reasons=("cert-name-unexpected",),
    ),
    Case(
        "intercepted-on-one-family-only",
        [open_(p, greeting=MASKED, anomalies=("masked-greeting",)) for p in PROVIDERS]
        + controls()
        + [open_(p, family="ipv6") for p in PROVIDERS]
        + controls("ipv6"),
        "intercepted",
        "intercepted",
        "open",
    ),
    # --- restricted -------------------------------------------------------------------
    Case(
        "restricted-spamhaus",
        [
            rejected("alpha", 554, SPAMHAUS),
            rejected("bravo", 554, SPAMHAUS),
            open_("charlie"),
            *controls(),
        ],
        "restricted",
        "restricted",
        confidence="high",
        refusal="blocklisted",
        reasons=("2 of 3 providers refused", "zen.spamhaus.org (PBL)"),
        advice=("Spamhaus", "delisting"),
    ),
    Case(
        "restricted-gmail-policy",
        [rejected("gmail", 550, GMAIL), open_("gmail", 587)],
        "restricted",
        "restricted",
        refusal="blocklisted",
        reasons=("not authorized to send email directly",),
        advice=("Gmail refuses direct mail",),
    ),
    Case(
        "restricted-all-refuse-without-reason",
        [rejected(p, 554, "Access denied") for p in PROVIDERS] + controls(),
        "restricted",
        "restricted",
        confidence="medium",
        refusal="other",
        reasons=("3 of 3 providers refused",),
    ),
    # Issue 12 §1: every receiver refusing this client is restricted, whatever the code.
    Case(
        "restricted-421-rate-limit-everywhere",
        [rejected(p, 421, ANVIL) for p in PROVIDERS] + controls(),
        "restricted",
        "restricted",
        confidence="medium",
        refusal="rate-limited",
        reasons=("3 of 3 providers refused", "rate-limited", "too many connections from"),
        not_reasons=("none greeted with a 2xx code", "blocklisted"),
        advice=("wait", "--concurrency", "--per-host"),
    ),
    Case(
        "restricted-postfix-and-exim-and-gmail-rate-limits",
        [
            rejected("alpha", 421, "4.7.0 mx.alpha.example Error: too much mail from 192.0.2.7"),
            rejected("bravo", 421, "Too many concurrent SMTP connections; please try again later"),
            rejected("charlie", 421, GMAIL_RATE),
            *controls(),
        ],
        "restricted",
        "restricted",
        refusal="rate-limited",
        reasons=("rate-limited",),
        advice=("--concurrency",),
    ),
    Case(
        "restricted-blocklist-554-everywhere",
        [rejected(p, 554, SPAMHAUS) for p in PROVIDERS] + controls(),
        "restricted",
        "restricted",
        confidence="high",
        refusal="blocklisted",
        reasons=("3 of 3 providers refused", "(blocklisted)"),
        not_reasons=("rate-limited",),
        advice=("Spamhaus", "delisting"),
    ),
    Case(
        "restricted-rate-limit-and-blocklist-mix",
        [
            rejected("alpha", 421, ANVIL),
            rejected("bravo", 421, ANVIL),
            rejected("charlie", 554, SPAMHAUS),
            *controls(),
        ],
        "restricted",
        "restricted",
        refusal="mixed",
        reasons=("3 of 3 providers refused", "1 blocklisted, 2 rate-limited"),
        advice=("--concurrency", "Spamhaus"),
    ),
    Case(
        "restricted-421-with-blocklist-text-is-not-rate-limit",
        [rejected(p, 421, "4.7.0 [198.51.100.7] listed at bl.spamcop.net") for p in PROVIDERS]
        + controls(),
        "restricted",
        "restricted",
        refusal="blocklisted",
        advice=("SpamCop",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_decide(case: Case) -> None:
    v = decide(annotate(case.results), case.dns, used_catalog=case.catalog)
    reasons, advice = " ".join(v.reasons), " ".join(a.text for a in v.advice)
    assert (v.port25, v.families) == (case.port25, {"ipv4": case.ipv4, "ipv6": case.ipv6}), reasons
    if case.confidence is not None:
        assert v.confidence == case.confidence, reasons
    assert v.failure_mode == case.failure_mode
    assert v.refusal == case.refusal
    for text in case.reasons:
        assert text in reasons
    for text in case.not_reasons:
        assert text not in reasons
    for text in case.advice:
        assert text in advice
    assert v.reasons and v.advice
    assert v.port25 in VERDICTS and set(v.families.values()) <= set(FAMILY_VERDICTS)


def test_every_verdict_and_failure_mode_is_covered() -> None:
    assert {c.port25 for c in CASES} == set(VERDICTS)
    assert {c.failure_mode for c in CASES} >= {
        "dropped",
        "reset",
        "prohibited",
        "no-greeting",
        "mixed",
    }
    assert {c.ipv4 for c in CASES} | {c.ipv6 for c in CASES} >= {"unavailable", "untested"}


# --- anomalies ----------------------------------------------------------------------------

ANOMALY_CASES = {
    "greeting-shared-across-providers": "intercepted-shared-greeting",
    "greeting-name-mismatch": "intercepted-greeting-name-mismatch",
    "starttls-missing-on-25": "intercepted-starttls-missing-on-25",
    "cert-differs-from-587": "intercepted-cert-differs-from-587",
    "negative-control-answered": "intercepted-negative-control-answered",
    "greeting-unexpected": "intercepted-greeting-unexpected",
    "cert-name-unexpected": "intercepted-cert-name-unexpected",
    "refusal-from-path": "blocked-rst-from-the-path",
    "client-blocklisted": "restricted-spamhaus",
    "rate-limited": "restricted-421-rate-limit-everywhere",
}
BY_ID = {c.id: c for c in CASES}


@pytest.mark.parametrize("code", sorted(ANOMALY_CASES))
def test_cross_probe_anomaly_lands_on_the_right_probes(code: str) -> None:
    case = BY_ID[ANOMALY_CASES[code]]
    found = cross_probe(case.results)
    flagged = {i for i, codes in found.items() if code in codes}
    assert flagged, found
    # Only the port-25 probes carry it, except the dead-port control (which is port 25).
    assert all(case.results[i].spec.port == 25 for i in flagged)


def test_healthy_results_have_no_anomalies() -> None:
    assert cross_probe(BY_ID["open-everywhere"].results) == {}
    assert cross_probe(BY_ID["blocked-dropped"].results) == {}


def test_engine_anomalies_are_not_repeated() -> None:
    r = open_(
        "alpha",
        greeting="proxy.example ESMTP",
        anomalies=("greeting-unexpected",),
        expect=Expectation(greeting_pattern="^mx"),
    )
    assert cross_probe([r]) == {}


def test_same_operator_hosting_two_providers_is_not_shared_greeting() -> None:
    # Two domains whose MX is the same hoster greet with the hoster's name: innocent.
    rs = [
        open_(p, host=f"mx{n}.hoster.example", greeting="mx.hoster.example ESMTP")
        for n, p in enumerate(PROVIDERS)
    ]
    assert cross_probe(rs) == {}
    assert decide(annotate(rs)).port25 == "open"


def test_timing_rule_needs_the_same_family() -> None:
    rs = [reset("alpha", total_ms=1.0), open_("alpha", 587, connect_ms=50.0, family="ipv6")]
    assert "refusal-from-path" not in {c for codes in cross_probe(rs).values() for c in codes}


def test_quoted_server_text_is_made_visible() -> None:
    hostile = "blocked using zen.spamhaus.org \x1b]0;owned\x07\x1b[2J\u202e\x00"
    v = decide(annotate([rejected(p, 554, hostile) for p in PROVIDERS] + controls()))
    assert v.port25 == "restricted"
    text = " ".join(v.reasons)
    assert "\\x1b]0;owned" in text and "\\u202e" in text
    assert not any(ch in text for ch in "\x1b\x07\x00\u202e")


def test_long_server_text_is_shortened() -> None:
    v = decide(annotate([rejected("alpha", 554, "blocked using zen.spamhaus.org " + "x" * 1000)]))
    assert max(len(r) for r in v.reasons) < 300


def test_failing_host_is_named_when_open() -> None:
    v = decide(annotate(BY_ID["open-one-provider-down"].results))
    assert "mx.delta.example" in " ".join(v.reasons)


def test_421_never_makes_blocked() -> None:
    # Rate limits at every provider, port 587 dead: still not a port-25 block; the
    # receivers refuse this client (issue 12 §1), so it cannot deliver from here.
    rs = [rejected(p, 421, "Too many connections from your IP") for p in PROVIDERS]
    rs += [dropped(p, 587) for p in PROVIDERS]
    v = decide(annotate(rs))
    assert (v.port25, v.refusal, v.failure_mode) == ("restricted", "rate-limited", None)


def test_confidence_grows_with_independent_providers() -> None:
    one = decide(annotate([dropped("alpha"), *healthy("alpha")])).confidence
    two = decide(annotate([dropped(p) for p in PROVIDERS[:2]] + controls(providers=PROVIDERS[:2])))
    three = decide(annotate(BY_ID["blocked-dropped"].results)).confidence
    assert (one, two.confidence, three) == ("low", "medium", "high")


def test_hosts_of_one_provider_count_once() -> None:
    # Three MX hosts of one operator failing together are one observation.
    rs = [dropped("alpha", host=f"mx{n}.alpha.example") for n in range(3)] + healthy("alpha")
    v = decide(annotate(rs))
    assert v.port25 == "blocked" and v.confidence == "low"
    assert "1 provider" in " ".join(v.reasons)


def test_partial_dns_failure_is_mentioned_but_does_not_decide() -> None:
    case = BY_ID["blocked-dropped"]
    v = decide(annotate(case.results), (dnsq("alpha.example"), dnsq("zulu.example", "servfail")))
    assert v.port25 == "blocked"
    assert "1 of 2 DNS queries failed (1 servfail)" in " ".join(v.reasons)


def test_untimed_refusal_is_still_counted() -> None:
    r = reset("alpha")
    untimed = ProbeResult(spec=r.spec, state="refused", error=r.error, timings=Timings())
    v = decide(annotate([untimed, dropped("bravo"), *controls(providers=("alpha", "bravo"))]))
    assert v.port25 == "blocked" and v.failure_mode == "mixed"


def test_verdict_to_dict_shape() -> None:
    d = decide(annotate(BY_ID["blocked-dropped"].results)).to_dict()
    assert set(d) == {
        "port25",
        "families",
        "confidence",
        "reasons",
        "advice",
        "failure_mode",
        "refusal",
    }
    assert isinstance(d["reasons"], list) and isinstance(d["advice"], list)
