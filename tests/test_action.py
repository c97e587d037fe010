"""``action.yml``: the composite action's own steps, run in bash as the runner would.

The test reads the action with a YAML parser, resolves each step's ``${{ inputs.* }}``
env the way GitHub does, and runs each ``run:`` script with ``bash --noprofile --norc -eo
pipefail`` (GitHub's bash invocation), ``GITHUB_OUTPUT`` / ``GITHUB_STEP_SUMMARY`` /
``GITHUB_PATH`` pointing at temporary files, and ``GITHUB_PATH`` lines prepended to the
next step's ``PATH``. Probes go to loopback aiosmtpd servers only (``--target 127.0.0.1``
plus ``--port-map``). The install step's ``uv`` is a recording stand-in: installing for
real would reach a package index, and tests speak only to loopback; the stand-in checks
the action installs its own checkout and puts the tool's bin directory on ``PATH``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers import Certs, aiosmtpd_server, make_certs

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
INPUT = re.compile(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}")
UV_STUB = """#!/bin/bash
echo "$*" >> "$UV_STUB_LOG"
case "$1 $2" in
  "tool install") exit 0 ;;
  "tool dir") echo "$UV_STUB_BIN" ;;
  *) echo "unexpected uv call: $*" >&2; exit 99 ;;
esac
"""


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


def inputs_with(**given: str) -> dict[str, str]:
    values = {k: str(v.get("default", "")) for k, v in ACTION["inputs"].items()}
    values.update({k.replace("_", "-"): v for k, v in given.items()})
    return values


def resolve(text: str, inputs: dict[str, str]) -> str:
    return INPUT.sub(lambda m: inputs[m.group(1)], text)


#: A python3 in front of the real one that "installs" uv by pip into a user base: the
#: path the install step takes on a runner without uv.
PYTHON_STUB = """#!/bin/bash
case "$1 $2" in
  "-m pip") echo "pip $*" >> "$UV_STUB_LOG"; mkdir -p "$HOME/.local/bin"
            cp "$UV_STUB_SOURCE" "$HOME/.local/bin/uv" ;;
  "-m site") echo "$HOME/.local" ;;
  *) exec /usr/bin/python3 "$@" ;;
