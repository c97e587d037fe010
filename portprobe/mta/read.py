"""Find the local MTA and read it through its own tools, read-only and bounded.

Two seams: ``run(argv) -> Ran`` runs one of the MTA's tools (tests give recorded
outputs; ``--container`` prefixes ``docker exec NAME``), and ``root`` is where the
machine's files are (the log, Debian's ``update-exim4.conf.conf``). Nothing here writes:
no ``postsuper``, no flush, no config change, no mail. What cannot be read (permissions,
a failing tool) becomes a note, never an error; no MTA at all is ``None`` without a note.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from portprobe.mta.model import Deferral, MailLog, MtaView, Queue
from portprobe.mta.parse import (
    clean_text,
    exim_host_line,
    exim_message_id,
    exim_route_settings,
    family_of,
    parse_debian_exim_conf,
    parse_exim_bp,
    parse_exim_bp_options,
    parse_exim_line,
    parse_postconf,
    parse_postfix_line,
    parse_postqueue_json,
)
from portprobe.vocab import MtaKind, MtaMode

#: The settings that decide where and how mail leaves (spec list).
POSTFIX_SETTINGS = (
    "mail_version",
    "relayhost",
    "default_transport",
    "inet_protocols",
    "smtp_address_preference",
    "myhostname",
    "smtp_helo_name",
    "smtp_bind_address",
    "smtp_bind_address6",
    "smtp_tls_security_level",
)
EXIM_SETTINGS = (
    "exim_version",
    "primary_hostname",
    "disable_ipv6",
    "dns_ipv4_lookup",
    "log_file_path",
)
#: Bounds: a 10 GB log is read from its last LOG_BYTES, for at most LOG_SECONDS; a tool
#: gets TOOL_SECONDS and its output is read up to TOOL_BYTES (a 100,000-message queue is
#: ~30 MB of ``postqueue -j``); at most MAX_DEFERRALS recent log deferrals are kept.
LOG_BYTES = 8 * 1024 * 1024
LOG_SECONDS = 2.0
TOOL_SECONDS = 10.0
TOOL_BYTES = 64 * 1024 * 1024
MAX_DEFERRALS = 50
LOG_FILES = ("var/log/mail.log", "var/log/maillog")
EXIM_LOG_FILES = ("var/log/exim4/mainlog", "var/log/exim/main.log", "var/log/exim/mainlog")
SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


@dataclass(frozen=True)
class Ran:
    """One tool's outcome: ``code`` 127 when the tool is not there."""

    code: int
    stdout: str
    stderr: str = ""


Run = Callable[[Sequence[str]], Ran]


def system_run(argv: Sequence[str]) -> Ran:
    """Run one read-only MTA tool here, bounded in time and output size."""
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN)
    exe = shutil.which(argv[0], path=path)
    if exe is None:
        return Ran(127, "", f"{argv[0]}: not found")
    return _bounded([exe, *argv[1:]])


def _bounded(argv: Sequence[str]) -> Ran:
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TOOL_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Ran(124, "", f"{argv[0]}: no answer within {TOOL_SECONDS:g} s")
    except OSError as exc:
        return Ran(126, "", f"{argv[0]}: {exc.strerror or exc}")
    out = proc.stdout[:TOOL_BYTES].decode("utf-8", errors="replace")
    return Ran(proc.returncode, out, proc.stderr[:4096].decode("utf-8", errors="replace"))


def container_run(prefix: Sequence[str]) -> Run:
    """The tools inside a container: ``docker exec NAME`` (or podman) before each argv."""

    def run(argv: Sequence[str]) -> Ran:
        ran = _bounded([*prefix, *argv])
        if ran.code in (126, 127) or "executable file not found" in ran.stderr:
            return Ran(127, "", ran.stderr)
        return ran

    return run


@dataclass(frozen=True)
class MtaOptions:
    """What the user said about the MTA (``--mta``, ``--postfix-config``, ...)."""

    mode: MtaMode = "auto"
    postfix_config: Path | None = None
    exim_config: Path | None = None
    mail_log: Path | None = None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def read_mta(
    options: MtaOptions, *, run: Run = system_run, root: Path = Path("/"), log: bool = True
) -> MtaView | None:
    """The local MTA as its tools show it, or None when there is none (or ``--mta none``).

    ``log=False``: a Postfix whose queue was readable is returned with its log unread
    (``MailLog(False, None)``), for :func:`read_postfix_log` to fill in later, while the
    probes run; Exim's log is always read (its queue's errors come from it).
    """
    if options.mode == "none":
        return None
    if options.mode in ("auto", "postfix"):
        view = _read_postfix(options, run, root, log)
        if view is not None:
            return view
    if options.mode in ("auto", "exim"):
        view = _read_exim(options, run, root)
        if view is not None:
            return view
    if options.mode != "auto":
        return _absent(options.mode)
    return None


