"""The verdict is pure all the way down: probes annotated once, frozen evidence and findings,
advice facts read off the evidence, refusal knowledge in one place.

The table of network stories is tests/test_verdict.py; these tests hold the shape that
makes that table trustworthy.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from portprobe.model import Expectation, Reply
from portprobe.protocol.smtp import greeting_domain
from portprobe.report import annotate, decide
from portprobe.report.advice import AdviceFacts
from portprobe.report.anomalies import is_ip_literal
from portprobe.report.evidence import digest
from portprobe.report.family import RULES, decide_family
from portprobe.report.refusals import blocklists_named, refusal_kind, refusal_word
from tests.builders import PROVIDERS, dropped, healthy, open_, rejected, report_for
from tests.test_verdict import ANVIL, BY_ID, CASES, GMAIL, SPAMHAUS, Case, controls

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "portprobe" / "report"

# --- annotate -----------------------------------------------------------------------------


def test_annotate_keeps_order_and_puts_own_codes_before_cross_probe_ones() -> None:
    results = BY_ID["intercepted-shared-greeting"].results
    observed = annotate(results)
    assert [o.result for o in observed] == results
    p25 = [o for o in observed if o.result.spec.port == 25]
    assert p25 and all(
        set(o.anomalies) == {"greeting-name-mismatch", "greeting-shared-across-providers"}
        for o in p25
    )
    assert all(not o.genuine for o in p25)
    assert all(o.genuine for o in observed if o.result.spec.port != 25)


def test_annotate_does_not_repeat_the_engines_codes() -> None:
    r = open_(
        "alpha",
        greeting="proxy.example ESMTP",
        anomalies=("greeting-unexpected", "masked-greeting"),
        expect=Expectation(greeting_pattern="^mx"),
    )
    (o,) = annotate([r])
    assert o.anomalies == ("greeting-unexpected", "masked-greeting")
    assert o.genuine is False


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_observed_fields_follow_their_definitions(case: Case) -> None:
    for o in annotate(case.results):
        r = o.result
        assert o.anomalies[: len(set(r.anomalies))] == tuple(dict.fromkeys(r.anomalies))
        assert len(set(o.anomalies)) == len(o.anomalies)
        assert o.greeting_domain == (greeting_domain(r.greeting) if r.greeting else None)
        if o.genuine:
            assert r.state == "open"
        d = o.to_dict()
        assert d["anomalies"] == list(o.anomalies) and d["genuine"] is o.genuine


def test_rate_limit_and_blocklist_refusals_are_labelled() -> None:
    observed = annotate([rejected("alpha", 421, ANVIL), rejected("bravo", 554, SPAMHAUS)])
    assert [o.anomalies for o in observed] == [("rate-limited",), ("client-blocklisted",)]


# --- frozen all the way -------------------------------------------------------------------


def test_evidence_findings_and_facts_are_frozen() -> None:
    observed = annotate(BY_ID["restricted-spamhaus"].results)
    ev = digest("ipv4", observed)
    found = decide_family(ev)
    facts = AdviceFacts.from_evidence(observed)
    provider = next(iter(ev.providers.values()))
    for obj, name in ((ev, "connected"), (found, "verdict"), (facts, "gmail_policy")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, name, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        provider.genuine = True  # type: ignore[misc]
    assert isinstance(found.reasons, tuple) and isinstance(provider.refusals, tuple)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_decide_is_a_function_of_its_input(case: Case) -> None:
    observed = annotate(case.results)
    first = decide(observed, case.dns, used_catalog=case.catalog)
    assert decide(observed, case.dns, used_catalog=case.catalog) == first
    assert annotate(case.results) == observed


def test_every_rule_returns_a_finding_without_touching_its_evidence() -> None:
    # Run every rule on every family of every case, in any order: the evidence is unchanged
    # and the family decision is the same, so no rule leans on another having run.
    for case in CASES:
        observed = annotate(case.results)
        for fam in ("ipv4", "ipv6"):
            ev = digest(fam, observed)
            if not ev.connected:
                continue
            before = decide_family(ev)
            for rule in reversed(RULES):
                rule(ev)
            assert digest(fam, observed) == ev
            assert decide_family(ev) == before


# --- advice facts come from the evidence --------------------------------------------------


def test_advice_facts_are_read_off_the_evidence() -> None:
    rs = [
        rejected("alpha", 554, SPAMHAUS),
        rejected("bravo", 550, GMAIL),
        rejected("charlie", 554, "5.7.1 Client host rejected: listed at bl.example.net"),
        open_("alpha", 587),
        open_("bravo", 2525),
        dropped("charlie", 465),
    ]
    facts = AdviceFacts.from_evidence(annotate(rs))
    assert facts == AdviceFacts(
        submission_ports=frozenset({587, 2525}),
        blocklists=frozenset({"Spamhaus", "a DNS blocklist"}),
        gmail_policy=True,
        policy_listing=True,
    )


def test_negative_controls_and_intercepted_ports_are_not_submission_ports() -> None:
    dead = open_("alpha", 2525, negative=True)
    masked = open_("bravo", 587, greeting="*" * 12, anomalies=("masked-greeting",))
    facts = AdviceFacts.from_evidence(annotate([dead, masked, *healthy("charlie")]))
    assert facts.submission_ports == {465, 587}  # charlie's; not the dead 2525 nor the mask
    assert 2525 not in AdviceFacts.from_evidence(annotate([dead])).submission_ports
    assert AdviceFacts.from_evidence(annotate([masked])).submission_ports == frozenset()
    assert facts.blocklists == frozenset()


def test_advice_uses_what_the_deciding_finding_carries() -> None:
    # Partial by family: the advice names both families from the finding's split.
    v4 = [dropped(p) for p in PROVIDERS] + controls()
    v6 = [open_(p, family="ipv6") for p in PROVIDERS] + controls("ipv6")
    v = decide(annotate(v4 + v6))
    assert v.port25 == "partial"
    said = {a.code: a for a in v.advice}
    assert "Port 25 works over IPv6 only" in said["family-only"].text
    assert "lift the port-25 block on IPv4" in said["lift-family-block"].text
    assert (said["family-only"].family, said["lift-family-block"].family) == ("ipv6", "ipv4")


# --- refusals: one home -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "kind"),
    [
        # Postfix smtpd + anvil
        (421, "4.7.0 mx.example Error: too many connections from 192.0.2.7", "rate-limited"),
        (421, "4.7.0 mx.example Error: too much mail from 192.0.2.7", "rate-limited"),
        (421, "4.7.0 mx.example Error: too many new TLS sessions from 192.0.2.7", "rate-limited"),
        (450, "4.7.1 Client host rejected: too many connections, slow down", "rate-limited"),
        # Exim, Gmail
        (421, "Too many concurrent SMTP connections; please try again later.", "rate-limited"),
        (421, "4.7.0 unusual rate of unsolicited mail, temporarily rate limited", "rate-limited"),
        (421, "4.3.2 Service not available", "rate-limited"),  # RFC 5321 §4.2.3: load
        (554, SPAMHAUS, "blocklisted"),
        (550, GMAIL, "blocklisted"),
        (421, "4.7.0 [198.51.100.7] listed at bl.spamcop.net", "blocklisted"),
        (554, "No SMTP service here", "refused"),
        (450, "4.3.2 Service currently unavailable", "temporary"),
    ],
)
def test_refusal_kind(code: int, text: str, kind: str) -> None:
    assert refusal_kind(Reply(code, (text,))) == kind


def test_refusal_word_and_blocklist_names() -> None:
    assert refusal_word([]) is None
    assert refusal_word(["rate-limited", "rate-limited"]) == "rate-limited"
    assert refusal_word(["rate-limited", "blocklisted"]) == "mixed"
    assert blocklists_named("blocked using zen.spamhaus.org and SORBS") == ("Spamhaus", "SORBS")
    assert blocklists_named("listed at bl.example.net") == ("a DNS blocklist",)
    assert blocklists_named(GMAIL) == ()


def test_ip_literals_name_no_domain() -> None:
    for literal in ("192.0.2.1", "2001:db8::1", "[192.0.2.1]", "[IPv6:2001:db8::1]", "1.2.3"):
        assert is_ip_literal(literal), literal
    for name in ("mx.example.com", "ipv6.example", "192.0.2.1.nip.example", ""):
        assert not is_ip_literal(name), name


# --- the refusal word in the report -------------------------------------------------------


def test_refusal_reaches_the_json_report_and_validates() -> None:
    schema = json.loads((ROOT / "reports" / "report.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for case_id, word in (
        ("restricted-421-rate-limit-everywhere", "rate-limited"),
        ("restricted-rate-limit-and-blocklist-mix", "mixed"),
        ("blocked-dropped", None),
    ):
        report = report_for(BY_ID[case_id].results)
        validator.validate(report)
        assert report["verdict"]["refusal"] == word
    bad = report_for(BY_ID["restricted-spamhaus"].results)
    bad["verdict"]["refusal"] = "throttled"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)


# --- layers -------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_report_never_imports_render_probe_or_targets() -> None:
    forbidden = ("portprobe.render", "portprobe.probe", "portprobe.targets", "portprobe.cli")
    for path in sorted(REPORT.glob("*.py")):
        bad = {n for n in _imports(path) if n.startswith(forbidden)}
        assert not bad, f"{path.name} imports {sorted(bad)}"
