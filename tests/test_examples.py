"""reports/examples/: one real report per verdict, each valid against the schema."""

from __future__ import annotations

import json
from pathlib import Path

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
