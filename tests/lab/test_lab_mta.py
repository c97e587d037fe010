"""The user's own mail server in the lab: real Postfix and real Exim in the client
namespace, real mail submitted while the ISP blocks port 25, a Gmail-like receiver that
refuses IPv6 mail at end of DATA; portprobe reads them and says where mail is stuck.

Also ``--netns``: portprobe started in the host's namespace probes from inside the
client's (where the MTA and its egress are), with that namespace's resolver.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .exim import EXIM_BINARY
from .harness import PORTPROBE, Report, portprobe_argv, run_portprobe
from .local_mta import (
    GMAIL_LIKE,
    GMAIL_LIKE_PORT,
    GMAIL_LIKE_V6,
    LocalPostfix,
    start_exim_client,
)
from .netlab import Lab
from .netns import end_processes
from .postfix import postfix_available, rmtree

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def gmail_like(lab: Lab) -> Iterator[None]:
    """The Gmail-like receiver on an IPv6 address of the internet namespace."""
    lab.internet.ip([f"addr add {GMAIL_LIKE_V6}/128 dev lo nodad"])
    proc = lab.internet.popen(
        [sys.executable, "-c", GMAIL_LIKE, GMAIL_LIKE_V6, str(GMAIL_LIKE_PORT)],
        log=lab.workdir / "gmail-like.out",
    )
    try:
        yield
    finally:
        end_processes([proc.pid])
        lab.internet.ip([f"addr del {GMAIL_LIKE_V6}/128 dev lo"])


@pytest.fixture(scope="module")
def local_postfix(lab: Lab, gmail_like: None) -> Iterator[LocalPostfix]:
    """Postfix in the client namespace with two real failed deliveries: alpha.example while
    port 25 is dropped (deferred, timed out), v6ptr.example refused at end of DATA."""
    reason = postfix_available()
    if reason is not None:
        pytest.skip(reason)
    lab.switch("dropped", readiness="no-ptr")
    directory = Path(tempfile.mkdtemp(prefix="local-postfix-", dir=lab.workdir))
    directory.chmod(0o755)
    instance = LocalPostfix(directory, lab.client)
    instance.start()
    try:
        instance.send("bob@alpha.example")
        instance.send("carol@v6ptr.example")
        instance.wait_for_log("to=<bob@alpha.example>", "status=deferred", "5.7.25")
        yield instance
    finally:
        if instance.process is not None:
            end_processes([instance.process.pid])
        rmtree(directory)


def _mta(report: Report) -> dict[str, Any]:
    mta = report.data.get("mta")
    assert mta is not None, report.summary()
    return dict(mta)


def test_postfix_queue_and_log_hold_real_deferrals_and_the_fix_lines(
    lab: Lab, local_postfix: LocalPostfix
) -> None:
    lab.switch("dropped", readiness="no-ptr")
    queue = local_postfix.queue()
    assert any(m["queue_name"] == "deferred" for m in queue), queue
    report = run_portprobe(
        lab,
        "--mta", "postfix",
        "--postfix-config", str(local_postfix.config_dir),
        "--mail-log", str(local_postfix.log_file),
        "--queue-destinations", "1",
        domains=("beta.example",),
    )  # fmt: skip
    assert report.verdict["port25"] == "blocked", report.summary()
    mta = _mta(report)
    assert mta["kind"] == "postfix" and mta["found_by"].startswith("postconf -c ")
    first = mta["queue"]["destinations"][0]
    assert (first["domain"], first["reason"]) == ("alpha.example", "path-timeout"), mta
    # the deferred domain joined the run: its MX was probed, per family
    joined = {(p["host"], p["family"]) for p in report.probes() if p["host"] == "mx.alpha.example"}
    assert joined == {("mx.alpha.example", "ipv4"), ("mx.alpha.example", "ipv6")}
    log = {d["domain"]: d for d in mta["log"]["deferrals"]}
    assert (log["v6ptr.example"]["reason"], log["v6ptr.example"]["family"]) == ("no-ptr", "ipv6")
    advice = "\n".join(mta["advice"])
    assert "postconf -e 'relayhost = [smtp.example.net]:587'" in advice
    assert "postconf -e 'smtp_address_preference = ipv4'" in advice
    assert "(this run confirms it)" in advice  # readiness: no PTR for the IPv6 address
    # replaced by code: the generic "use your provider's submission service" step is gone
    assert not any("submission service on port 587" in a for a in report.verdict["advice"])


def test_helo_name_unlike_the_ptr_name(lab: Lab, local_postfix: LocalPostfix) -> None:
    lab.switch("dropped", readiness="clean")  # PTR mail.client.example, forward-confirmed
    report = run_portprobe(
        lab,
        "--mta", "postfix",
        "--postfix-config", str(local_postfix.config_dir),
        "--mail-log", str(local_postfix.log_file),
        "--queue-destinations", "0",
        domains=("beta.example",),
    )  # fmt: skip
    advice = "\n".join(_mta(report)["advice"])
    assert "postconf -e 'smtp_helo_name = mail.client.example'" in advice, advice


def test_the_table_names_the_stuck_mail_and_the_fix(lab: Lab, local_postfix: LocalPostfix) -> None:
    lab.switch("dropped", readiness="no-ptr")
    argv = [
        str(PORTPROBE), "--domain", "beta.example", "--nameserver", lab.nameserver,
        "--ca-file", str(lab.ca_file), "--mta", "postfix",
        "--postfix-config", str(local_postfix.config_dir),
        "--mail-log", str(local_postfix.log_file), "--queue-destinations", "0",
    ]  # fmt: skip
    proc = lab.run_client(argv, timeout=90)
    text = " ".join(proc.stdout.split())
    assert "Your mail server: Postfix 3." in text, proc.stdout + proc.stderr
    assert "path-timeout to alpha.example" in text
    # a pipe, not a terminal: the default 120 columns (80 is tests/test_mta.py's)
    assert all(len(line) <= 120 for line in proc.stdout.splitlines())


def test_exim_as_the_local_mta(lab: Lab) -> None:
    if lab.exim_missing is not None:
        pytest.skip(lab.exim_missing)
    lab.switch("reset")
    directory = Path(tempfile.mkdtemp(prefix="local-exim-", dir=lab.workdir))
    directory.chmod(0o755)
    try:
        config = start_exim_client(lab.client, directory, "bob@alpha.example")
        path = f"{EXIM_BINARY.parent}:{os.environ.get('PATH', '')}"
        argv = ["env", f"PATH={path}", *portprobe_argv(
            lab, "--mta", "exim", "--exim-config", str(config), "--queue-destinations", "0",
        )]  # fmt: skip
        proc = lab.run_client(argv, timeout=90)
        report = Report(argv, proc.returncode, json.loads(proc.stdout or "{}"), proc.stderr)
        mta = _mta(report)
        assert mta["kind"] == "exim" and mta["version"], mta
        assert mta["queue"]["total"] == 1
        dest = mta["queue"]["destinations"][0]
        assert (dest["domain"], dest["reason"]) == ("alpha.example", "path-refused"), mta
        assert mta["log"]["path"] == str(directory / "mainlog")
        assert report.verdict["port25"] == "blocked", report.summary()
        assert any("route_list = * smtp.example.net::587" in a for a in mta["advice"]), mta
    finally:
        rmtree(directory)


def test_netns_probes_from_inside_the_mta_namespace_with_its_resolver(
    lab: Lab, local_postfix: LocalPostfix
) -> None:
    """Started in the host's namespace (no route to the lab), told --netns: the verdict is
    the client namespace's, and its resolver comes from the namespace's resolv.conf."""
    lab.switch("dropped", readiness="no-ptr")
    argv = [
        str(PORTPROBE), "--domain", "beta.example", "--ca-file", str(lab.ca_file),
        "--netns", lab.client.name, "--mta", "postfix",
        "--postfix-config", str(local_postfix.config_dir), "--queue-destinations", "1",
        "--mail-log", str(local_postfix.log_file), "--json",
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
    data = json.loads(proc.stdout)
    assert data["verdict"]["port25"] == "blocked", proc.stderr
    assert data["parameters"]["nameservers"][:1] == [lab.nameserver]
    assert data["mta"]["queue"]["destinations"][0]["domain"] == "alpha.example"
    missing = subprocess.run(
        [str(PORTPROBE), "--target", "127.0.0.1", "--netns", "pplab-no-such-ns"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def test_inet_protocols_all_without_an_ipv6_route(lab: Lab, local_postfix: LocalPostfix) -> None:
    lab.switch("dropped-no-ipv6")
    report = run_portprobe(
        lab,
        "--mta", "postfix",
        "--postfix-config", str(local_postfix.config_dir),
        "--mail-log", str(local_postfix.log_file),
        "--queue-destinations", "0",
    )  # fmt: skip
    assert report.verdict["families"]["ipv6"] == "unavailable", report.summary()
    mta = _mta(report)
    assert mta["settings"]["inet_protocols"] == "all"
    assert any("postconf -e 'inet_protocols = ipv4'" in a for a in mta["advice"]), mta["advice"]
