"""The JSON report: shape (validated against reports/report.schema.json), summary, exit codes."""

from __future__ import annotations

import ast
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portprobe.model import Plan
from portprobe.report import (
    EXIT_CODES,
    annotate,
    build_report,
    check_assertions,
    decide,
    exit_code,
)
from portprobe.report.build import iso_utc
from portprobe.report.verdict import VERDICTS
from tests.builders import (
    PARAMETERS,
    PROVIDERS,
    T0,
    T1,
    dnsq,
    dropped,
    healthy,
    no_banner,
    open_,
    prohibited,
    rejected,
    report_for,
    reset,
    tls,
)
from tests.test_verdict import BY_ID, CASES, Case

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "reports" / "report.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def validate(report: dict[str, Any]) -> None:
    errors = sorted(VALIDATOR.iter_errors(report), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_scenario_report_validates(case: Case) -> None:
    report = report_for(case.results, case.dns)
    validate(report)
    assert report["verdict"]["port25"] == case.port25
    # The shape is fixed: all four ports, every key, even when untested.
    assert set(report["ports"]) >= {"25", "465", "587", "2525"}


def test_interrupted_report_validates_and_exits_130() -> None:
    report = report_for([], interrupted=True)
    validate(report)
    assert report["interrupted"] is True
    assert any("Interrupted" in n for n in report["notes"])
    assert exit_code(report, None) == 130
    assert exit_code(report, "port 25 was not probed") == 130


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.pop("verdict"),
        lambda r: r["verdict"].update(port25="maybe"),
        lambda r: r["verdict"]["families"].update(ipv6="sometimes"),
        lambda r: r.update(schema_version=2),
        lambda r: r.update(started_at="2026-11-29 00:00:00"),
        lambda r: r["probes"][0].update(state="weird"),
        lambda r: r["probes"][0].pop("greeting"),
        lambda r: r["probes"][0]["timings_ms"].update(connect="fast"),
        lambda r: r["ports"].pop("2525"),
        lambda r: r["ports"]["25"].update(state="perhaps"),
        lambda r: r["probes"][0].update(anomalies=["Not Kebab"]),
    ],
)
def test_schema_rejects_a_broken_report(mutate: Any) -> None:
    report = report_for(BY_ID["open-everywhere"].results)
    validate(report)
    mutate(report)
    assert list(VALIDATOR.iter_errors(report))


def test_schema_documents_every_top_level_key() -> None:
    report = report_for(BY_ID["open-everywhere"].results)
    assert set(report) == set(SCHEMA["properties"]) == set(SCHEMA["required"])
    readme = (ROOT / "reports" / "README.md").read_text()
    for key in SCHEMA["properties"]:
        assert f"`{key}`" in readme, key


def test_top_level_fields() -> None:
    report = report_for(BY_ID["blocked-dropped"].results, [dnsq("alpha.example")])
    assert report["schema_version"] == 1
    assert report["tool"] == {"name": "portprobe", "version": "0.1.0"}
    assert report["started_at"] == "2026-11-29T00:00:00.000Z"
    assert report["finished_at"] == "2026-11-29T00:00:07.250Z"
    assert report["duration_ms"] == 7250.0
    assert report["parameters"] == PARAMETERS
    assert report["dns"][0]["outcome"] == "ok"
    assert report["summary"]["probes"] == len(report["probes"]) == 9
    assert report["summary"]["states"] == {"filtered": 3, "open": 6}