def _absent(kind: MtaKind) -> MtaView:
    """``--mta postfix|exim`` named an MTA its tools do not show: an empty view + a note."""
    tool = "postconf" if kind == "postfix" else "exim"
    return MtaView(
        kind=kind,
        version=None,
        found_by="--mta",
        settings={},
        queue=Queue(readable=False),
        log=MailLog(readable=False, path=None),
        notes=(f"--mta {kind}: {tool} was not found or did not answer; nothing was read.",),
    )


# --- Postfix --------------------------------------------------------------------------------


#: Where a packaged Postfix keeps main.cf (Linux, the BSDs' ports).
POSTFIX_MAIN_CF = ("etc/postfix/main.cf", "usr/local/etc/postfix/main.cf")


def _read_postfix(options: MtaOptions, run: Run, root: Path, with_log: bool) -> MtaView | None:
    config = ["-c", str(options.postfix_config)] if options.postfix_config else []
    if (
        options.mode == "auto"
        and not config
        and "MAIL_CONFIG" not in os.environ
        and not any((root / name).exists() for name in POSTFIX_MAIN_CF)
    ):
        # Not configured, so no mail server here; and no postconf run to find that out:
        # a Postfix tool's fatal error sleeps a second before it exits.
        return None
    ran = run(["postconf", *config, *POSTFIX_SETTINGS])
    found_by = " ".join(["postconf", *config])
    notes: list[str] = []
    if ran.code == 127:
        return None
    settings = {k: v for k, v in parse_postconf(ran.stdout).items() if k in POSTFIX_SETTINGS}
    if ran.code != 0 or "mail_version" not in settings:
        problem = _first_line(ran.stderr or ran.stdout)
        not_configured = "main.cf" in problem and "No such file" in problem
        if options.mode == "auto" and not options.postfix_config and not_configured:
            return None  # Postfix installed but never configured: no mail server here
        notes.append(f"Postfix: {found_by} failed ({problem}); its settings are unknown.")
    version = settings.pop("mail_version", None)
    queue = _postfix_queue(run, config, notes)
    log = MailLog(readable=False, path=None)
    if with_log or not queue.readable:  # no queue: the log names the deferred domains
        log = read_log(options.mail_log, root, "postfix", run, notes)
    return MtaView("postfix", version, found_by, settings, queue, log, notes=tuple(notes))


def read_postfix_log(
    options: MtaOptions, *, run: Run = system_run, root: Path = Path("/")
) -> tuple[MailLog, tuple[str, ...]]:
    """Postfix's log and the notes reading it gave (see ``read_mta(log=False)``)."""
    notes: list[str] = []
    log = read_log(options.mail_log, root, "postfix", run, notes)
    return log, tuple(notes)


def _postfix_queue(run: Run, config: list[str], notes: list[str]) -> Queue:
    ran = run(["postqueue", *config, "-j"])
    if ran.code != 0:
        notes.append(
            f"Postfix: the queue could not be read (postqueue -j: "
            f"{_first_line(ran.stderr or ran.stdout)}); run as root or in group postdrop."
        )
        return Queue(readable=False)
    return parse_postqueue_json(ran.stdout.splitlines())


# --- Exim -----------------------------------------------------------------------------------


def _read_exim(options: MtaOptions, run: Run, root: Path) -> MtaView | None:
    config = ["-C", str(options.exim_config)] if options.exim_config else []
    notes: list[str] = []
    for binary in ("exim4", "exim"):
        ran = run([binary, *config, "-bP", *EXIM_SETTINGS])
        if ran.code != 127:
            break
    else:
        return None
    found_by = " ".join([binary, *config])
    settings = {k: v for k, v in parse_exim_bp_options(ran.stdout).items() if k in EXIM_SETTINGS}
    if ran.code != 0 or "exim_version" not in settings:
        notes.append(
            f"Exim: {found_by} -bP failed ({_first_line(ran.stderr or ran.stdout)}); "
            "its settings are unknown."
        )
    version = settings.pop("exim_version", None)
    log_path = settings.pop("log_file_path", "")
    routers = run([binary, *config, "-bP", "routers"])
    transports = run([binary, *config, "-bP", "transports"])
    if routers.code == 0 and transports.code == 0:
        settings.update(exim_route_settings(routers.stdout, transports.stdout))
    debian = root / "etc/exim4/update-exim4.conf.conf"
    try:
        dc = parse_debian_exim_conf(debian.read_text(errors="replace"))
    except OSError:
        dc = {}
    if dc:
        settings["dc_eximconfig_configtype"] = dc.get("dc_eximconfig_configtype", "")
        settings["dc_smarthost"] = dc.get("dc_smarthost", "")
    mail_log = options.mail_log
    if mail_log is None:
        mail_log = _exim_log_path(log_path, root)
    log = read_log(mail_log, root, "exim", run, notes)
    errors = {d.domain: d.text for d in log.deferrals if d.domain}
    queue = Queue(readable=False)
    ran = run([binary, *config, "-bp"])
    if ran.code == 0:
        queue = parse_exim_bp(ran.stdout.splitlines(), errors)
    else:
        notes.append(
            f"Exim: the queue could not be read ({binary} -bp: "
            f"{_first_line(ran.stderr or ran.stdout)}); run as root or as the Exim user."
        )
    return MtaView("exim", version, found_by, settings, queue, log, notes=tuple(notes))


