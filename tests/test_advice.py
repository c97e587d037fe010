"""Typed advice: sources replace or drop each other's steps by code and ports, never by text.

The verdict's steps (report/advice.py), the platform's (report/platform_advice.py) and
readiness's (readiness/advise.py) each carry a code; the JSON report keeps only the text.
"""

from __future__ import annotations

import re

import pytest

from portprobe.advice import Advice, texts, unique, without_ports, without_replaced
from portprobe.environment.model import Environment
from portprobe.environment.platforms import load_platforms
from portprobe.outcome import Verdict
from portprobe.readiness.assess import assess
from portprobe.readiness.model import DnsblCheck, GenericNameCheck, PtrCheck
from portprobe.report import settle as settle_steps
from portprobe.report.advice import ADVICE, AdviceFacts, advice_for
from portprobe.report.platform_advice import filter_generic_advice
from portprobe.report.settle import USE_CATALOG
from portprobe.vocab import ADVICE_CODES, MAIL_PORTS, REFUSALS, VERDICTS, Family, VerdictWord

CATALOG = load_platforms()
ADDR = "198.51.100.7"
PASS = PtrCheck(ADDR, ("mail.good.test",), "pass", "mail.good.test")
CLEAN = GenericNameCheck("mail.good.test", False)
ALL_FACTS = (
    AdviceFacts(),
    AdviceFacts(frozenset({465, 587, 2525}), frozenset({"Spamhaus"}), True, True),
)


def every_generic_step() -> list[Advice]:
    out: list[Advice] = []
    splits: tuple[tuple[Family, Family] | None, ...] = (None, ("ipv4", "ipv6"), ("ipv6", "ipv4"))
    for word in VERDICTS:
        for facts in ALL_FACTS:
            for refusal in (None, *REFUSALS):
                for split in splits:
                    out += advice_for(word, facts, split=split, refusal=refusal)
    return out


# --- the table and the type ---------------------------------------------------------------


def test_every_verdict_has_one_advice_function() -> None:
    assert set(ADVICE) == set(VERDICTS)
    for word in VERDICTS:
        steps = advice_for(word, AdviceFacts())
        assert steps and all(isinstance(a, Advice) and a.code in ADVICE_CODES for a in steps)


def test_a_step_lists_exactly_the_mail_ports_its_text_sends_you_through() -> None:
    # The platform filter reads ``ports``, never the text: the two must agree, or a step
    # through a port the platform blocks would be kept (or a good one dropped).
    settle = [v for v in vars(settle_steps).values() if isinstance(v, Advice)]
    assert USE_CATALOG in settle
    for step in {*every_generic_step(), *settle}:
        named = {int(p) for p in re.findall(r"(?<![\d-])(\d+)(?!\d)", step.text)}
        assert set(step.ports) == named & set(MAIL_PORTS) - {25}, step


def test_the_json_keeps_only_the_text() -> None:
    steps = advice_for("blocked", AdviceFacts())
    verdict = Verdict("blocked", {"ipv4": "blocked"}, "high", ("r",), steps)
    assert verdict.to_dict()["advice"] == [a.text for a in steps]
    env = Environment(platform="aws", ci=None, advice=steps[:1])
    assert env.to_dict()["advice"] == [steps[0].text]


def test_unique_keeps_the_first_step_of_each_text() -> None:
    a, b = Advice("use-catalog", "same"), Advice("check-names", "same")
    c = Advice("check-network", "other")
    assert unique([a, c, b, c]) == (a, c)


# --- suppression by code and by port -------------------------------------------------------


def test_a_step_replaces_another_sources_step_by_code_alone() -> None:
    generic = advice_for("blocked", AdviceFacts(submission_ports=frozenset({587})))
    # A step with the generic step's very words, but another code, is not replaced.
    lookalike = Advice("static-address", generic[-1].text)
    platform = (Advice("platform-unblock-step", "use the form", replaces=("lift-port25-block",)),)
    kept = without_replaced((*generic, lookalike), by=platform)
    assert [a.code for a in kept] == ["use-submission", "relay-2525", "static-address"]


