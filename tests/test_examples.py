"""reports/examples/: one real report per verdict, each valid against the schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from portprobe.exit_codes import VERDICT as EXIT_CODES

REPORTS = Path(__file__).resolve().parent.parent / "reports"
SCHEMA = json.loads((REPORTS / "report.schema.json").read_text())


def test_one_example_per_verdict() -> None:
    names = {p.stem for p in (REPORTS / "examples").glob("*.json")}
    assert names == set(EXIT_CODES)


@pytest.mark.parametrize("verdict", sorted(EXIT_CODES))
def test_example_is_a_valid_report_of_its_verdict(verdict: str) -> None:
    report = json.loads((REPORTS / "examples" / f"{verdict}.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    assert report["verdict"]["port25"] == verdict
    assert report["probes"], "examples come from real runs, with probes"
    assert report["verdict"]["reasons"] and report["verdict"]["advice"]


def example(verdict: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((REPORTS / "examples" / f"{verdict}.json").read_text())
    return report


@pytest.mark.parametrize("verdict", sorted(EXIT_CODES))
def test_example_shows_readiness_environment_and_a_fixed_vantage(verdict: str) -> None:
    """The generator states the public address and a fake DMI tree, under no CI variable."""
    report = example(verdict)
    assert report["readiness"] is not None and report["readiness"]["reasons"]
    assert report["parameters"]["public_ips"] == ["198.51.100.7"]
    assert report["parameters"]["sysfs"].startswith("tests/fixtures/sysfs/")
    environment = report["environment"]
    assert environment["ci"] is None and environment["evidence"], "no CI variable leaked in"
    assert report["vantage"] == {
        "hostname": None,
        "public_addresses": {"ipv4": ["198.51.100.7"]},
        "platform": environment["platform"],
        "ci": None,
    }
    assert "refusal" in report["verdict"]


def test_examples_between_them_show_every_readiness_answer() -> None:
    assert {example(v)["readiness"]["ready"] for v in EXIT_CODES} == {"yes", "no", "unknown"}


def test_restricted_example_is_pbl_listed_and_not_ready() -> None:
    report = example("restricted")
    assert report["verdict"]["refusal"] == "blocklisted"
    readiness = report["readiness"]
    assert readiness["ready"] == "no"
    [listing] = readiness["dnsbl"]
    assert (listing["zone"], listing["status"], listing["answers"]) == (
        "zen.spamhaus.org",
        "listed",
        ["127.0.0.11"],
    )
    assert any("PBL" in reason for reason in readiness["reasons"])


def test_open_example_has_forward_confirmed_reverse_dns() -> None:
    readiness = example("open")["readiness"]
    assert readiness["ready"] == "yes"
    assert [(p["iprev"], p["confirmed_name"]) for p in readiness["ptr"]] == [
        ("pass", "mail.example.net")
    ]


def test_blocked_example_on_aws_names_the_request_form() -> None:
    environment = example("blocked")["environment"]
    assert environment["platform"] == "aws"
    assert any("Request to remove email sending limitations" in a for a in environment["advice"])