def _exim_log_path(log_file_path: str, root: Path) -> Path | None:
    """Exim's main log: from its ``log_file_path`` (``%s`` = ``main``), else the usual files."""
    for part in log_file_path.split(":"):
        part = part.strip()
        if part and part != "syslog" and "%s" in part:
            path = Path(part.replace("%s", "main"))
            return root / path.relative_to("/") if path.is_absolute() else path
    for name in EXIM_LOG_FILES:
        if (root / name).exists():
            return root / name
    return None


# --- the log --------------------------------------------------------------------------------


def read_log(given: Path | None, root: Path, kind: MtaKind, run: Run, notes: list[str]) -> MailLog:
    """Recent deferrals from the log: the given file, else the usual ones, else journald."""
    candidates = [given] if given is not None else [root / name for name in LOG_FILES]
    for path in candidates:
        if path is None or not path.exists():
            continue
        try:
            deferrals = recent_deferrals(tail_lines(path), kind)
        except OSError as exc:
            notes.append(f"The mail log {path} could not be read ({exc.strerror or exc}).")
            return MailLog(readable=False, path=str(path))
        return MailLog(True, str(path), deferrals)
    if kind == "postfix" and given is None:
        ran = run(["journalctl", "-q", "--no-pager", "-o", "short", "-n", "20000",
                   "-t", "postfix/smtp", "-t", "postfix/error", "-t", "postfix/lmtp"])  # fmt: skip
        if ran.code == 0 and ran.stdout.strip():
            return MailLog(True, "journald", recent_deferrals(ran.stdout.splitlines(), kind))
    return MailLog(readable=False, path=None)


def tail_lines(
    path: Path, *, max_bytes: int = LOG_BYTES, max_seconds: float = LOG_SECONDS
) -> Iterator[str]:
    """The last ``max_bytes`` of a log as clean lines, read for at most ``max_seconds``."""
    deadline = time.monotonic() + max_seconds
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        start = max(0, size - max_bytes)
        handle.seek(start)
        data = handle.read(max_bytes)
    if start > 0:
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    # one pass over the whole tail: bad UTF-8 replaced, every control character a space
    text = clean_text(data.decode("utf-8", errors="replace"))
    for count, line in enumerate(text.split("\n")):
        if count % 4096 == 0 and time.monotonic() > deadline:
            return
        if line.strip():
            yield line.rstrip()


def recent_deferrals(lines: Iterable[str], kind: MtaKind) -> tuple[Deferral, ...]:
    if kind == "exim":
        return tuple(exim_deferrals(lines)[-MAX_DEFERRALS:])
    # a substring test first: most lines of a mail log are not failed deliveries
    candidates = (line for line in lines if "status=deferred" in line or "status=bounced" in line)
    found = [d for d in map(parse_postfix_line, candidates) if d is not None]
    return tuple(found[-MAX_DEFERRALS:])


def exim_deferrals(lines: Iterable[str]) -> list[Deferral]:
    """Exim's ``==`` line for a connection failure names no host; the line before it,
    ``ID H=name [address] Connection timed out``, does: the two are joined by message id."""
    host_of: dict[str, str] = {}
    found: list[Deferral] = []
    for line in lines:
        if " H=" not in line and " == " not in line and " ** " not in line:
            continue
        deferral = parse_exim_line(line)
        if deferral is None:
            seen = exim_host_line(line)
            if seen is not None:
                host_of[seen[0]] = seen[1]
            continue
        message_id = exim_message_id(line)
        if deferral.host is None and message_id in host_of:
            host = host_of[message_id]
            deferral = replace(deferral, host=host, family=family_of(host))
        found.append(deferral)
    return found
