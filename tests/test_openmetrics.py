"""``--format openmetrics``: real parsers (prometheus_client, promtool) read what we write.

Every verdict's report goes through prometheus_client's OpenMetrics parser and, where the
Debian ``prometheus`` package is installed, ``promtool check metrics`` (the Prometheus text
parser node_exporter's textfile collector shares, plus its naming lint).
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from portprobe.environment.model import Environment
from portprobe.outcome import Report
from portprobe.readiness.model import Readiness
from portprobe.render import render
from portprobe.render.openmetrics import label_value, render_openmetrics
from portprobe.vocab import VERDICTS
from tests.builders import dns_error, dropped, healthy, open_, rejected
from tests.builders import typed_report_for as report_for
from tests.test_verdict import BY_ID

#: One scenario per verdict word, from the verdict's own table.
BY_VERDICT = {
    "open": "open-everywhere",
    "blocked": "blocked-dropped",
    "intercepted": "intercepted-masked-greeting",
    "restricted": "restricted-spamhaus",
    "partial": "partial-providers-disagree",
    "inconclusive": "inconclusive-single-target-no-control",
    "offline": "offline-nothing-connects-dns-fails",
}
REQUIRED = {
    "portprobe_verdict",
    "portprobe_family_verdict",
    "portprobe_port_reachable",
    "portprobe_probe_success",
    "portprobe_probe_duration_seconds",
    "portprobe_run_duration_seconds",
    "portprobe_last_run_timestamp_seconds",
    "portprobe_info",
}


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
            assert s.timestamp is None, "node_exporter skips a whole file with a timestamp"
    return out


def promtool(text: str) -> None:
    if shutil.which("promtool") is None:
        return
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("verdict", VERDICTS)
def test_every_verdict_parses_and_is_one_hot(verdict: str) -> None:
    report = report_for(BY_ID[BY_VERDICT[verdict]].results)
    assert report.verdict.port25 == verdict
    text = render("openmetrics", report)
    assert text.endswith("# EOF\n")
    got = samples(text)
    assert set(got) >= REQUIRED
    one_hot = {labels["verdict"]: value for labels, value in got["portprobe_verdict"]}
    assert set(one_hot) == set(VERDICTS)
    assert [w for w, v in one_hot.items() if v == 1] == [verdict]
    for fam in ("ipv4", "ipv6"):
        mine = [labels for labels, v in got["portprobe_family_verdict"] if labels["family"] == fam]
        assert (
            sum(v for labels, v in got["portprobe_family_verdict"] if labels["family"] == fam) == 1
        )
        assert len(mine) == 9
    promtool(text)


def test_values_follow_the_report() -> None:
    report = report_for(BY_ID["blocked-dropped"].results)
    got = samples(render_openmetrics(report))
    reach = {(lb["port"], lb["family"]): v for lb, v in got["portprobe_port_reachable"]}
    assert reach == {("25", "ipv4"): 0, ("465", "ipv4"): 1, ("587", "ipv4"): 1}
    success = {(lb["host"], lb["port"]): v for lb, v in got["portprobe_probe_success"]}
    assert success[("mx.alpha.example", "25")] == 0
    assert success[("smtp.alpha.example", "587")] == 1
    durations = {(lb["host"], lb["port"]): v for lb, v in got["portprobe_probe_duration_seconds"]}
    assert durations[("mx.alpha.example", "25")] == pytest.approx(5.0)  # base unit: seconds
    expiry = {
        (lb["host"], lb["port"]): v for lb, v in got["portprobe_tls_cert_expiry_timestamp_seconds"]
    }
    assert expiry[("smtp.alpha.example", "465")] == 1798761600  # 2027-01-01T00:00:00Z
    assert got["portprobe_run_duration_seconds"][0][1] == pytest.approx(7.25)
    assert got["portprobe_last_run_timestamp_seconds"][0][1] == report.finished_at.timestamp()
    [(info, value)] = got["portprobe_info"]
    assert info == {"version": "0.1.0", "platform": "unknown"} and value == 1


def test_one_series_per_label_set_even_with_several_addresses() -> None:
    # Two A records of one host: the series must not repeat (a parser rejects duplicates).
    a = open_("alpha", 25)
    b = replace(a, spec=replace(a.spec, address="192.0.2.250"))
    report = report_for([a, b, *healthy("alpha"), dropped("bravo"), *healthy("bravo")])
    text = render_openmetrics(report)
    got = samples(text)
    keys = [tuple(sorted(lb.items())) for lb, _ in got["portprobe_probe_success"]]
    assert len(keys) == len(set(keys))
    promtool(text)


@pytest.mark.parametrize(("ready", "value"), [("yes", 1), ("no", 0), ("unknown", None)])
def test_ready_is_absent_when_unknown(ready: str, value: int | None) -> None:
    readiness = Readiness(ready=ready, public_addresses={"ipv4": ("198.51.100.7",)})  # type: ignore[arg-type]
    report = report_for(BY_ID["open-everywhere"].results, readiness=readiness)
    got = samples(render_openmetrics(report))
    if value is None:
        assert "portprobe_ready" not in got
    else:
        assert got["portprobe_ready"] == [({}, value)]
    state = {lb["ready"]: v for lb, v in got["portprobe_readiness"]}
    assert state == {w: (1 if w == ready else 0) for w in ("yes", "no", "unknown")}


def test_no_readiness_means_no_ready_series() -> None:
    got = samples(render_openmetrics(report_for(BY_ID["open-everywhere"].results)))
    assert "portprobe_ready" not in got and "portprobe_readiness" not in got


def test_platform_from_the_environment() -> None:
    report = report_for(
        BY_ID["blocked-dropped"].results, environment=Environment(platform="gcp", ci=None)
    )
    [(info, _)] = samples(render_openmetrics(report))["portprobe_info"]
    assert info["platform"] == "gcp"


HOSTILE_HOST = 'evil"\\\n\x1b[2J\u202e.example' + "x" * 400


def test_hostile_label_values_are_escaped_visible_and_bounded() -> None:
    probe = open_("evil", 25, host=HOSTILE_HOST, greeting="\x1b]0;pwned\x07")
    report: Report = report_for([probe, *healthy("evil"), dropped("alpha"), *healthy("alpha")])
    text = render_openmetrics(report)
    assert "\x1b" not in text and "\u202e" not in text
    assert all(len(line) < 1000 for line in text.splitlines())
    hosts = {lb["host"] for lb, _ in samples(text)["portprobe_probe_success"]}
    evil = next(h for h in hosts if h.startswith("evil"))
    assert evil.startswith('evil"\\\\x0a\\x1b[2J')  # quote kept, controls made visible
    promtool(text)


def test_label_escapes_follow_the_exposition_format() -> None:
    assert label_value('a"b\\c') == 'a\\"b\\\\c'
    assert "\n" not in label_value("a\nb")  # visible() shows it as \x0a first


def test_no_sample_has_a_timestamp_or_odd_type() -> None:
    text = render_openmetrics(report_for(BY_ID["partial-providers-disagree"].results))
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            assert line.endswith(" gauge")
        elif not line.startswith("#"):
            assert re.fullmatch(r"portprobe_[a-z_]+(\{.*\})? \S+", line), line


def test_rejected_probe_is_not_success() -> None:
    refused = rejected("alpha", 554, "5.7.1 go away")
    report = report_for([refused, *healthy("alpha"), dropped("bravo"), *healthy("bravo")])
    got = samples(render_openmetrics(report))
    success = {(lb["provider"], lb["port"]): v for lb, v in got["portprobe_probe_success"]}
    assert success[("alpha", "25")] == 0
    reach = {(lb["port"], lb["family"]): v for lb, v in got["portprobe_port_reachable"]}
    assert reach[("25", "ipv4")] == 1  # it connected


# --- contrib: what ships beside the format -------------------------------------------------

CONTRIB = Path(__file__).resolve().parent.parent / "contrib"


def test_alert_rules_load_and_name_the_blocked_verdict() -> None:
    rules_file = CONTRIB / "prometheus" / "portprobe-alerts.yml"
    doc = yaml.safe_load(rules_file.read_text())
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    assert rules["Port25Blocked"]["expr"] == 'portprobe_verdict{verdict="blocked"} == 1'
    names = set(samples(render_openmetrics(report_for(BY_ID["open-everywhere"].results))))
    names |= {"portprobe_ready", "portprobe_tls_cert_expiry_timestamp_seconds"}
    for rule in rules.values():  # every metric a rule reads is one we write
        for metric in re.findall(r"portprobe_[a-z_]+", rule["expr"]):
            assert metric in names, (rule["alert"], metric)
    if shutil.which("promtool"):
        proc = subprocess.run(
            ["promtool", "check", "rules", str(rules_file)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_systemd_units_write_the_textfile_every_15_minutes() -> None:
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read(CONTRIB / "systemd" / "portprobe.service")
    argv = shlex.split(service["Service"]["ExecStart"])
    assert argv[1:3] == ["--format", "openmetrics"]
    assert argv[argv.index("-o") + 1].endswith("/textfile_collector/portprobe.prom")
    # Verdict exit codes are not unit failures (spec: 3 blocked ... 8 offline).
    assert service["Service"]["SuccessExitStatus"].split() == ["3", "4", "5", "6", "7", "8"]
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.read(CONTRIB / "systemd" / "portprobe.timer")
    assert timer["Timer"]["OnCalendar"] == "*:0/15"
    if shutil.which("systemd-analyze"):
        proc = subprocess.run(
            ["systemd-analyze", "calendar", timer["Timer"]["OnCalendar"]],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0 and "*-*-* *:00/15:00" in proc.stdout, proc.stdout


def _rules_test(text: str, tmp_path: Path, fired: list[str]) -> None:
    """``promtool test rules``: fed our exposition as series, exactly ``fired`` alerts fire."""
    rules_file = CONTRIB / "prometheus" / "portprobe-alerts.yml"
    rules = {
        r["alert"]: r for g in yaml.safe_load(rules_file.read_text())["groups"] for r in g["rules"]
    }
    series: list[dict[str, str]] = []
    by_name: dict[str, list[dict[str, str]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            series.append({"series": f"{s.name}{{{labels}}}", "values": f"{s.value:g}x120"})
            if s.value == 1 and s.name == "portprobe_verdict":
                by_name.setdefault(s.name, []).append(dict(s.labels))

    def annotations(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
        return {
            k: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), v)
            for k, v in rule.get("annotations", {}).items()
        }

    tests = []
    for name, rule in rules.items():
        expected = []
        if name in fired:
            [labels] = by_name["portprobe_verdict"]
            expected.append(
                {
                    "exp_labels": {**labels, **rule["labels"]},
                    "exp_annotations": annotations(rule, labels),
                }
            )
        tests.append({"eval_time": "90m", "alertname": name, "exp_alerts": expected})
    spec = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": tests}],
    }
    path = tmp_path / "rules-test.yml"
    path.write_text(yaml.safe_dump(spec))
    proc = subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
@pytest.mark.parametrize(
    ("verdict", "fired"),
    [
        ("blocked", ["Port25Blocked"]),
        ("intercepted", ["Port25Intercepted"]),
        ("partial", ["Port25Restricted"]),
        ("open", []),
    ],
)
def test_alert_rules_fire_on_our_own_metrics(
    verdict: str, fired: list[str], tmp_path: Path
) -> None:
    report = report_for(BY_ID[BY_VERDICT[verdict]].results)
    _rules_test(render_openmetrics(report), tmp_path, fired)


def test_nothing_is_emitted_for_probes_never_tried() -> None:
    # Issue 25: after a DNS failure the per-probe series carried family="none" and a 0 s
    # duration; a name that did not resolve was never probed, so it has no series at all.
    report = report_for([dns_error("gone", 25), dns_error("gone", 587), *healthy("own")])
    text = render_openmetrics(report)
    assert 'family="none"' not in text
    got = samples(text)
    hosts = {lb["host"] for lb, _ in got["portprobe_probe_success"]}
    assert hosts == {"smtp.own.example"}
    timed = {(lb["host"], lb["port"]) for lb, _ in got["portprobe_probe_duration_seconds"]}
    assert timed == {("smtp.own.example", "587"), ("smtp.own.example", "465")}
    assert all(v > 0 for _, v in got["portprobe_probe_duration_seconds"])
    promtool(text)


def test_nothing_resolved_keeps_the_verdict_and_run_series_only() -> None:
    report = report_for([dns_error("gone", 25), dns_error("gone", 587)])
    text = render_openmetrics(report)
    got = samples(text)
    assert "portprobe_probe_success" not in got
    assert "portprobe_probe_duration_seconds" not in got
    assert {"portprobe_verdict", "portprobe_run_duration_seconds", "portprobe_info"} <= set(got)
    promtool(text)