def test_times_are_utc_with_z() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5, 678_000)
    assert iso_utc(naive) == "2026-01-02T03:04:05.678Z"
    from datetime import timedelta, timezone

    cet = datetime(2026, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert iso_utc(cet) == "2026-01-02T03:04:05.000Z"


def test_ports_summary_for_a_block() -> None:
    ports = report_for(BY_ID["blocked-dropped"].results)["ports"]
    assert ports["25"] == {
        "tested": True,
        "reachable": False,
        "greeting_ok": False,
        "genuine": False,
        "tls_ok": None,
        "state": "filtered",
        "counts": {"probes": 3, "reachable": 0, "greeting_ok": 0, "genuine": 0, "tls_ok": 0},
    }
    assert ports["587"]["state"] == "open" and ports["587"]["tls_ok"] is True
    assert ports["2525"]["tested"] is False and ports["2525"]["state"] == "untested"


@pytest.mark.parametrize(
    ("case_id", "state"),
    [
        ("intercepted-masked-greeting", "intercepted"),
        ("restricted-all-refuse-without-reason", "rejected"),
        ("blocked-mixed", "mixed"),
        ("open-one-provider-down", "open"),
    ],
)
def test_port_state_summary(case_id: str, state: str) -> None:
    assert report_for(BY_ID[case_id].results)["ports"]["25"]["state"] == state


def test_tls_ok_false_when_no_certificate_verified() -> None:
    rs = [open_("alpha", tls_info=tls("mx.alpha.example", verified=False))]
    assert report_for(rs)["ports"]["25"]["tls_ok"] is False


def test_negative_controls_stay_out_of_the_port_summary() -> None:
    report = report_for(BY_ID["intercepted-negative-control-answered"].results)
    assert report["ports"]["25"]["counts"]["probes"] == 3
    neg = [p for p in report["probes"] if p["negative_control"]]
    assert neg and "negative-control-answered" in neg[0]["anomalies"]


def test_cross_probe_anomalies_are_merged_into_probes() -> None:
    case = BY_ID["intercepted-shared-greeting"]
    report = report_for(case.results)
    p25 = [p for p in report["probes"] if p["port"] == 25]
    # The proxy's name is not the hosts' while their 587 greets correctly: both codes.
    expected = ["greeting-name-mismatch", "greeting-shared-across-providers"]
    assert all(sorted(p["anomalies"]) == expected for p in p25)
    assert all(p["genuine"] is False for p in p25)
    assert all(p["anomalies"] == [] for p in report["probes"] if p["port"] != 25)
    assert report["summary"]["anomalies"] == dict.fromkeys(expected, 3)


def test_engine_and_cross_probe_anomalies_are_not_duplicated() -> None:
    r = open_("alpha", greeting="*" * 20, anomalies=("masked-greeting",))
    verdict = decide(annotate([r]))
    report = build_report(
        results=[r],
        plan=Plan(specs=(r.spec,)),
        verdict=verdict,
        parameters=PARAMETERS,
        tool_version="0.1.0",
        started_at=T0,
        finished_at=T1,
        interrupted=False,
    )
    assert report["probes"][0]["anomalies"] == ["masked-greeting"]


def test_greeting_domain_is_added() -> None:
    probe = report_for([open_("alpha")])["probes"][0]
    assert probe["greeting"]["domain"] == "mx.alpha.example"
    assert report_for([dropped("alpha")])["probes"][0]["greeting"] is None


# --- exit codes and assertions ------------------------------------------------------------


def test_exit_codes_are_the_specs() -> None:
    assert EXIT_CODES == {
        "open": 0,
        "blocked": 3,
        "intercepted": 4,
        "restricted": 5,
        "partial": 6,
        "inconclusive": 7,
        "offline": 8,
    }
    assert set(EXIT_CODES) == set(VERDICTS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_exit_code_follows_the_verdict(case: Case) -> None:
    report = report_for(case.results, case.dns)
    assert exit_code(report, None) == EXIT_CODES[case.port25]
    assert exit_code(report, "something failed") == 9
    # An --expect that holds is a pass: exit 0 whatever the verdict (spec).
    assert exit_code(report, None, expect_given=True) == 0
    assert exit_code(report, "expected open", expect_given=True) == 9


def test_assertions_hold() -> None:
    report = report_for(BY_ID["blocked-dropped"].results)
    assert check_assertions(report) is None
    assert check_assertions(report, expect=["blocked", "partial"]) is None
    assert check_assertions(report, require_ports=[587, 465]) is None


def test_expect_fails_with_one_line() -> None:
    report = report_for(BY_ID["blocked-dropped"].results)
    msg = check_assertions(report, expect=["open"])
    assert msg == "port-25 verdict is blocked, expected open"


def test_require_port_fails_and_says_which() -> None:
    report = report_for(BY_ID["blocked-dropped"].results)
    msg = check_assertions(report, expect=["open", "partial"], require_ports=[25, 587, 2525])
    assert msg is not None and "\n" not in msg
    assert "expected open or partial" in msg
    assert "port 25 gave no SMTP greeting on any host (filtered)" in msg
    assert "port 2525 was not probed" in msg
    assert "587" not in msg


def test_require_port_counts_a_2xx_greeting_only() -> None:
    rs = [rejected(p, 554, "Access denied") for p in PROVIDERS]
    rs += [r for p in PROVIDERS for r in healthy(p)]
    assert check_assertions(report_for(rs), require_ports=[25]) is not None


# --- layering -----------------------------------------------------------------------------

FORBIDDEN = {"trio", "socket", "ssl", "dns", "typer", "click"}


@pytest.mark.parametrize("package", ["report", "render"])
def test_report_and_render_import_no_io(package: str) -> None:
    for path in (ROOT / "portprobe" / package).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
                assert not name.startswith(("portprobe.probe", "portprobe.cli")), path.name


# --- property: any mix of outcomes gives a valid verdict and a valid report ---------------

OUTCOMES = {
    "open": open_,
    "dropped": dropped,
    "reset": lambda p, port, **kw: reset(p, port, total_ms=1.0, **kw),
    "prohibited": prohibited,
    "no-banner": no_banner,
    "spamhaus": lambda p, port, **kw: rejected(p, 554, "listed at zen.spamhaus.org", port, **kw),
    "rate-limited": lambda p, port, **kw: rejected(p, 421, "Too many connections", port, **kw),
    "masked": lambda p, port, **kw: open_(
        p, port, greeting="*" * 12, anomalies=("masked-greeting",), **kw
    ),
    "proxy": lambda p, port, **kw: open_(p, port, greeting="proxy.isp.example ESMTP", **kw),
}

probe_specs = st.tuples(
    st.sampled_from(sorted(OUTCOMES)),
    st.sampled_from(["alpha", "bravo", "charlie", "delta"]),
    st.sampled_from([25, 25, 465, 587, 2525]),
    st.sampled_from(["ipv4", "ipv6"]),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(probe_specs, max_size=12),
    st.lists(st.sampled_from(["ok", "nxdomain", "timeout", "servfail"]), max_size=3),
)
def test_any_mix_of_outcomes_decides_and_validates(
    specs: list[tuple[str, str, int, str]], dns: list[str]
) -> None:
    results = [OUTCOMES[kind](p, port, family=fam) for kind, p, port, fam in specs]
    queries = [dnsq(f"d{i}.example", outcome) for i, outcome in enumerate(dns)]
    report = report_for(results, queries)
    validate(report)
    v = report["verdict"]
    assert v["reasons"] and v["advice"]
    assert exit_code(report, None) == EXIT_CODES[v["port25"]]
    families = {f for f in ("ipv4", "ipv6") if any(r.spec.family == f for r in results)}
    for fam in ("ipv4", "ipv6"):
        assert (v["families"][fam] == "untested") == (fam not in families)
    # A verdict that blames port 25 always rests on a port-25 probe that connected or failed.
    if v["port25"] in ("blocked", "intercepted", "restricted"):
        assert any(r.spec.port == 25 for r in results)
    # No network is never called a block.
    if not any(r.connected for r in results):
        assert v["port25"] in ("offline", "inconclusive")
