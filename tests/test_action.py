"""``action.yml``: the composite action's own steps, run in bash as the runner would.

The test reads the action with a YAML parser, resolves each step's ``${{ inputs.* }}`` and
``${{ steps.*.outputs.* }}`` env the way GitHub does, and runs each ``run:`` script with
``bash --noprofile --norc -eo pipefail`` (GitHub's bash invocation), each step with its
own ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY`` / ``GITHUB_PATH`` pointing at temporary
files. The step's ``PATH`` holds uv and the few programs the scripts call, and no python:
the action must not need the runner's. The ``uses:`` step (setup-uv) is not run; the real
uv stands in for it. The install step runs for real, offline (``UV_OFFLINE=1`` on the cache
``uv sync`` filled: tests reach no index), into a venv of its own. Probes go to loopback
aiosmtpd servers only (``--target 127.0.0.1`` plus ``--port-map``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers import Certs, aiosmtpd_server, make_certs
from tests.test_packaging import UV, offline_env

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPRESSION = re.compile(
    r"\$\{\{\s*(?:inputs\.([A-Za-z0-9_-]+)|steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+))\s*\}\}"
)
#: What the scripts call besides bash's builtins and uv.
PROGRAMS = ("bash", "mkdir", "rm", "cat", "grep", "sed", "tail")

pytestmark = pytest.mark.skipif(UV is None, reason="uv is not installed")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("action-certs"))


@pytest.fixture(scope="module")
def mail_host(certs: Certs) -> Iterator[str]:
    ctx = certs.server_context()
    with (
        aiosmtpd_server(starttls=ctx) as p25,
        aiosmtpd_server(implicit_tls=ctx) as p465,
        aiosmtpd_server(starttls=ctx) as p587,
    ):
        yield (
            f"--target 127.0.0.1 --port-map=25={p25} --port-map=465={p465} "
            f"--port-map=587={p587} --ca-file={certs.ca_file} --timeout 10"
        )


def python_here() -> str:
    """The interpreter for the ``python-version`` input: uv may not download one here, and
    the step's PATH has no python to find, so the harness names it by path."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def inputs_with(**given: str) -> dict[str, str]:
    values = {k: str(v.get("default", "")) for k, v in ACTION["inputs"].items()}
    values["python-version"] = python_here()
    values.update({k.replace("_", "-"): v for k, v in given.items()})
    return values


def resolve(text: str, inputs: dict[str, str], outputs: dict[str, dict[str, str]]) -> str:
    def value(m: re.Match[str]) -> str:
        if m.group(1):
            return inputs[m.group(1)]
        return outputs.get(m.group(2), {}).get(m.group(3), "")

    return EXPRESSION.sub(value, text)


