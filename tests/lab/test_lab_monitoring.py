"""Monitoring formats end to end: the installed CLI in the lab's client namespace.

For the ISP behaviours of ``test_lab_scenarios``: ``--format openmetrics`` through
prometheus_client's parser and ``promtool check metrics``, with the one-hot verdict the
scenario must produce; ``--format nagios`` with the plugin exit code and status line of
each verdict; ``portprobe merge`` over the JSON reports of several scenarios, each one a
vantage point; and the GitHub Action's steps run inside the client namespace.

``--format openmetrics|nagios`` and ``merge`` are wired in ``portprobe/cli.py``; until a
CLI accepts them these tests skip and say so.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from portprobe.exit_codes import NAGIOS_BY_VERDICT
from tests.test_action import inputs_with, run_action
from tests.test_nagios import FIRST, PERF, perfdata
from tests.test_openmetrics import promtool

from .harness import PORTPROBE, Report
from .netlab import Lab
from .test_lab_scenarios import EXPECTED
from .topology import DOMAINS

pytestmark = pytest.mark.lab

SCENARIOS = ["open", "dropped", "reset", "dropped-v4", "isp-relay", "asa", "blocklisted", "no-ipv6"]
STATE_WORD = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def run_format(lab: Lab, fmt: str, *args: str) -> subprocess.CompletedProcess[str]:
    targets = [a for d in DOMAINS for a in ("--domain", d)]
    argv = [
        str(PORTPROBE),
        *targets,
        *args,
        "--nameserver",
        lab.nameserver,
        "--ca-file",
        str(lab.ca_file),
        "--format",
        fmt,
    ]
    proc = lab.run_client(argv, timeout=90)
    if proc.returncode == 2 and "--format" in proc.stderr and "not one of" in proc.stderr:
        pytest.skip(f"this portprobe CLI does not offer --format {fmt} yet: {proc.stderr.strip()}")
    return proc


@pytest.mark.parametrize("name", SCENARIOS)
def test_openmetrics_in_each_scenario(name: str, lab: Lab, portprobe_installed: None) -> None:
    expected = EXPECTED[name]
    lab.switch(name)
    proc = run_format(lab, "openmetrics")
    assert proc.returncode == expected.exit_code, proc.stderr
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in text_string_to_metric_families(proc.stdout):
        for s in fam.samples:
            assert s.timestamp is None
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    hot = [dict(lb)["verdict"] for (n, lb), v in values.items() if n == "portprobe_verdict" and v]
    assert hot == [expected.port25], proc.stdout
    for family, word in expected.families.items():
        key = ("portprobe_family_verdict", (("family", family), ("verdict", word)))
        assert values[key] == 1, (family, word)
    reach25 = {
        dict(lb)["family"]: v
        for (n, lb), v in values.items()
        if n == "portprobe_port_reachable" and dict(lb)["port"] == "25"
    }
    connected = {"open", "rejected", "no-banner", "not-smtp", "tls-error"}
    assert reach25 == {f: (1 if s in connected else 0) for f, s in expected.state25.items()}
    promtool(proc.stdout)


@pytest.mark.parametrize("name", SCENARIOS)
def test_nagios_in_each_scenario(name: str, lab: Lab, portprobe_installed: None) -> None:
    expected = EXPECTED[name]
    lab.switch(name)
    proc = run_format(lab, "nagios")
    code = NAGIOS_BY_VERDICT[expected.port25]
    assert proc.returncode == code, proc.stdout + proc.stderr
    first = proc.stdout.split("\n", 1)[0]
    m = FIRST.fullmatch(first)
    assert m is not None and len(first) < 80, first
    assert m.group(1) == STATE_WORD[code] and f"port 25 {expected.port25}" in m.group(2)
    assert all(PERF.fullmatch(i) for i in perfdata(proc.stdout))


def test_nagios_expect_missed_is_critical(lab: Lab, portprobe_installed: None) -> None:
    lab.switch("open")
    proc = run_format(lab, "nagios", "--expect", "blocked")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.startswith("PORTPROBE CRITICAL - port 25 open, expected blocked")


def test_merge_over_lab_runs(
    tmp_path: Path, scenario_report: Callable[[str], Report], portprobe_installed: None
) -> None:
    names = ["open", "dropped", "asa", "blocklisted", "dropped-v4"]
    for name in names:
        report = scenario_report(name)
        assert report.data, report.summary()
        # Every lab run comes from this one machine; as vantage points of a fleet each
        # scenario stands for a machine of its own, named after it.
        data = {**report.data, "vantage": {**report.data["vantage"], "hostname": name}}
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    merged = subprocess.run(
        [str(PORTPROBE), "merge", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if merged.returncode == 2 and "unexpected extra argument" in merged.stderr:
        pytest.skip("this portprobe CLI has no merge command yet")
    assert merged.returncode == 0, merged.stderr
    fleet = json.loads(merged.stdout)["fleet"]
    got = {v["name"]: v["verdict"]["port25"] for v in fleet["vantages"]}
    assert got == {n: EXPECTED[n].port25 for n in names}
    families = {v["name"]: v["verdict"]["families"] for v in fleet["vantages"]}
    assert families == {n: EXPECTED[n].families for n in names}
    assert fleet["summary"]["verdicts"] == {
        "open": 1,
        "blocked": 1,
        "intercepted": 1,
        "restricted": 1,
        "partial": 1,
    }
    table = subprocess.run(
        [str(PORTPROBE), "merge", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert table.returncode == 0
    assert table.stdout.startswith("5 vantage points: 1 open, 1 blocked, 1 intercepted")
    assert re.search(r"^dropped-v4 .* partial", table.stdout, re.MULTILINE)
    om = subprocess.run(
        [str(PORTPROBE), "merge", str(tmp_path), "--format", "openmetrics"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert om.returncode == 0
    assert len(list(text_string_to_metric_families(om.stdout))) >= 4
    promtool(om.stdout)


@pytest.mark.parametrize(
    ("name", "expect", "ok"), [("dropped", "blocked", True), ("dropped", "open", False)]
)
def test_action_steps_in_the_lab(
    tmp_path: Path, lab: Lab, portprobe_installed: None, name: str, expect: str, ok: bool
) -> None:
    lab.switch(name)
    args = " ".join(
        [
            *(a for d in DOMAINS for a in ("--domain", d)),
            "--nameserver",
            lab.nameserver,
            "--ca-file",
            str(lab.ca_file),
        ]
    )
    result = run_action(tmp_path, inputs_with(expect=expect, args=args), prefix=lab.client_argv([]))
    run = result["steps"][-1]
    assert (run.returncode == 0) is ok, run.stdout + run.stderr
    assert result["outputs"]["verdict"] == "blocked"
    assert (
        json.loads(Path(result["outputs"]["report"]).read_text())["verdict"]["port25"] == "blocked"
    )
    assert "1 blocked" in result["summary"] and "| Vantage |" in result["summary"]
    if not ok:
        assert "::error title=portprobe::port 25 check failed: assertion failed:" in run.stdout
