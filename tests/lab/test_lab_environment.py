"""Where am I running, end to end: the installed CLI in the lab with a fake ``--sysfs``.

In the "dropped" (port 25 silently dropped) and "open" (nothing blocked) scenarios, the
report's ``environment`` must name the platform of the fake DMI tree with its evidence,
turn the verdict into that platform's step (AWS's form, Google Cloud's "never", no 465 on
Hetzner Cloud), hold the documented policy against the measurement (port 25 open on
Google Cloud is unexpected, on AWS it means the limit was lifted), and show up in the
Markdown ("Running on: …") and JUnit (a property) outputs. ``--platform`` overrides;
bad ``--sysfs``/``--platform`` values are one line and exit 2.

Every run gets a clean environment (``env -i``) so the CI system of the machine running
the tests never leaks into the report; CI variables are given where a test needs them.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import Report, matches, portprobe_argv
from .netlab import Lab

pytestmark = pytest.mark.lab

SYSFS = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs"
CLEAN_ENV = ("env", "-i", f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}", "LANG=C.UTF-8")
GITHUB_HOSTED = {"GITHUB_ACTIONS": "true", "CI": "true", "RUNNER_ENVIRONMENT": "github-hosted"}

Run = Callable[..., Report]


def _argv(lab: Lab, args: tuple[str, ...], environ: dict[str, str], fmt: str | None) -> list[str]:
    argv = portprobe_argv(lab, *args)
    if fmt is not None:  # the harness asks for --json; this run wants another format
        argv = [a for a in argv if a != "--json"] + ["--format", fmt]
    return [*CLEAN_ENV, *(f"{k}={v}" for k, v in environ.items()), *argv]


@pytest.fixture(scope="module")
def run(lab: Lab, portprobe_installed: None) -> Iterator[Run]:
    """portprobe in ``scenario`` with ``args`` (and CI ``environ``), run once per case."""
    cache: dict[tuple[Any, ...], Report] = {}

    def get(
        scenario: str,
        *args: str,
        environ: dict[str, str] | None = None,
        fmt: str | None = None,
    ) -> Report:
        environ = environ or {}
        key = (scenario, args, tuple(sorted(environ.items())), fmt)
        if key not in cache:
            lab.switch(scenario)
            argv = _argv(lab, args, environ, fmt)
            proc = lab.run_client(argv, timeout=120)
            data: dict[str, Any] = {}
            if fmt is None:
                try:
                    data = json.loads(proc.stdout)
                except ValueError:
                    data = {}
            report = Report(argv, proc.returncode, data, proc.stderr)
            report.extra["stdout"] = proc.stdout
            cache[key] = report
        return cache[key]

    yield get


def environment(report: Report) -> dict[str, Any]:
    env = report.data.get("environment")
    assert isinstance(env, dict), f"no environment object\n{report.summary()}"
    return env


def sysfs(tree: str) -> tuple[str, str]:
    return ("--sysfs", str(SYSFS / tree))


# -- port 25 dropped ------------------------------------------------------------------


def test_dropped_on_aws_names_the_request_form(run: Run) -> None:
    report = run("dropped", *sysfs("aws"))
    why = report.summary()
    assert (report.exit_code, report.verdict["port25"]) == (3, "blocked"), why
    env = environment(report)
    assert (env["platform"], env["ci"], env["profile"]) == ("aws", None, "aws"), env
    assert {"source": "dmi:sys_vendor", "value": "Amazon EC2", "indicates": "aws"} in env[
        "evidence"
    ]
    assert not any("uuid" in c["source"] for c in env["evidence"])  # root-only: never read
    platform_advice = "\n".join(env["advice"])
    assert "Request to remove email sending limitations" in platform_advice, env
    assert "https://docs.aws.amazon.com/" in platform_advice
    # The platform's own step replaces the generic "ask the cloud provider" line.
    generic = "\n".join(report.verdict["advice"])
    assert not matches(r"ask the ISP \(or cloud provider\) to lift", generic), generic


def test_dropped_on_hetzner_never_suggests_465(run: Run) -> None:
    report = run("dropped", *sysfs("hetzner"))
    assert report.verdict["port25"] == "blocked", report.summary()
    env = environment(report)
    assert env["platform"] == "hetzner"
    assert any(a.startswith("Ports 587 and 2525 are not blocked on Hetzner") for a in env["advice"])
    assert any("reportedly" in a for a in env["advice"])  # the source is not primary
    for line in report.verdict["advice"]:
        assert "465" not in line, line
    # In the lab 465 answers: Hetzner's documented block of 465 did not happen here.
    assert any(n.startswith("Unexpected") and "465" in n for n in env["notes"]), env["notes"]


def test_dropped_on_gcp_says_it_is_never_lifted(run: Run) -> None:
    env = environment(run("dropped", *sysfs("gcp")))
    assert env["platform"] == "gcp"
    assert matches(r"never lifts.*587, 465 or 2525", env["advice"][0]), env["advice"]


def test_dropped_on_a_github_hosted_runner(run: Run) -> None:
    report = run("dropped", *sysfs("azure"), environ=GITHUB_HOSTED)
    env = environment(report)
    assert (env["platform"], env["ci"], env["ci_hosted"]) == ("azure", "github-actions", True)
    assert env["profile"] == "github-hosted"
    sources = {c["source"] for c in env["evidence"]}
    assert {"dmi:chassis_asset_tag", "env:GITHUB_ACTIONS", "env:RUNNER_ENVIRONMENT"} <= sources
    assert matches(r"reportedly blocks.*self-hosted runner", env["advice"][0])


def test_dropped_on_physical_hardware_keeps_the_generic_advice(run: Run) -> None:
    report = run("dropped", *sysfs("baremetal"))
    env = environment(report)
    assert (env["platform"], env["label"], env["advice"]) == ("unknown", None, [])
    assert {"source": "dmi:sys_vendor", "value": "Dell Inc.", "indicates": "no known platform"} in (
        env["evidence"]
    )
    assert matches(
        r"ask the ISP \(or cloud provider\) to lift", "\n".join(report.verdict["advice"])
    )


def test_dropped_junit_carries_the_platform(run: Run) -> None:
    report = run("dropped", *sysfs("aws"), fmt="junit")
    assert report.exit_code == 3, report.stderr
    root = ET.fromstring(report.extra["stdout"])
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props.get("environment.platform") == "aws", props


# -- nothing blocked --------------------------------------------------------------------


def test_open_on_gcp_is_unexpected(run: Run) -> None:
    report = run("open", *sysfs("gcp"))
    assert (report.exit_code, report.verdict["port25"]) == (0, "open"), report.summary()
    env = environment(report)
    assert env["platform"] == "gcp"
    assert any(n.startswith("Unexpected") and "VPN" in n for n in env["notes"]), env["notes"]


def test_open_on_aws_means_the_limit_was_lifted(run: Run) -> None:
    env = environment(run("open", *sysfs("aws")))
    assert any("lifted for this account" in n for n in env["notes"]), env["notes"]
    assert not any(n.startswith("Unexpected") for n in env["notes"])


def test_open_with_platform_override(run: Run) -> None:
    report = run("open", *sysfs("baremetal"), "--platform", "azure:payg")
    assert report.exit_code == 0, report.summary()
    env = environment(report)
    assert (env["platform"], env["profile"], env["variant"]) == ("azure", "azure", "payg")
    assert env["evidence"][0] == {
        "source": "--platform",
        "value": "azure:payg",
        "indicates": "azure",
    }
    assert any("lifted for this account" in n for n in env["notes"])


def test_open_markdown_says_where_it_runs(run: Run) -> None:
    report = run("open", *sysfs("hetzner"), fmt="markdown")
    assert report.exit_code == 0, report.stderr
    assert "Running on: Hetzner Cloud" in report.extra["stdout"], report.extra["stdout"]


def test_open_table_says_where_it_runs(run: Run) -> None:
    report = run("open", *sysfs("scaleway"), fmt="table")
    assert report.exit_code == 0, report.stderr
    assert "Running on: Scaleway" in report.extra["stdout"]


# -- bad input: one line, exit 2, before any probe ---------------------------------------


def test_sysfs_that_is_not_a_directory(run: Run) -> None:
    not_a_dir = str(SYSFS / "aws" / "class" / "dmi" / "id" / "sys_vendor")
    report = run("open", "--sysfs", not_a_dir)
    assert report.exit_code == 2
    lines = report.stderr.strip().splitlines()
    assert len(lines) == 1 and not_a_dir in lines[0], report.stderr
    assert "Traceback" not in report.stderr


def test_unknown_platform_lists_the_known_names(run: Run) -> None:
    report = run("open", *sysfs("aws"), "--platform", "heroku")
    assert report.exit_code == 2
    lines = report.stderr.strip().splitlines()
    assert len(lines) == 1, report.stderr
    assert "heroku" in lines[0] and "aws" in lines[0] and "azure:payg" in lines[0]