def parse_output(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def bare_path(tmp_path: Path) -> str:
    """A PATH with uv and PROGRAMS only (no python, no pip)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    assert UV is not None
    (tools / "uv").symlink_to(UV)
    for name in PROGRAMS:
        found = shutil.which(name)
        assert found is not None, name
        (tools / name).symlink_to(found)
    return str(tools)


def run_action(
    tmp_path: Path,
    inputs: dict[str, str],
    prefix: Sequence[str] = (),
    *,
    installed: dict[str, str] | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """Run every ``run:`` step in order; stop at the first failing one, as the runner does.

    ``prefix`` runs each step inside something (the lab's client namespace); the step's
    environment is exactly the one built here (``env -i``), as on a fresh runner.
    ``installed``: the install step's outputs from an earlier run, to skip installing again;
    ``until``: the id of the last step to run.
    """
    gh = tmp_path / "gh"
    gh.mkdir()
    summary, github_path = gh / "summary", gh / "path"
    for f in (summary, github_path):
        f.write_text("")
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    base = {
        **offline_env(tmp_path, path=bare_path(tmp_path)),
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_PATH": str(github_path),
        "RUNNER_TEMP": str(runner_temp),
    }
    outputs: dict[str, dict[str, str]] = {}
    if installed is not None:
        outputs["install"] = installed
    steps = []
    for number, step in enumerate(ACTION["runs"]["steps"]):
        if "uses" in step or (installed is not None and step.get("id") == "install"):
            continue
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "inputs must reach the script through env"
        script = tmp_path / f"step-{number}.sh"
        script.write_text(step["run"])
        output = gh / f"output-{number}"
        output.write_text("")
        env = {
            **base,
            "GITHUB_OUTPUT": str(output),
            **{k: resolve(str(v), inputs, outputs) for k, v in (step.get("env") or {}).items()},
        }
        proc = subprocess.run(
            [
                *prefix,
                "env",
                "-i",
                *(f"{k}={v}" for k, v in env.items()),
                "bash",
                "--noprofile",
                "--norc",
                "-eo",
                "pipefail",
                str(script),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        steps.append(proc)
        outputs[step.get("id", str(number))] = parse_output(output)
        if proc.returncode != 0 or step.get("id") == until:
            break
    return {
        "steps": steps,
        "step_outputs": outputs,
        "outputs": {
            name: resolve(out["value"], inputs, outputs) for name, out in ACTION["outputs"].items()
        },
        "summary": summary.read_text(),
        "path": github_path.read_text(),
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The install step, run once for real (offline) for the tests of the run step."""
    tmp_path = tmp_path_factory.mktemp("action-install")
    result = run_action(tmp_path, inputs_with(), until="install")
    install = result["steps"][0]
    assert install.returncode == 0, install.stdout + install.stderr
    return dict(result["step_outputs"]["install"])


def test_metadata_declares_the_contract() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert set(ACTION["inputs"]) >= {"expect", "ports", "args", "python-version"}
    assert {"verdict", "report", "exit-code", "portprobe"} <= set(ACTION["outputs"])
    for name, out in ACTION["outputs"].items():
        step = "install" if name == "portprobe" else "run"
        assert out["value"] == f"${{{{ steps.{step}.outputs.{name} }}}}"
    assert all(
        step.get("shell") == "bash" for step in ACTION["runs"]["steps"] if "uses" not in step
    )


def locked_versions() -> dict[str, str]:
    """uv.lock's runtime packages (portprobe's dependencies, not the dev group)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {p["name"]: p for p in lock["package"]}
    wanted, todo = {}, [d["name"] for d in packages["portprobe-smtp"]["dependencies"]]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted[name] = packages[name]["version"]
            todo += [d["name"] for d in packages[name].get("dependencies", [])]
    return wanted


def test_install_step_installs_the_locked_set_for_real(installed: dict[str, str]) -> None:
    bin_dir = Path(installed["bin"])
    assert installed["portprobe"] == str(bin_dir / "portprobe")
    version = subprocess.run(
        [installed["portprobe"], "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("portprobe "), version.stderr
    listing = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import importlib.metadata as m\n"
            "for d in m.distributions(): print(d.metadata['Name'], d.version)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    present = {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in (line.split() for line in listing.stdout.splitlines())
    }
    locked = locked_versions()
    # Every locked runtime package that applies here is installed at its locked version,
    # and nothing else is there but portprobe itself.
    assert {k: v for k, v in present.items() if k != "portprobe-smtp"} == {
        k: v for k, v in locked.items() if k in present
    }
    assert {"trio", "dnspython", "typer", "tabulate", "cryptography"} <= set(present)
    assert "pytest" not in present  # the dev group stays out


def test_nothing_goes_on_the_jobs_path(tmp_path: Path, installed: dict[str, str]) -> None:
    result = run_action(tmp_path, inputs_with(ports="25", args="--bogus"), installed=installed)
    assert result["path"] == ""


def test_expectation_met(tmp_path: Path, mail_host: str, installed: dict[str, str]) -> None:
    result = run_action(
        tmp_path,
        inputs_with(expect="open", ports="25,465,587", args=mail_host),
        installed=installed,
    )
    (run,) = result["steps"]
    assert run.returncode == 0, run.stdout + run.stderr
    out = result["outputs"]
    assert out["verdict"] == "open" and out["exit-code"] == "0"
    assert out["portprobe"] == installed["portprobe"]
    report = Path(out["report"])
    assert report.is_file() and '"port25": "open"' in report.read_text()
    summary = result["summary"]
    assert summary.startswith("### portprobe: 1 vantage point: 1 open")
    assert "| Vantage |" in summary and "**Reasons**" in summary
    assert "::error" not in run.stdout


def test_expectation_missed_fails_the_step_with_an_annotation(
    tmp_path: Path, mail_host: str, installed: dict[str, str]
) -> None:
    result = run_action(
        tmp_path,
        inputs_with(expect="blocked", ports="25,465,587", args=mail_host),
        installed=installed,
    )
    run = result["steps"][-1]
    assert run.returncode != 0
    assert re.search(
        r"^::error title=portprobe::port 25 check failed: assertion failed: "
        r"port-25 verdict is open, expected blocked$",
        run.stdout,
        re.MULTILINE,
    ), run.stdout
    assert result["outputs"]["verdict"] == "open" and result["outputs"]["exit-code"] == "9"
    assert "1 open" in result["summary"]  # the summary is written even when the step fails


def test_no_expectation_reports_and_passes(
    tmp_path: Path, mail_host: str, installed: dict[str, str]
) -> None:
    result = run_action(tmp_path, inputs_with(ports="25,587", args=mail_host), installed=installed)
    run = result["steps"][-1]
    assert run.returncode == 0, run.stderr
    assert result["outputs"]["verdict"] in ("open", "inconclusive")
    assert "| 25 | 587 |" in result["summary"] and "465" not in result["summary"].split("\n")[2]


def test_bad_input_is_an_error_annotation_not_a_verdict(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    result = run_action(
        tmp_path, inputs_with(ports="25,80", args="--target 127.0.0.1"), installed=installed
    )
    run = result["steps"][-1]
    assert run.returncode == 2
    assert "::error title=portprobe::portprobe could not run (exit 2)" in run.stdout
    assert result["outputs"]["verdict"] == "" and result["outputs"]["report"] == ""


def test_args_are_not_shell_code(tmp_path: Path, mail_host: str, installed: dict[str, str]) -> None:
    marker = tmp_path / "pwned"
    result = run_action(
        tmp_path,
        inputs_with(ports="25", args=f"{mail_host} $(touch {marker}) *"),
        installed=installed,
    )
    assert not marker.exists()
    assert result["steps"][-1].returncode == 2  # "$(touch" is an unknown argument to portprobe
