"""The distribution as a user gets it: ``uv build``'s wheel and sdist, installed into clean
venvs outside the checkout and run from there.

Nothing here reaches a package index (tests speak only to loopback): uv runs with
``UV_OFFLINE=1`` on the cache ``uv sync`` filled, and the dependencies come from uv.lock as
a PEP 751 lock (``uv export --format pylock.toml``), which names each file by URL and hash
so no index page is needed. The portprobe distribution itself is the built wheel or sdist.
The helpers below are shared with tests/test_action.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.servers import Certs, aiosmtpd_server, closed_port, make_certs

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST_NAME = PYPROJECT["project"]["name"]
VERSION = re.search(r'__version__ = "([^"]+)"', (ROOT / "portprobe/_version.py").read_text())
#: Package data the program reads at run time, and the report schema shipped beside it.
PACKAGE_DATA = (
    "portprobe/targets/catalog.toml",
    "portprobe/environment/platforms.toml",
    "portprobe/report.schema.json",
    "portprobe/py.typed",
)


def real_uv() -> str | None:
    """The uv program itself: ``uv run`` sets UV to it. A shim (pyenv's) found on PATH
    would need the caller's HOME and PATH, which these tests replace."""
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


UV = real_uv()
needs_uv = pytest.mark.skipif(UV is None, reason="uv is not installed")


def base_python() -> str:
    """The interpreter the test venv was made from (not the checkout's .venv)."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def uv_cache_dir() -> str:
    assert UV is not None
    return subprocess.run(
        [UV, "cache", "dir"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()


def offline_env(home: Path, path: str | None = None) -> dict[str, str]:
    """A fresh user's environment: no VIRTUAL_ENV, no uv project, no network for uv.
    ``path``: the whole PATH (by default uv's directory and the system's)."""
    assert UV is not None
    return {
        "PATH": path or f"{Path(UV).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "UV_CACHE_DIR": uv_cache_dir(),
        "UV_OFFLINE": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_CONFIG": "1",
    }


def run(
    argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout
    )


def export_pylock(directory: Path, env: Mapping[str, str]) -> Path:
    """uv.lock's runtime dependencies (no dev group, not portprobe itself) as pylock.toml."""
    assert UV is not None
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / "pylock.toml"
    proc = run(
        [UV, "export", "--project", str(ROOT), "--locked", "--no-dev", "--no-emit-project",
         "--format", "pylock.toml", "--quiet", "--output-file", str(lock)],
        cwd=directory, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return lock


def make_venv(venv: Path, requirement: Path, env: Mapping[str, str]) -> Path:
    """A venv of the stdlib's own making, the locked dependencies, then ``requirement``
    (a wheel or an sdist) without dependencies; returns the venv's bin directory."""
    assert UV is not None
    made = run([base_python(), "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent, env=env)
    assert made.returncode == 0, made.stderr
    python = str(venv / "bin" / "python")
    lock = export_pylock(venv.parent / f"{venv.name}-lock", env)
    for argv in (
        [UV, "pip", "install", "--quiet", "--python", python, "-r", str(lock)],
        [UV, "pip", "install", "--quiet", "--python", python, "--no-deps", str(requirement)],
        # Every Requires-Dist of the built distribution is met by the locked set.
        [UV, "pip", "check", "--python", python],
    ):
        proc = run(argv, cwd=venv.parent, env=env)
        assert proc.returncode == 0, f"{argv[1:3]}: {proc.stdout}{proc.stderr}"
    return venv / "bin"


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """``uv build`` as a user would run it on a clean checkout: the sdist, then the wheel
    built from that sdist (so a file the sdist lacks breaks the wheel too)."""
    if UV is None:
        pytest.skip("uv is not installed")
    out = tmp_path_factory.mktemp("dist")
    env = offline_env(out)
    proc = run([UV, "build", "--quiet", "--out-dir", str(out), str(ROOT)], cwd=out, env=env)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return Dist(wheel, sdist)


@pytest.fixture(scope="session")
def installed_wheel(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel in a clean venv; returns its bin directory."""
    home = tmp_path_factory.mktemp("wheel-user")
    return make_venv(home / "venv", dist.wheel, offline_env(home))


def test_distribution_name_is_ours_and_the_command_is_portprobe() -> None:
    # "portprobe" on the package index is an unrelated scanner.
    assert DIST_NAME == "portprobe-smtp"
    assert PYPROJECT["project"]["scripts"] == {"portprobe": "portprobe.cli:main"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text()


def test_wheel_carries_the_package_data_license_and_metadata(dist: Dist) -> None:
    assert VERSION is not None
    assert dist.wheel.name == f"portprobe_smtp-{VERSION.group(1)}-py3-none-any.whl"
    with zipfile.ZipFile(dist.wheel) as whl:
        names = set(whl.namelist())
        info = f"portprobe_smtp-{VERSION.group(1)}.dist-info"
        metadata = whl.read(f"{info}/METADATA").decode()
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
        schema = whl.read("portprobe/report.schema.json")
    assert set(PACKAGE_DATA) <= names
    assert f"{info}/licenses/LICENSE" in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    assert schema == (ROOT / "reports/report.schema.json").read_bytes()
    assert "portprobe = portprobe.cli:main" in entry_points
    headers = metadata.split("\n\n", 1)[0].splitlines()
    assert "Name: portprobe-smtp" in headers
    assert "License-Expression: MIT" in headers
    assert "Requires-Python: >=3.11" in headers
    assert any(h.startswith("Project-URL: Source, https://") for h in headers)
    assert any(h.startswith("Classifier: Topic :: Communications :: Email") for h in headers)


def test_sdist_carries_what_a_rebuild_and_a_packager_need(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    wanted = {"pyproject.toml", "uv.lock", "LICENSE", "CHANGELOG.md", "README.md",
              "reports/report.schema.json", "contrib/systemd/portprobe.service",
              "contrib/systemd/portprobe.timer", "contrib/systemd/portprobe.sysusers",
              *(p for p in PACKAGE_DATA if p != "portprobe/report.schema.json")}  # fmt: skip
    assert wanted <= names, wanted - names


def test_installed_wheel_runs_outside_the_checkout(installed_wheel: Path, tmp_path: Path) -> None:
    env = {**offline_env(tmp_path), "PATH": f"{installed_wheel}:/usr/bin:/bin"}
    portprobe = str(installed_wheel / "portprobe")
    version = run([portprobe, "--version"], cwd=tmp_path, env=env)
    assert VERSION is not None
    assert version.returncode == 0 and version.stdout.strip() == f"portprobe {VERSION.group(1)}"
    helped = run([portprobe, "--help"], cwd=tmp_path, env=env)
    assert helped.returncode == 0 and "Usage: portprobe" in helped.stdout, helped.stderr
    # The program and its data come from the venv, not from this checkout.
    where = run(
        [str(installed_wheel / "python"), "-c",
         "import importlib.resources as r, portprobe; print(portprobe.__file__);"
         "print((r.files('portprobe') / 'report.schema.json').is_file())"],
        cwd=tmp_path, env=env,
    )  # fmt: skip
    module_file, schema_found = where.stdout.split()
    assert Path(module_file).is_relative_to(installed_wheel.parent), module_file
    assert schema_found == "True"
    closed = closed_port()
    probe = run(
        [portprobe, "--target", "127.0.0.1", "--port-map", f"25={closed}", "--ports", "25",
         "--no-readiness", "--format", "json"],
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert probe.returncode == 7, probe.stderr  # inconclusive: one refusing host proves little
    report = json.loads(probe.stdout)
    assert report["verdict"]["port25"] == "inconclusive"
    assert [(p["port"], p["state"]) for p in report["probes"]] == [(25, "refused")]


def test_sdist_installs_and_runs(dist: Dist, tmp_path: Path) -> None:
    env = offline_env(tmp_path)
    bin_dir = make_venv(tmp_path / "venv", dist.sdist, env)
    proc = run([str(bin_dir / "portprobe"), "--version"], cwd=tmp_path, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("portprobe "), proc.stderr


# The README's CI snippets, from a scratch repository of a user's own.

README = (ROOT / "README.md").read_text()
#: The install commands the snippets may use, each replaced by the same offline install of
#: the locally built wheel (the index is out of the tests' reach).
INSTALLS = {"uv tool install portprobe-smtp", "pip install portprobe-smtp"}
#: A ``portprobe`` in front of the installed one: the snippet's own command line, plus
#: loopback targets so nothing leaves this machine (the catalog's hosts are on the internet).
SHIM = """#!/bin/bash
exec "$PORTPROBE_REAL" "$@" $PORTPROBE_LOOPBACK
"""


def ci_snippets() -> dict[str, list[str]]:
    """The shell commands of the README's "In CI" YAML blocks, in order."""
    section = README.split("\n## In CI\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```yaml\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    snippets: dict[str, list[str]] = {}
    for block in blocks:
        doc = yaml.safe_load(block)
        if isinstance(doc, list):  # GitHub Actions steps
            snippets["github"] = [s["run"] for s in doc if "run" in s]
        else:  # a GitLab CI job
            ((_, job),) = doc.items()
            snippets["gitlab"] = list(job["script"])
    return snippets


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("snippet-certs"))


@pytest.fixture(scope="module")
def loopback_mail_host(certs: Certs) -> Iterator[str]:
    ctx = certs.server_context()
    with aiosmtpd_server(starttls=ctx) as p25, aiosmtpd_server(starttls=ctx) as p587:
        yield (
            f"--target 127.0.0.1 --port-map 25={p25} --port-map 587={p587} "
            f"--port-map 465={closed_port()} --port-map 2525={closed_port()} "
            f"--ca-file {certs.ca_file} --no-readiness"
        )


def test_readme_has_both_ci_snippets_and_neither_needs_a_checkout() -> None:
    snippets = ci_snippets()
    assert set(snippets) == {"github", "gitlab"}
    for commands in snippets.values():
        assert not any("uv run" in c for c in commands)  # works only in portprobe's checkout
        assert sum(c in INSTALLS for c in commands) == 1, commands


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_readme_ci_snippet_from_a_scratch_repository(
    ci: str, installed_wheel: Path, loopback_mail_host: str, tmp_path: Path
) -> None:
    repo = tmp_path / "their-project"
    repo.mkdir()
    (repo / "README.md").write_text("someone else's project\n")
    env = offline_env(tmp_path)
    for argv in (["git", "init", "-q"], ["git", "add", "."]):
        assert run(argv, cwd=repo, env=env).returncode == 0
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    (shim_dir / "portprobe").write_text(SHIM)
    (shim_dir / "portprobe").chmod(0o755)
    summary = tmp_path / "step-summary.md"
    summary.write_text("")
    env.update(
        PATH=f"{env['PATH']}:{installed_wheel}",  # the install put it on PATH
        PORTPROBE_REAL=str(installed_wheel / "portprobe"),
        PORTPROBE_LOOPBACK=loopback_mail_host,
        GITHUB_STEP_SUMMARY=str(summary),
    )
    ran = []
    for command in ci_snippets()[ci]:
        if command in INSTALLS or command == "pip install uv":
            continue  # done above, offline, from the built wheel
        script = f'PATH="{shim_dir}:$PATH"\n{command}\n'
        proc = run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                   cwd=repo, env=env)  # fmt: skip
        assert proc.returncode == 0, f"{command}\n{proc.stdout}{proc.stderr}"
        ran.append(command)
    assert any(c.startswith("portprobe ") for c in ran)
    if ci == "github":
        assert "portprobe: port 25 is **open**" in (repo / "portprobe.md").read_text()
        assert summary.read_text() == (repo / "portprobe.md").read_text()
        assert "<testsuite" in (repo / "portprobe-junit.xml").read_text()
    else:
        assert "<testsuite" in (repo / "portprobe.xml").read_text()
