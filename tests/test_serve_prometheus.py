"""The operations side, with the real tools: promtool checks the shipped scrape config and
tests the alert rules, and a real Prometheus scrapes ``portprobe serve`` with the
README's multi-target relabelling until it sees the verdict go ``blocked`` → ``open``.

Everything listens on 127.0.0.1; each test skips with the reason when its tool is not
installed (Debian: ``prometheus``, which also provides promtool).
"""

from __future__ import annotations

import configparser
import json
import shutil
import socket
import subprocess
import textwrap
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from tests.test_serve_support import start_serve, start_smtp_host

ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib" / "prometheus"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: prometheus)")
def test_alert_rules_pass_their_promtool_tests() -> None:
    assert PROMTOOL is not None
    out = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yml"],
        cwd=CONTRIB,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: prometheus)")
def test_the_scrape_config_is_valid() -> None:
    assert PROMTOOL is not None
    out = subprocess.run(
        [PROMTOOL, "check", "config", "prometheus.yml"],
        cwd=CONTRIB,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_systemd_unit_is_hardened_and_listens_on_loopback() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "contrib" / "systemd" / "portprobe-serve.service")
    service = unit["Service"]
    assert service["DynamicUser"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["CapabilityBoundingSet"] == "" and service["AmbientCapabilities"] == ""
    assert service["NoNewPrivileges"] == "yes"
    assert "serve --listen 127.0.0.1:" in service["ExecStart"]
    assert service["RestartPreventExitStatus"] == "2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prometheus_config(exporter: str, module: str) -> dict[str, Any]:
    """The shipped multi-target job, pointed at this exporter and target, every second."""
    shipped = yaml.safe_load((CONTRIB / "prometheus.yml").read_text())
    job = next(j for j in shipped["scrape_configs"] if j["job_name"] == "portprobe_mx")
    job["params"] = {"module": [module]}
    job["static_configs"] = [{"targets": ["127.0.0.1"]}]
    job["scrape_interval"] = job["scrape_timeout"] = "1s"
    for rule in job["relabel_configs"]:
        if rule.get("target_label") == "__address__":
            rule["replacement"] = exporter
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [job],
    }


def _query(api: str, expr: str) -> list[dict[str, Any]]:
    url = f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            data = json.load(answer)
    except OSError:
        return []  # not up yet
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


async def _until(api: str, expr: str, limit: float = 25.0) -> list[dict[str, Any]]:
    with trio.fail_after(limit):
        while True:
            found = await trio.to_thread.run_sync(_query, api, expr)
            if found:
                return found
            await trio.sleep(0.2)


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (Debian: prometheus)")
async def test_a_real_prometheus_sees_blocked_then_open(tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    async with trio.open_nursery() as nursery:
        host = await start_smtp_host(nursery)
        host.behaviour.mode = "silent"  # port 25 accepts and never greets: blocked
        modules = tmp_path / "serve.toml"
        modules.write_text(
            textwrap.dedent(
                f"""
                [modules.lo]
                target = "host"
                allow_targets = ["127.0.0.1"]
                allow_private = true
                families = ["ipv4"]
                ports = [25, 587]
                port_map = {{ "25" = {host.port25}, "587" = {host.port587} }}
                readiness = false
                timeout = 0.3
                """
            )
        )
        serve, url = await trio.to_thread.run_sync(
            lambda: start_serve(modules, cache_ttl=0, timeout_offset=0.2)
        )
        web = _free_port()
        config = tmp_path / "prometheus.yml"
        exporter = url.removeprefix("http://")
        config.write_text(yaml.safe_dump(_prometheus_config(exporter, "lo")))
        prometheus = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{web}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = f"http://127.0.0.1:{web}"
        try:
            blocked = await _until(api, 'portprobe_verdict{verdict="blocked"} == 1')
            host.behaviour.mode = "smtp"
            opened = await _until(api, 'portprobe_verdict{verdict="open"} == 1')
            success = await _until(api, "probe_success == 1")
        finally:
            for proc in (prometheus, serve):
                proc.terminate()
            for proc in (prometheus, serve):
                try:
                    await trio.to_thread.run_sync(lambda p=proc: p.wait(10))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        nursery.cancel_scope.cancel()
    for series in (blocked, opened, success):
        labels = series[0]["metric"]
        assert labels["instance"] == "127.0.0.1"  # the relabelling made the target the instance
        assert labels["job"] == "portprobe_mx"
    assert serve.returncode == 0