def test_a_blocked_port_drops_the_steps_through_it() -> None:
    generic = advice_for("blocked", AdviceFacts())
    assert [a.code for a in without_ports(generic, [465])] == ["relay-2525", "lift-port25-block"]
    assert without_ports(generic, []) == generic


def test_the_platforms_own_advice_decides_what_the_generic_advice_loses() -> None:
    """Whatever the platform's steps replace goes, and nothing else (aws blocks only 25)."""
    generic = advice_for("blocked", AdviceFacts(submission_ports=frozenset({587})))
    mine = Advice("platform-relay", "Relay through X.", replaces=("use-submission",))
    env = Environment(platform="aws", ci=None, profile="aws", advice=(mine,))
    kept = filter_generic_advice(generic, env, CATALOG)
    assert [a.code for a in kept] == ["relay-2525", "lift-port25-block"]


@pytest.mark.parametrize(("profile", "gone"), [("hetzner", {465}), ("scaleway", {465, 587})])
def test_a_platform_drops_inconclusive_steps_through_ports_it_blocks(
    profile: str, gone: set[int]
) -> None:
    env = Environment(platform="unknown", ci=None, profile=profile)
    settle = (
        Advice("probe-control-port", "Probe 587 too.", ports=(587,)),
        Advice("include-port25", "Include port 25 in --ports."),
    )
    steps = advice_for("inconclusive", AdviceFacts(), settle=settle)
    kept = filter_generic_advice(steps, env, CATALOG)
    expected = ["include-port25"] if 587 in gone else ["probe-control-port", "include-port25"]
    assert [a.code for a in kept] == expected
    # The catalog's controls are on 465, 587 and 2525: useless where one is blocked.
    assert filter_generic_advice((USE_CATALOG,), env, CATALOG) == ()
    assert texts(filter_generic_advice(steps, None, CATALOG)) == texts(steps)


# --- readiness: a PBL listing, by its answer codes -----------------------------------------


def listed(answer: str, meaning: str) -> DnsblCheck:
    return DnsblCheck("zen.spamhaus.org", ADDR, "listed", (answer,), (meaning,))


def readiness_codes(*dnsbl: DnsblCheck, port25: VerdictWord = "open") -> list[str]:
    r = assess({"ipv4": (ADDR,)}, (), [PASS], [CLEAN], None, list(dnsbl), port25=port25)
    return [a.code for a in r.advice]


def test_a_pbl_listing_suppresses_delisting_and_says_relay() -> None:
    # The PBL is the range owner's policy: no cause to stop, so no "ask for removal".
    assert readiness_codes(listed("127.0.0.11", "anything")) == ["pbl-relay"]
    assert readiness_codes(listed("127.0.0.10", "anything")) == ["pbl-relay"]
    # Any other listing is a misdeed of this address: find the cause, then fix or relay.
    assert readiness_codes(listed("127.0.0.2", "PBL, says the meaning")) == [
        "dnsbl-listed",
        "fix-or-relay",
    ]
    both = readiness_codes(listed("127.0.0.11", "PBL"), listed("127.0.0.2", "SBL"))
    assert both == ["dnsbl-listed", "pbl-relay"]
    assert readiness_codes(listed("127.0.0.11", "PBL"), port25="blocked") == ["readiness-moot"]


def test_a_list_refusing_a_public_resolver_is_known_by_its_answer() -> None:
    refused = DnsblCheck("zen.spamhaus.org", ADDR, "unknown", ("127.255.255.254",), (), "x")
    assert refused.refused_public_resolver and "dnsbl-own-resolver" in readiness_codes(refused)
    said_so = DnsblCheck("bl.test", ADDR, "unknown", (), (), "your resolver is a public one")
    assert "dnsbl-own-resolver" not in readiness_codes(said_so)
