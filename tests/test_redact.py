"""--redact: our public addresses, PTR names and host name vanish from every output."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from portprobe.model import Reply
from portprobe.readiness.model import AddressSighting, PtrCheck, Readiness
from portprobe.render import render
from portprobe.report.redact import redact_report
from tests.builders import PROVIDERS, healthy, open_, typed_report_for

OURS = "198.51.100.77"
PTR = "host-77.dyn.example.net"
HOSTNAME = "laptop-of-alice"


def report_with_our_traces():  # type: ignore[no-untyped-def]
    echo = open_("alpha")
    echo = replace(
        echo,
        ehlo=("mx.alpha.example Hello [" + OURS + "]", "STARTTLS"),
        greeting=Reply(220, (f"mx.alpha.example ESMTP ready for {PTR}",)),
    )
    results = [echo, *(r for p in PROVIDERS for r in healthy(p))]
    readiness = Readiness(
        ready="no",
        public_addresses={"ipv4": (OURS,)},
        sightings=(AddressSighting("ehlo-echo", "ipv4", OURS, source="mx.alpha.example"),),
        ptr=(PtrCheck(OURS, (PTR,), "pass", confirmed_name=PTR),),
        reasons=(f"{OURS} has the generic PTR name {PTR}.",),
    )
    return replace(typed_report_for(results, readiness=readiness), hostname=HOSTNAME)


@pytest.mark.parametrize("fmt", ["json", "table", "markdown", "junit"])
def test_nothing_of_ours_survives_in_any_format(fmt: str) -> None:
    report = report_with_our_traces()
    before = render(fmt, report, verbose=True)
    after = render(fmt, redact_report(report), verbose=True)
    if fmt == "json":  # the unredacted report really carries them, or this test proves nothing
        assert OURS in before and PTR in before and HOSTNAME in before
    for secret in (OURS, PTR, HOSTNAME):
        assert secret not in after, (fmt, secret)


def test_labels_are_stable_and_the_evidence_stays() -> None:
    report = redact_report(report_with_our_traces())
    data = json.dumps(report.to_dict())
    assert "<redacted-address-1>" in data and "<redacted-name-" in data
    # The servers we probed are evidence, not ours: they stay.
    assert "mx.alpha.example" in data
    assert report.verdict.port25 == report_with_our_traces().verdict.port25


def test_a_report_without_readiness_is_left_as_is() -> None:
    report = typed_report_for([open_("alpha")])
    assert redact_report(report) is report
