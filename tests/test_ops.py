"""Operations files checked by the tools their users' machines run: ``systemd-analyze`` on
the units, shellcheck on the Action's scripts, check-jsonschema's vendored GitHub Action
schema on action.yml. Each test skips, saying which tool is missing, where it is not
installed (.ci/run installs them)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "contrib" / "systemd"
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
#: setup-uv at a commit (a tag can be moved), and uv at a version.
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def tool(name: str) -> str:
    found = shutil.which(name) or (
        str(Path(sys.executable).parent / name)
        if (Path(sys.executable).parent / name).is_file()
        else None
    )
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def units_with_a_real_program(tmp_path: Path) -> list[Path]:
    """Copies of the units whose ExecStart names a program that exists here (verify
    refuses a missing one; it does not run it); everything else is as shipped."""
    program = Path(sys.executable)
    copies = []
    for name in ("portprobe.service", "portprobe.timer"):
        text = (SYSTEMD / name).read_text()
        text = text.replace("ExecStart=/usr/local/bin/portprobe ", f"ExecStart={program} ")
        (tmp_path / name).write_text(text)
        copies.append(tmp_path / name)
    assert str(program) in copies[0].read_text()
    return copies


def test_service_lets_node_exporter_read_the_textfile() -> None:
    service = unit("portprobe.service")["Service"]
    # DynamicUser= would keep the state directory under /var/lib/private (mode 0700).
    assert service.get("DynamicUser", "no") == "no"
    assert service["User"] == service["Group"] == "portprobe"
    assert service["UMask"] == "0022" and service["StateDirectoryMode"] == "0755"
    out = re.search(r"-o (\S+)", service["ExecStart"])
    assert out is not None
    assert Path(out.group(1)).parent == Path("/var/lib") / service["StateDirectory"]
    sysusers = (SYSTEMD / "portprobe.sysusers").read_text()
    assert re.search(r"^u portprobe - ", sysusers, re.MULTILINE)


def test_service_keeps_its_hardening() -> None:
    service = unit("portprobe.service")["Service"]
    assert service["CapabilityBoundingSet"] == "" and service["AmbientCapabilities"] == ""
    for key in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectHome",
                "ProtectKernelTunables", "ProtectControlGroups", "RestrictNamespaces"):  # fmt: skip
        assert service[key] == "yes", key
    assert service["ProtectSystem"] == "strict"
    assert service["SuccessExitStatus"].split() == ["3", "4", "5", "6", "7", "8"]


def test_units_install_the_distribution_that_is_ours() -> None:
    text = (SYSTEMD / "portprobe.service").read_text()
    assert "install portprobe-smtp" in text
    assert not re.search(r"install portprobe\b(?!-smtp)", text)


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    service, timer = units_with_a_real_program(tmp_path)
    proc = subprocess.run(
        [analyze, "verify", str(service), str(timer)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 on an unknown key or a bad value and only prints them: any line is a fault.
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr
    assert unit("portprobe.timer").get("Timer", "Unit", fallback="portprobe.service") == (
        service.name
    )


def test_systemd_analyze_verify_speaks_up(tmp_path: Path) -> None:
    """The check above could only pass quietly if verify never says anything here."""
    analyze = tool("systemd-analyze")
    service, _ = units_with_a_real_program(tmp_path)
    service.write_text(service.read_text().replace("UMask=0022", "UMask=0x22\nHardening=yes"))
    proc = subprocess.run(
        [analyze, "verify", str(service)], capture_output=True, text=True, timeout=60
    )
    said = proc.stdout + proc.stderr
    assert "Unknown key" in said and "Hardening" in said and "mode" in said, said


def test_systemd_sysusers_creates_the_units_user(tmp_path: Path) -> None:
    sysusers = tool("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    proc = subprocess.run(
        [sysusers, f"--root={tmp_path}", str(SYSTEMD / "portprobe.sysusers")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    service = unit("portprobe.service")["Service"]
    users = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc/passwd").open()}
    groups = {line.split(":")[0] for line in (tmp_path / "etc/group").open()}
    assert service["User"] in users and service["Group"] in groups
    assert users[service["User"]][6].strip() == "/usr/sbin/nologin"
    assert int(users[service["User"]][2]) < 1000  # a system user


def test_systemd_analyze_security(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    service, _ = units_with_a_real_program(tmp_path)
    proc = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(service)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in proc.stderr:
        pytest.skip("systemd-analyze security has no --offline here (systemd < 250)")
    level = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", proc.stdout)
    assert level is not None, proc.stdout + proc.stderr
    # 0 is sealed, 10 is wide open; the shipped unit measured 1.9 "OK".
    assert float(level.group(1)) <= 2.5, proc.stdout


def run_scripts() -> list[tuple[str, str]]:
    return [(s["name"], s["run"]) for s in ACTION["runs"]["steps"] if "run" in s]


@pytest.mark.parametrize(
    ("name", "script"), [pytest.param(*s, id=s[0].replace(" ", "-")) for s in run_scripts()]
)
def test_shellcheck_on_the_action_scripts(name: str, script: str) -> None:
    shellcheck = tool("shellcheck")
    proc = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", "--format=gcc", "-"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"{name}:\n{proc.stdout}{proc.stderr}"


def test_shellcheck_speaks_up() -> None:
    shellcheck = tool("shellcheck")
    proc = subprocess.run(
        [shellcheck, "--shell=bash", "-"], input="rm $1\n", capture_output=True, text=True
    )
    assert proc.returncode != 0 and "SC2086" in proc.stdout


def test_action_scripts_assume_only_bash_and_uv() -> None:
    """No python3 of the runner's (Windows has none by that name), no pip, nothing put on
    the job's PATH or environment; uv comes from the pinned setup-uv step."""
    for name, script in run_scripts():
        code = "\n".join(line for line in script.splitlines() if not line.strip().startswith("#"))
        assert "python3" not in code, name
        # Only the venv's own Python ("$PORTPROBE_BIN/python") and uv's --python option.
        assert not re.search(r"(?<![-/])\bpython\b", code), name
        assert not re.search(r"(?<!uv )\bpip\b", code), name
        assert "GITHUB_PATH" not in code and "GITHUB_ENV" not in code, name
    (setup,) = [s for s in ACTION["runs"]["steps"] if "uses" in s]
    assert setup["uses"].startswith("astral-sh/setup-uv@") and PINNED_ACTION.match(setup["uses"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", setup["with"]["version"])


def test_check_jsonschema_github_action_schema() -> None:
    checker = tool("check-jsonschema")
    proc = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-actions", str(ROOT / "action.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_jsonschema_speaks_up(tmp_path: Path) -> None:
    checker = tool("check-jsonschema")
    broken = tmp_path / "action.yml"
    broken.write_text("name: x\ndescription: y\nruns:\n  using: composite\n  steps: nope\n")
    proc = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-actions", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "steps" in proc.stdout, proc.stdout + proc.stderr
