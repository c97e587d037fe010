"""The local mail server's view: parsers on real recorded texts, reading behind the seams,
the joined advice, the report and every renderer.

The fixtures in tests/fixtures/mta/ were written by real Postfix 3.7 and Exim 4.96
(tests/fixtures/mta/record.py; README there).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
import trio
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from portprobe.companions.mta import MtaCompanion, queue_domains
from portprobe.companions.mta_advice import assess
from portprobe.diagnosis import DiagnoseRequest, Diagnosis
from portprobe.errors import InputError
from portprobe.mta.model import MtaView
from portprobe.mta.parse import (
    classify,
    parse_exim_bp,
    parse_exim_line,
    parse_postconf,
    parse_postfix_line,
    parse_postqueue_json,
)
from portprobe.mta.read import (
    MAX_DEFERRALS,
    MtaOptions,
    Ran,
    read_log,
    read_mta,
    recent_deferrals,
    tail_lines,
)
from portprobe.readiness.model import PtrCheck, Readiness
from portprobe.render import render
from tests.builders import open_
from tests.builders import typed_report_for as report_for
from tests.fake_dns import FakeDNS
from tests.test_openmetrics import promtool
from tests.test_verdict import BY_ID

FIXTURES = Path(__file__).parent / "fixtures" / "mta"
SCHEMA = json.loads((Path(__file__).parent.parent / "reports/report.schema.json").read_text())

#: What each recorded domain's receiver did (record.py's ROUTES).
EXPECTED = {
    "gmail.com": "path-timeout",
    "refused.example": "path-refused",
    "unreachable.example": "network-unreachable",
    "v6ptr.example": "no-ptr",
    "listed.example": "blocklisted",
    "rate.example": "rate-limited",
    "tls.example": "tls",
    "lab.example": "dns",  # the bounces back to the sender: its domain has no DNS there
}


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def postfix_root(root: Path) -> Path:
    """A machine root where Postfix is configured (``--mta auto`` looks for main.cf)."""
    (root / "etc/postfix").mkdir(parents=True, exist_ok=True)
    (root / "etc/postfix/main.cf").write_text("# configured\n")
    return root


def postfix_run(
    *, postconf: Ran | None = None, postqueue: Ran | None = None
) -> tuple[list[list[str]], object]:
    calls: list[list[str]] = []

    def run(argv: Sequence[str]) -> Ran:
        calls.append(list(argv))
        if argv[0] == "postconf":
            return postconf or Ran(0, fixture("postconf.txt"))
        if argv[0] == "postqueue":
            return postqueue or Ran(0, fixture("postqueue-j.txt"))
        return Ran(127, "")

    return calls, run


def exim_run(argv: Sequence[str]) -> Ran:
    if argv[0] == "exim4" and "-bP" in argv:
        return Ran(0, fixture("exim-bP.txt"))
    if argv[0] == "exim4" and "-bp" in argv:
        return Ran(0, fixture("exim-bp.txt"))
    return Ran(127, "")


# --- parsers on the real texts --------------------------------------------------------------


def test_postfix_log_lines_are_classified_from_real_postfix_texts() -> None:
    deferrals = [
        d for d in map(parse_postfix_line, fixture("postfix-maillog.txt").splitlines()) if d
    ]
    got = {d.domain: d.reason for d in deferrals}
    assert got == EXPECTED
    v6 = next(d for d in deferrals if d.domain == "v6ptr.example")
    assert (v6.family, v6.host) == ("ipv6", "::1")
    assert "in reply to end of DATA command" in v6.text
    timeout = next(d for d in deferrals if d.domain == "gmail.com")
    assert (timeout.host, timeout.family) == ("198.51.100.2", "ipv4")


def test_exim_log_lines_are_classified_from_real_exim_texts() -> None:
    deferrals = [d for d in map(parse_exim_line, fixture("exim-mainlog.txt").splitlines()) if d]
    got = {d.domain: d.reason for d in deferrals}
    expected = {k: v for k, v in EXPECTED.items() if k not in ("gmail.com", "lab.example")}
    assert got == expected
    v6 = next(d for d in deferrals if d.domain == "v6ptr.example")
    assert v6.family == "ipv6"
    assert v6.text.startswith("SMTP error from remote mail server after end of data: 550-5.7.25")
    assert "\\n" not in v6.text  # Exim's escaped multi-line reply is one line here
    # "== ... defer (111): Connection refused" names no host: the line before it does
    joined = {
        d.domain: d.host for d in recent_deferrals(fixture("exim-mainlog.txt").splitlines(), "exim")
    }
    assert joined["refused.example"] == "127.0.0.1" and joined["unreachable.example"] == "192.0.2.1"


def test_postfix_lines_in_rfc3339_syslog_and_journald_form() -> None:
    line = fixture("postfix-maillog.txt").splitlines()[-1]  # the gmail.com timeout
    rest = line.split(" mail ", 1)[1]
    for stamp in ("2026-12-08T03:52:50.123456+00:00", "Dec  8 03:52:50"):
        deferral = parse_postfix_line(f"{stamp} mail {rest}")
        assert deferral is not None and deferral.time == stamp
        assert deferral.reason == "path-timeout"


def test_postqueue_json_groups_deferred_mail_by_destination() -> None:
    queue = parse_postqueue_json(fixture("postqueue-j.txt").splitlines())
    assert (queue.readable, queue.total, queue.deferred) == (True, 7, 7)
    by = {d.domain: d for d in queue.destinations}
    assert by["lab.example"].count == 2 and queue.destinations[0].domain == "lab.example"
    assert by["gmail.com"].reason == "path-timeout"
    assert by["gmail.com"].last_error == (
        "connect to 198.51.100.2[198.51.100.2]:25: Connection timed out"
    )
    assert by["rate.example"].reason == "rate-limited"


def test_exim_bp_counts_messages_and_takes_the_errors_from_the_log() -> None:
    log = recent_deferrals(fixture("exim-mainlog.txt").splitlines(), "exim")
    errors = {d.domain: d.text for d in log if d.domain}
    queue = parse_exim_bp(fixture("exim-bp.txt").splitlines(), errors)
    assert (queue.total, queue.deferred) == (6, 6)
    by = {d.domain: d.reason for d in queue.destinations}
    assert by["refused.example"] == "path-refused"
    assert by["v6ptr.example"] == "no-ptr"


def test_a_queue_of_100000_messages_is_summarised_within_a_bound() -> None:
    line = json.dumps(
        {
            "queue_name": "deferred",
            "queue_id": "X",
            "recipients": [
                {"address": "u@d{n}.example", "delay_reason": "connect to x: Connection timed out"}
            ],
        }
    )
    lines = (line.replace("{n}", str(n % 500)) for n in range(100_000))
    queue = parse_postqueue_json(lines)
    assert (queue.total, queue.deferred) == (100_000, 100_000)
    assert len(queue.destinations) == 20  # MAX_DESTINATIONS, most messages first
    assert all(d.count == 200 and d.reason == "path-timeout" for d in queue.destinations)


OTHER_WORDINGS = {
    "conversation with mx[192.0.2.1] timed out while receiving the initial server greeting": (
        "path-timeout"
    ),
    "connect to mx[2001:db8::1]:25: Cannot assign requested address": "network-unreachable",
    "host mx[192.0.2.1] said: 421 4.7.0 Try again later, closing connection. "
    "(in reply to MAIL FROM command)": "other",
    "Host or domain name not found. Name service error for name=x.example type=MX: "
    "Host not found, try again": "dns",
    "host mx said: 550 5.7.1 ... IPv6 sending guidelines ... (in reply to end of DATA command)": (
        "no-ptr"
    ),
}


@pytest.mark.parametrize(("text", "reason"), OTHER_WORDINGS.items())
def test_classify_the_other_real_wordings(text: str, reason: str) -> None:
    assert classify(text) == reason


def test_postconf_settings() -> None:
    settings = parse_postconf(fixture("postconf.txt"))
    assert settings["inet_protocols"] == "all"
    assert settings["relayhost"] == ""
    assert settings["smtp_helo_name"] == "$myhostname"


# --- reading, behind the seams --------------------------------------------------------------


def test_read_postfix_through_its_tools(tmp_path: Path) -> None:
    calls, run = postfix_run()
    log = tmp_path / "mail.log"
    log.write_text(fixture("postfix-maillog.txt"))
    view = read_mta(
        MtaOptions(postfix_config=Path("/etc/postfix-out"), mail_log=log), run=run, root=tmp_path
    )  # type: ignore[arg-type]
    assert view is not None and view.kind == "postfix" and view.version == "3.7.11"
    assert view.found_by == "postconf -c /etc/postfix-out"
    assert ["postqueue", "-c", "/etc/postfix-out", "-j"] in calls
    assert set(view.settings) <= {
        "relayhost", "default_transport", "inet_protocols", "smtp_address_preference",
        "myhostname", "smtp_helo_name", "smtp_bind_address", "smtp_bind_address6",
        "smtp_tls_security_level",
    }  # fmt: skip
    assert view.queue.deferred == 7 and view.log.readable and view.notes == ()
    # read-only: nothing but postconf and postqueue -j ran
    assert {c[0] for c in calls} == {"postconf", "postqueue"}
    assert all(c[-1] == "-j" for c in calls if c[0] == "postqueue")


def test_the_usual_log_file_under_root_is_found(tmp_path: Path) -> None:
    _, run = postfix_run()
    (tmp_path / "var/log").mkdir(parents=True)
    (tmp_path / "var/log/maillog").write_text(fixture("postfix-maillog.txt"))
    view = read_mta(MtaOptions(), run=run, root=postfix_root(tmp_path))  # type: ignore[arg-type]
    assert view is not None and view.log.path == str(tmp_path / "var/log/maillog")
    assert len(view.log.deferrals) == 9


def test_no_mta_is_none_without_notes(tmp_path: Path) -> None:
    assert read_mta(MtaOptions(), run=lambda argv: Ran(127, ""), root=tmp_path) is None
    unconfigured = Ran(
        1, "", "postconf: fatal: open /etc/postfix/main.cf: No such file or directory"
    )
    _, run = postfix_run(postconf=unconfigured)
    assert read_mta(MtaOptions(), run=run, root=tmp_path) is None  # type: ignore[arg-type]
    assert read_mta(MtaOptions(mode="none"), run=run, root=tmp_path) is None  # type: ignore[arg-type]


def test_a_failing_postconf_and_an_unreadable_queue_are_notes(tmp_path: Path) -> None:
    _, run = postfix_run(
        postconf=Ran(1, "", "postconf: fatal: bad parameter"),
        postqueue=Ran(69, "", "postqueue: fatal: Permission denied"),
    )
    view = read_mta(MtaOptions(mode="postfix"), run=run, root=tmp_path)  # type: ignore[arg-type]
    assert view is not None and not view.queue.readable
    assert any("postconf failed (postconf: fatal: bad parameter)" in n for n in view.notes)
    assert any("postdrop" in n for n in view.notes)


def test_mta_named_but_absent_is_a_note() -> None:
    view = read_mta(MtaOptions(mode="exim"), run=lambda argv: Ran(127, ""))
    assert view is not None and view.kind == "exim" and view.notes


def test_exim_with_its_debian_settings(tmp_path: Path) -> None:
    (tmp_path / "etc/exim4").mkdir(parents=True)
    (tmp_path / "etc/exim4/update-exim4.conf.conf").write_text(
        "dc_eximconfig_configtype='internet'\ndc_smarthost=''\n"
    )
    log = tmp_path / "mainlog"
    log.write_text(fixture("exim-mainlog.txt"))
    view = read_mta(MtaOptions(mail_log=log), run=exim_run, root=tmp_path)
    assert view is not None and view.kind == "exim" and view.version == "4.96"
    assert view.settings["disable_ipv6"] == "false"
    assert view.settings["dc_eximconfig_configtype"] == "internet"
    assert view.queue.total == 6
    assert {d.domain: d.reason for d in view.queue.destinations}["tls.example"] == "tls"


def test_a_log_is_read_from_its_tail_only_and_binary_junk_is_harmless(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    junk = b"\x00\xff\xfe garbage \x1b[31m\x00" * 2000 + b"\n"
    real = fixture("postfix-maillog.txt").encode()
    log.write_bytes(junk * 50 + real + junk)
    lines = list(tail_lines(log, max_bytes=len(real) + len(junk) + 10))
    assert all("\x00" not in line and "\x1b" not in line for line in lines)
    assert len(recent_deferrals(lines, "postfix")) == 9
    # a tail cut mid-line starts at the next whole line
    cut = list(tail_lines(log, max_bytes=len(real) // 2 + len(junk)))
    assert all(not line.startswith("mail postfix") for line in cut)


def test_a_10_gb_log_is_read_from_its_last_bytes(tmp_path: Path) -> None:
    """A sparse 10 GB file (NULs) whose last lines are real: only the tail is read."""
    log = tmp_path / "mail.log"
    real = fixture("postfix-maillog.txt").encode()
    with log.open("wb") as handle:
        handle.truncate(10 * 1024**3)
        handle.seek(0, 2)
        handle.write(b"\n" + real)
    notes: list[str] = []
    view = read_log(log, tmp_path, "postfix", lambda argv: Ran(127, ""), notes)
    assert view.readable and len(view.deferrals) == 9 and notes == []
    assert view.deferrals[-1].domain == "gmail.com"


def test_the_log_is_read_for_a_bounded_time(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(fixture("postfix-maillog.txt"))
    assert list(tail_lines(log, max_seconds=-1)) == []  # the time is up before the first line
    assert len(list(tail_lines(log))) == len(fixture("postfix-maillog.txt").splitlines())


def test_deferrals_kept_are_bounded_and_the_most_recent() -> None:
    line = fixture("postfix-maillog.txt").splitlines()[-1]
    many = [line.replace("bob@gmail.com", f"bob@d{n}.example") for n in range(500)]
    kept = recent_deferrals(many, "postfix")
    assert len(kept) == MAX_DEFERRALS and kept[-1].domain == "d499.example"


def test_the_tools_run_inside_a_container_through_its_exec(tmp_path: Path) -> None:
    """``--container``: every tool runs as ``docker exec NAME tool ...`` (a stand-in
    docker that records its argv and answers like Postfix in the container)."""
    import sys

    from portprobe.mta.read import container_run

    fake = tmp_path / "docker.py"
    fake.write_text(
        "import sys, pathlib\n"
        f"log = pathlib.Path({str(tmp_path / 'argv')!r}).open('a')\n"
        "log.write(' '.join(sys.argv[1:]) + '\\n')\n"
        "tool = sys.argv[3]\n"
        f"fixtures = pathlib.Path({str(FIXTURES)!r})\n"
        "if tool == 'postconf': print((fixtures / 'postconf.txt').read_text())\n"
        "elif tool == 'postqueue': print((fixtures / 'postqueue-j.txt').read_text())\n"
        "else: sys.exit(127)\n"
    )
    run = container_run([sys.executable, str(fake), "exec", "mailserver"])
    view = read_mta(MtaOptions(), run=run, root=postfix_root(tmp_path))
    assert view is not None and view.version == "3.7.11" and view.queue.deferred == 7
    calls = (tmp_path / "argv").read_text().splitlines()
    assert calls[0].startswith("exec mailserver postconf ")
    assert "exec mailserver postqueue -j" in calls


def test_an_unreadable_log_is_a_note(tmp_path: Path) -> None:
    notes: list[str] = []
    log = read_log(tmp_path, tmp_path, "postfix", lambda argv: Ran(127, ""), notes)
    assert not log.readable and log.path == str(tmp_path)
    assert notes and "could not be read" in notes[0]


def test_journald_is_the_last_resort(tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def run(argv: Sequence[str]) -> Ran:
        seen.append(list(argv))
        return Ran(0, fixture("postfix-maillog.txt"))

    log = read_log(None, tmp_path, "postfix", run, [])
    assert log.path == "journald" and len(log.deferrals) == 9
    assert seen[0][0] == "journalctl"


# --- joined with the run --------------------------------------------------------------------


def postfix_view(**settings: str) -> MtaView:
    _, run = postfix_run()
    view = read_mta(MtaOptions(mode="postfix"), run=run)  # type: ignore[arg-type]
    assert view is not None
    log = recent_deferrals(fixture("postfix-maillog.txt").splitlines(), "postfix")
    return replace(
        view,
        settings={**view.settings, **settings},
        log=replace(view.log, readable=True, path="/var/log/mail.log", deferrals=log),
    )


def blocked_report() -> object:
    report = report_for(BY_ID["blocked-dropped"].results)
    assert report.verdict.port25 == "blocked"
    return report


def readiness_v6(iprev: str, name: str | None = None) -> Readiness:
    return Readiness(
        ready="no",
        public_addresses={"ipv6": ("2001:db8::7",)},
        ptr=(PtrCheck("2001:db8::7", (name,) if name else (), iprev, confirmed_name=name),),  # type: ignore[arg-type]
    )


def test_ipv6_no_ptr_gives_the_postfix_line_and_replaces_the_generic_ptr_step() -> None:
    view = assess(postfix_view(), report_for([open_("google")]).verdict, readiness_v6("permerror"))
    codes = {a.code: a for a in view.advice}
    advice = codes["mta-ipv4-only"]
    assert "postconf -e 'smtp_address_preference = ipv4'" in advice.text
    assert "(this run confirms it)" in advice.text
    assert advice.replaces == ("ptr-missing",) and advice.family == "ipv6"


def test_no_ipv6_advice_once_the_ptr_is_there() -> None:
    verdict = report_for([open_("google")]).verdict
    view = assess(postfix_view(), verdict, readiness_v6("pass", "mail.example.net"))
    assert "mta-ipv4-only" not in {a.code for a in view.advice}


def test_path_timeout_and_blocked_give_the_relayhost_and_sasl_lines() -> None:
    report = blocked_report()
    view = assess(postfix_view(), report.verdict, None)  # type: ignore[attr-defined]
    relay = next(a for a in view.advice if a.code == "mta-relayhost")
    assert "postconf -e 'relayhost = [smtp.example.net]:587'" in relay.text
    assert "smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd" in relay.text
    assert "postmap /etc/postfix/sasl_passwd" in relay.text
    assert relay.ports == (587,) and "use-submission" in relay.replaces
    # not blocked: no relayhost step; already relaying: none either
    open_verdict = report_for([open_("google")]).verdict
    assert "mta-relayhost" not in {
        a.code for a in assess(postfix_view(), open_verdict, None).advice
    }
    relaying = postfix_view(relayhost="[smtp.isp.example]:587")
    assert "mta-relayhost" not in {a.code for a in assess(relaying, report.verdict, None).advice}  # type: ignore[attr-defined]


def test_the_relay_port_is_one_that_greeted_here() -> None:
    verdict = blocked_report().verdict  # type: ignore[attr-defined]
    only_465 = assess(postfix_view(), verdict, None, frozenset({465}))
    relay = next(a for a in only_465.advice if a.code == "mta-relayhost")
    assert "relayhost = [smtp.example.net]:465" in relay.text
    assert "'smtp_tls_wrappermode = yes'" in relay.text and relay.ports == (465,)
    both = assess(postfix_view(), verdict, None, frozenset({465, 587}))
    assert "[smtp.example.net]:587" in next(
        a.text for a in both.advice if a.code == "mta-relayhost"
    )


def test_helo_name_unlike_the_ptr_name_gives_the_line_that_sets_it() -> None:
    verdict = report_for([open_("google")]).verdict
    view = assess(postfix_view(), verdict, readiness_v6("pass", "mx.example.net."))
    helo = next(a for a in view.advice if a.code == "mta-helo-name")
    assert "postconf -e 'smtp_helo_name = mx.example.net'" in helo.text
    assert "HELO mail.lab.example" in helo.text


def test_inet_protocols_all_without_an_ipv6_path() -> None:
    verdict = report_for([open_("google")]).verdict
    verdict = replace(verdict, families={**verdict.families, "ipv6": "unavailable"})
    view = assess(postfix_view(), verdict, None)
    step = next(a for a in view.advice if a.code == "mta-inet-protocols")
    assert "postconf -e 'inet_protocols = ipv4'" in step.text
    ipv4_only = postfix_view(inet_protocols="ipv4")
    assert "mta-inet-protocols" not in {a.code for a in assess(ipv4_only, verdict, None).advice}


def test_the_exim_equivalents(tmp_path: Path) -> None:
    (tmp_path / "etc/exim4").mkdir(parents=True)
    (tmp_path / "etc/exim4/update-exim4.conf.conf").write_text(
        "dc_eximconfig_configtype='internet'\n"
    )
    log = tmp_path / "mainlog"
    log.write_text(fixture("exim-mainlog.txt"))  # refused.example: path-refused
    debian = read_mta(MtaOptions(mail_log=log), run=exim_run, root=tmp_path)
    assert debian is not None
    view = assess(debian, blocked_report().verdict, readiness_v6("permerror"))  # type: ignore[attr-defined]
    texts = {a.code: a.text for a in view.advice}
    assert "dc_smarthost='smtp.example.net::587'" in texts["mta-relayhost"]
    assert "update-exim4.conf" in texts["mta-relayhost"]
    assert "disable_ipv6='true'" in texts["mta-ipv4-only"]
    plain = read_mta(MtaOptions(mail_log=log), run=exim_run, root=tmp_path / "nowhere")
    assert plain is not None
    texts = {a.code: a.text for a in assess(plain, blocked_report().verdict, None).advice}  # type: ignore[attr-defined]
    assert "route_list = * smtp.example.net::587" in texts["mta-relayhost"]


def test_exim_already_relaying_gets_no_relay_step_and_its_helo_name_is_read() -> None:
    def run(argv: Sequence[str]) -> Ran:
        if argv[-2:] == ["-bP", "routers"]:
            return Ran(0, fixture("exim-bP-routers.txt"))
        if argv[-2:] == ["-bP", "transports"]:
            return Ran(0, fixture("exim-bP-transports.txt"))
        return exim_run(argv)

    view = read_mta(MtaOptions(), run=run, root=Path("/nonexistent"))
    assert view is not None
    assert view.settings["smarthost_route"] == "* smtp.example.net::587"
    assert view.settings["helo_data"] == "mx.example.net"
    log = recent_deferrals(fixture("exim-mainlog.txt").splitlines(), "exim")
    view = replace(view, log=replace(view.log, deferrals=log))
    advice = assess(view, blocked_report().verdict, readiness_v6("pass", "mail.example.net")).advice  # type: ignore[attr-defined]
    codes = {a.code: a.text for a in advice}
    assert "mta-relayhost" not in codes
    assert "helo_data = mail.example.net" in codes["mta-helo-name"]
    assert "HELO mx.example.net" in codes["mta-helo-name"]


def test_the_companion_removes_the_generic_steps_it_replaces_by_code() -> None:
    report = blocked_report()
    assert "use-submission" in {a.code for a in report.verdict.advice}  # type: ignore[attr-defined]
    out = MtaCompanion(postfix_view()).contribute(report)  # type: ignore[arg-type]
    assert out.mta is not None
    codes = {a.code for a in out.verdict.advice}
    assert "use-submission" not in codes and "relay-2525" in codes
    assert "mta-relayhost" in {a.code for a in out.mta.advice}


def test_queue_domains_most_deferred_first() -> None:
    view = postfix_view()
    assert queue_domains(view, 3) == ("lab.example", "gmail.com", "rate.example")
    assert queue_domains(view, 0) == ()
    assert queue_domains(None, 3) == ()
    no_queue = replace(view, queue=replace(view.queue, readable=False, destinations=()))
    assert queue_domains(no_queue, 2) == ("gmail.com", "lab.example")  # the log, newest first


# --- the report and every renderer ----------------------------------------------------------


def mta_report() -> object:
    report = blocked_report()
    return MtaCompanion(postfix_view()).contribute(report)  # type: ignore[arg-type]


def test_json_report_holds_mta_and_matches_the_schema() -> None:
    data = mta_report().to_dict()  # type: ignore[attr-defined]
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert data["mta"]["kind"] == "postfix"
    assert data["mta"]["queue"]["destinations"][1]["domain"] == "gmail.com"
    assert any("relayhost" in a for a in data["mta"]["advice"])
    none = report_for([open_("google")]).to_dict()
    assert none["mta"] is None
    jsonschema.Draft202012Validator(SCHEMA).validate(none)


def test_table_says_what_is_stuck_and_the_fix_within_80_columns() -> None:
    text = render("table", mta_report(), width=80)  # type: ignore[arg-type]
    assert "Your mail server: Postfix 3.7.11, 7 deferred (2 dns to lab.example, 1" in " ".join(
        text.split()
    )
    assert "postconf -e 'relayhost = [smtp.example.net]:587'" in " ".join(text.split())
    assert all(len(line) <= 80 for line in text.splitlines())


def test_markdown_junit_nagios_and_openmetrics_carry_the_mta() -> None:
    report = mta_report()
    assert "### Your mail server: Postfix 3.7.11" in render("markdown", report)  # type: ignore[arg-type]
    root = ET.fromstring(render("junit", report))  # type: ignore[arg-type]
    case = next(c for c in root.iter("testcase") if c.get("classname") == "portprobe.mta")
    assert case.find("failure") is not None
    nagios = render("nagios", report)  # type: ignore[arg-type]
    assert "\nmta: Your mail server: Postfix 3.7.11" in nagios
    assert "mta_deferred=7" in nagios
    text = render("openmetrics", report)  # type: ignore[arg-type]
    got = {
        s.labels["reason"]: s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == "portprobe_mta_queue_deferred"
    }
    assert got["path-timeout"] == 1 and got["dns"] == 2 and got["no-ptr"] == 0
    assert len(got) == 9
    promtool(text)
    assert "portprobe_mta" not in render("openmetrics", report_for([open_("google")]))


# --- the diagnosis: the deferred domains join the targets -----------------------------------


def test_deferred_domains_join_the_plan_per_family(tmp_path: Path) -> None:
    zone = {
        "gmail.com": {"MX": [(5, "mx.gmail.com")]},
        "mx.gmail.com": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
    }
    dns = FakeDNS(zone)
    _, run = postfix_run()
    request = DiagnoseRequest(
        targets=("127.0.0.2",), ports=(25,), mta="auto", queue_destinations=2, timeout=1
    )
    diagnosis = Diagnosis(request, lookup=dns, mta_run=run, mta_root=postfix_root(tmp_path))  # type: ignore[arg-type]

    async def go() -> None:
        with trio.move_on_after(5):
            await diagnosis.run()

    trio.run(go)
    report = diagnosis.report()
    planned = {(p.result.spec.host, p.result.spec.family) for p in report.probes}
    assert ("mx.gmail.com", "ipv4") in planned and ("mx.gmail.com", "ipv6") in planned
    assert ("lab.example", "MX") in dns.asked  # the most deferred domain, first
    assert report.mta is not None and report.to_dict()["parameters"]["mta"] == "auto"


def test_postfix_log_is_read_beside_the_probes_or_at_the_latest_for_the_report(
    tmp_path: Path,
) -> None:
    log = tmp_path / "mail.log"
    log.write_text(fixture("postfix-maillog.txt"))
    _, run = postfix_run()
    request = DiagnoseRequest(
        targets=("127.0.0.2",), ports=(25,), mta="auto", mail_log=log, queue_destinations=0
    )
    diagnosis = Diagnosis(request, mta_run=run, mta_root=postfix_root(tmp_path))  # type: ignore[arg-type]
    companion = next(c for c in diagnosis.companions if isinstance(c, MtaCompanion))
    assert companion.view is not None and companion.view.log.path is None  # not yet read
    trio.run(diagnosis.run)
    assert companion.view.log.path == str(log)  # read by run(), in a thread
    assert len(diagnosis.report().mta.log.deferrals) == 9  # type: ignore[union-attr]
    # a run that never started (interrupted at once): the report still reads it
    unrun = Diagnosis(request, mta_run=run, mta_root=postfix_root(tmp_path))  # type: ignore[arg-type]
    assert len(unrun.report(interrupted=True).mta.log.deferrals) == 9  # type: ignore[union-attr]


def test_mta_none_reads_nothing() -> None:
    calls, run = postfix_run()
    diagnosis = Diagnosis(DiagnoseRequest(targets=("127.0.0.2",), mta="none"), mta_run=run)  # type: ignore[arg-type]
    assert calls == [] and not any(isinstance(c, MtaCompanion) for c in diagnosis.companions)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mail_log", Path("/nonexistent/mail.log"), "--mail-log"),
        ("postfix_config", Path("/nonexistent"), "--postfix-config"),
        ("exim_config", Path("/nonexistent/exim.conf"), "--exim-config"),
    ],
)
def test_a_missing_path_the_user_typed_is_an_input_error(
    field: str, value: Path, message: str
) -> None:
    request = DiagnoseRequest(targets=("127.0.0.2",), mta="auto", **{field: value})
    with pytest.raises(InputError, match=message):
        Diagnosis(request, mta_run=lambda argv: Ran(127, ""))


def test_request_checks_mta_words() -> None:
    with pytest.raises(InputError, match="--mta"):
        DiagnoseRequest(mta="sendmail")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="--queue-destinations"):
        DiagnoseRequest(queue_destinations=-1)
    assert hash(DiagnoseRequest(mta="auto", mail_log=Path("x"))) is not None


# --- the command line: bad input is one line and exit 2 -------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--mta", "sendmail"], {}, "--mta: 'sendmail' is not one of"),
        (["--mail-log", "/nonexistent/mail.log"], {}, "--mail-log: /nonexistent/mail.log"),
        (["--mta", "none", "--mail-log", "x"], {}, "--mta none reads no mail server"),
        (["--netns", "no-such-namespace"], {}, "--netns: no network namespace"),
        (["--netns", "x", "--container", "y"], {}, "exclude each other"),
        (["--container", "mailserver"], {"PATH": ""}, "neither docker nor podman"),
        (["--queue-destinations", "-1"], {}, "--queue-destinations"),
    ],
)
def test_bad_mta_and_namespace_input_is_one_line_and_exit_2(
    args: list[str], env: dict[str, str], message: str
) -> None:
    from tests.test_cli import portprobe

    proc = portprobe("--target", "127.0.0.1", "-q", *args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_a_namespace_resolver_becomes_nameservers(tmp_path: Path) -> None:
    from portprobe.cli.namespace import nameservers_from

    conf = tmp_path / "resolv.conf"
    conf.write_text("# docker\nnameserver 127.0.0.11\nnameserver fe80::1%eth0\noptions ndots:0\n")
    assert nameservers_from(conf) == ["127.0.0.11", "fe80::1"]
    assert nameservers_from(tmp_path / "missing") == []


def test_inside_the_namespace_nothing_is_entered_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from portprobe.cli import namespace

    monkeypatch.setenv(namespace.INSIDE, "1")
    monkeypatch.setattr(namespace.os, "execve", lambda *a: pytest.fail("re-executed"))
    namespace.enter("no-such-namespace", None, nameservers_given=False)


def test_redact_hides_our_address_in_what_the_mta_logged() -> None:
    from portprobe.report.redact import redact_report

    view = postfix_view()
    ours = "2001:db8::7"
    text = f"host mx[2001:db8:113::99] said: 550-5.7.25 [{ours}] The IP address sending ..."
    deferral = replace(view.log.deferrals[2], text=text)
    view = replace(view, log=replace(view.log, deferrals=(deferral,)))
    report = replace(report_for([open_("google")]), readiness=readiness_v6("permerror"))
    redacted = redact_report(MtaCompanion(view).contribute(report))
    dumped = json.dumps(redacted.to_dict()["mta"])
    assert ours not in dumped and "<redacted-address-" in dumped
