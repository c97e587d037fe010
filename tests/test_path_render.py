"""``path`` in every output: JSON (schema), table (one "Where:" line, hops with -v),
Markdown, JUnit, OpenMetrics, Nagios, and ``merge``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema

from portprobe.fleet import build_fleet, vantage_from_dict
from portprobe.outcome import Report
from portprobe.path.model import Blocker, Hop, PathReport, Trace
from portprobe.render import render
from portprobe.render.fleet import render_fleet
from tests.builders import PROVIDERS, dropped, healthy
from tests.builders import typed_report_for as report_for
from tests.test_openmetrics import promtool, samples

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "reports" / "report.schema.json").read_text()
)

HOPS = (
    Hop(1, "192.168.1.1", "time-exceeded", "time-exceeded"),  # address-text
    Hop(2, "198.18.1.1", "time-exceeded", "time-exceeded", "edge1.isp.example", 64500, "ISP"),
    Hop(3, "192.0.2.99", "silent", "time-exceeded", None, 64510, "TRANSIT"),
    Hop(4, "203.0.113.10", "silent", "answered", None, 64511, "RECEIVER"),
)
BLOCKER = Blocker(
    "isp",
    "drop",
    2,
    "198.18.1.1",
    "edge1.isp.example",
    64500,
    "ISP",
    ("Port 25 is dropped after hop 2.",),
    "ipv4",
    "mx.alpha.example",
)
PATH = PathReport(
    (Trace("ipv4", "mx.alpha.example", "203.0.113.10", 587, 4, HOPS),),
    BLOCKER,
    (),
    {"ipv4": BLOCKER},
)


def blocked_report(path: PathReport | None = PATH) -> Report:
    results = [r for p in PROVIDERS for r in (dropped(p), *healthy(p))]
    return replace(report_for(results), path=path)


def test_json_carries_the_path_and_validates() -> None:
    doc = json.loads(render("json", blocked_report()))
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert doc["path"]["blocker"] == {
        "where": "isp",
        "how": "drop",
        "hop": 2,
        "address": "198.18.1.1",
        "name": "edge1.isp.example",
        "asn": 64500,
        "as_name": "ISP",
        "evidence": ["Port 25 is dropped after hop 2."],
    }
    assert doc["path"]["traces"][0]["distance"] == 4
    assert len(doc["path"]["traces"][0]["hops"]) == 4


def test_an_untraced_report_has_an_empty_path() -> None:
    doc = json.loads(render("json", blocked_report(None)))
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert doc["path"] == {"traces": [], "blocker": None, "notes": []}


def test_table_has_one_where_line_and_hops_with_verbose() -> None:
    text = render("table", blocked_report(), width=80)
    where = [line for line in text.splitlines() if line.startswith("Where:")]
    assert len(where) == 1
    assert where[0].startswith("Where: the ISP: port 25 dropped at hop 2 (198.18.1.1")
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "25: silent" not in text
    verbose = render("table", blocked_report(), width=80, verbose=True)
    assert "Path to mx.alpha.example [203.0.113.10]" in verbose
    assert " 2  198.18.1.1 edge1.isp.example AS64500 ISP  25: time-exceeded" in verbose
    assert all(len(line) <= 80 for line in verbose.splitlines())


def test_no_where_line_without_a_blocker() -> None:
    assert "Where:" not in render("table", blocked_report(None), width=80)


def test_markdown_nagios_junit_say_where() -> None:
    report = blocked_report()
    assert "Where: the ISP: port 25 dropped at hop 2" in render("markdown", report)
    assert "Where: the ISP: port 25 dropped at hop 2" in render("nagios", report)
    junit = render("junit", report)
    assert '<property name="path.where" value="isp" />' in junit
    assert '<property name="path.hop" value="2" />' in junit


def test_openmetrics_block_hop_and_one_hot_blocker() -> None:
    text = render("openmetrics", blocked_report())
    got = samples(text)
    assert got["portprobe_block_hop"] == [({"family": "ipv4"}, 2.0)]
    on = [labels for labels, value in got["portprobe_blocker"] if value == 1]
    assert on == [{"where": "isp", "how": "drop"}]
    assert len(got["portprobe_blocker"]) == 24
    promtool(text)
    none = samples(render("openmetrics", blocked_report(None)))
    assert "portprobe_block_hop" not in none
    assert all(value == 0 for _, value in none["portprobe_blocker"])


def test_merge_shows_who_blocks_per_vantage() -> None:
    doc = json.loads(render("json", blocked_report()))
    other = json.loads(render("json", blocked_report(None)))
    fleet = build_fleet([vantage_from_dict(doc, "a.json"), vantage_from_dict(other, "b.json")])
    assert fleet.blockers == {"isp": 1}
    table = render_fleet("table", fleet)
    assert "Stopped by" in table and "isp (drop, hop 2, AS64500)" in table
    data = json.loads(render_fleet("json", fleet))["fleet"]
    assert data["vantages"][0]["blocker"]["where"] == "isp"
    assert data["vantages"][1]["blocker"] is None


def test_merge_ignores_a_junk_blocker() -> None:
    doc = json.loads(render("json", blocked_report()))
    doc["path"]["blocker"]["where"] = "\x1b[31mevil"
    assert vantage_from_dict(doc, "x.json").blocker is None