esac
"""


def run_action(
    tmp_path: Path, inputs: dict[str, str], prefix: Sequence[str] = (), *, uv: bool = True
) -> dict[str, Any]:
    """Run every step in order; stop at the first failing one, as the runner does.

    ``prefix`` runs each step inside something (the lab's client namespace); the step's
    environment is exactly the one built here (``env -i``), as on a fresh runner.
    """
    gh = tmp_path / "gh"
    gh.mkdir()
    files = {name: gh / name for name in ("output", "summary", "path")}
    for f in files.values():
        f.write_text("")
    stub = tmp_path / "stub"
    stub.mkdir()
    uv_source = tmp_path / "uv-stub"
    uv_source.write_text(UV_STUB)
    uv_source.chmod(0o755)
    if uv:
        (stub / "uv").symlink_to(uv_source)
    else:
        (stub / "python3").write_text(PYTHON_STUB)
        (stub / "python3").chmod(0o755)
    tool_bin = tmp_path / "tool-bin"
    tool_bin.mkdir()
    (tool_bin / "portprobe").symlink_to(Path(sys.executable).parent / "portprobe")
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    base_path = f"{stub}:/usr/local/bin:/usr/bin:/bin"
    steps = []
    for step in ACTION["runs"]["steps"]:
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "inputs must reach the script through env"
        script = tmp_path / f"step-{len(steps)}.sh"
        script.write_text(step["run"])
        prepend = [line for line in files["path"].read_text().splitlines() if line]
        env = {
            "PATH": ":".join([*reversed(prepend), base_path]),
            "HOME": str(tmp_path),
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_OUTPUT": str(files["output"]),
            "GITHUB_STEP_SUMMARY": str(files["summary"]),
            "GITHUB_PATH": str(files["path"]),
            "RUNNER_TEMP": str(runner_temp),
            "UV_STUB_LOG": str(tmp_path / "uv.log"),
            "UV_STUB_BIN": str(tool_bin),
            "UV_STUB_SOURCE": str(uv_source),
            "UV_PYTHON_DOWNLOADS": "never",
            **{k: resolve(str(v), inputs) for k, v in (step.get("env") or {}).items()},
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
        if proc.returncode != 0:
            break
    outputs = dict(
        line.split("=", 1) for line in files["output"].read_text().splitlines() if "=" in line
    )
    return {
        "steps": steps,
        "outputs": outputs,
        "summary": files["summary"].read_text(),
        "uv": (tmp_path / "uv.log").read_text() if (tmp_path / "uv.log").exists() else "",
    }


def test_metadata_declares_the_contract() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert set(ACTION["inputs"]) >= {"expect", "ports", "args", "python-version"}
    assert {"verdict", "report"} <= set(ACTION["outputs"])
    for name, out in ACTION["outputs"].items():
        assert out["value"] == f"${{{{ steps.run.outputs.{name} }}}}"
    assert all(step.get("shell") == "bash" for step in ACTION["runs"]["steps"])


def test_expectation_met(tmp_path: Path, mail_host: str) -> None:
    result = run_action(tmp_path, inputs_with(expect="open", ports="25,465,587", args=mail_host))
    install, run = result["steps"]
    assert install.returncode == 0, install.stderr
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"--python 3.12 {ROOT}" in result["uv"] and "tool dir --bin" in result["uv"]
    out = result["outputs"]
    assert out["verdict"] == "open" and out["exit-code"] == "0"
    report = Path(out["report"])
    assert report.is_file() and '"port25": "open"' in report.read_text()
    summary = result["summary"]
    assert summary.startswith("### portprobe: 1 vantage point: 1 open")
    assert "| Vantage |" in summary and "**Reasons**" in summary
    assert "::error" not in run.stdout


def test_expectation_missed_fails_the_step_with_an_annotation(
    tmp_path: Path, mail_host: str
) -> None:
    result = run_action(tmp_path, inputs_with(expect="blocked", ports="25,465,587", args=mail_host))
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


def test_no_expectation_reports_and_passes(tmp_path: Path, mail_host: str) -> None:
    result = run_action(tmp_path, inputs_with(ports="25,587", args=mail_host))
    run = result["steps"][-1]
    assert run.returncode == 0, run.stderr
    assert result["outputs"]["verdict"] in ("open", "inconclusive")
    assert "| 25 | 587 |" in result["summary"] and "465" not in result["summary"].split("\n")[2]


def test_bad_input_is_an_error_annotation_not_a_verdict(tmp_path: Path) -> None:
    result = run_action(tmp_path, inputs_with(ports="25,80", args="--target 127.0.0.1"))
    run = result["steps"][-1]
    assert run.returncode == 2
    assert "::error title=portprobe::portprobe could not run (exit 2)" in run.stdout
    assert result["outputs"]["verdict"] == "" and "report" not in result["outputs"]


def test_args_are_not_shell_code(tmp_path: Path, mail_host: str) -> None:
    marker = tmp_path / "pwned"
    result = run_action(tmp_path, inputs_with(ports="25", args=f"{mail_host} $(touch {marker}) *"))
    assert not marker.exists()
    assert result["steps"][-1].returncode == 2  # "$(touch" is an unknown argument to portprobe


def test_without_uv_the_action_installs_it_with_pip(tmp_path: Path, mail_host: str) -> None:
    result = run_action(tmp_path, inputs_with(expect="open", ports="25", args=mail_host), uv=False)
    install, run = result["steps"]
    assert install.returncode == 0, install.stderr
    assert result["uv"].startswith("pip -m pip install --quiet --user uv")
    assert f"--python 3.12 {ROOT}" in result["uv"]  # the uv pip installed did the install
    assert run.returncode == 0, run.stderr
    assert result["outputs"]["verdict"] == "open"
