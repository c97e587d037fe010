"""The MTAs' own texts, read: ``postconf``, ``postqueue -j``, ``exim -bP``, ``exim -bp``,
Postfix's and Exim's log lines, and why one delivery was deferred.

Every pattern here was checked against texts the real programs wrote
(tests/fixtures/mta/, recorded by tests/fixtures/mta/record.py). Pure: text in, data out;
a line that does not parse is skipped, never an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from portprobe.mta.model import Deferral, Queue, QueueDestination
from portprobe.vocab import Family, MtaReason

#: At most this many destination domains are kept in the report (most messages first).
MAX_DESTINATIONS = 20

# Receivers' words first (they say why they refuse), then the TLS layer, then the path.
_REASONS: tuple[tuple[MtaReason, re.Pattern[str]], ...] = (
    (
        "no-ptr",
        re.compile(
            r"5\.7\.25|PTR record|reverse (?:DNS|dns|lookup|hostname)|IPv6 sending guidelines"
            r"|rDNS|no PTR",
        ),
    ),
    (
        "blocklisted",
        re.compile(
            r"blocked using|spamhaus|blacklist|blocklist|block list|listed (?:at|in|by|on)"
            r"|\bDNSBL\b|\bRBL\b|barracuda|spamcop|S3150",
            re.IGNORECASE,
        ),
    ),
    (
        "rate-limited",
        re.compile(
            r"4\.7\.28|rate limit|unusual rate|too many (?:connections|messages|recipients)"
            r"|throttl|TSS04|try again later.*(?:volume|rate)",
            re.IGNORECASE,
        ),
    ),
    ("tls", re.compile(r"\bTLS\b|STARTTLS|certificate|SSL_", re.IGNORECASE)),
    ("path-timeout", re.compile(r"timed out|timeout", re.IGNORECASE)),
    ("path-refused", re.compile(r"Connection refused", re.IGNORECASE)),
    (
        "network-unreachable",
        re.compile(
            r"Network is unreachable|No route to host|Cannot assign requested address"
            r"|Address family not supported",
            re.IGNORECASE,
        ),
    ),
    (
        "dns",
        re.compile(
            r"Host or domain name not found|Name service error|unable to look up host"
            r"|Temporary failure in name resolution|MX records? point|all host address lookups"
            r"|host lookup did not complete|no (?:MX|A|AAAA) record|DNS",
            re.IGNORECASE,
        ),
    ),
)


def classify(text: str) -> MtaReason:
    """Why a delivery failed, from the words the MTA logged or queued for it."""
    for reason, pattern in _REASONS:
        if pattern.search(text):
            return reason
    return "other"


def family_of(address: str | None) -> Family | None:
    if not address:
        return None
    if ":" in address:
        return "ipv6"
    if re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", address):
        return "ipv4"
    return None


def domain_of(address: str) -> str | None:
    _, at, domain = address.strip("<>").rpartition("@")
    return domain.lower().rstrip(".") or None if at else None


# --- settings -------------------------------------------------------------------------------


def parse_postconf(text: str) -> dict[str, str]:
    """``postconf name ...`` output: ``name = value`` lines."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            out[name.strip()] = value.strip()
        elif line.endswith(" ="):
            out[line[:-2].strip()] = ""
    return out


def parse_exim_bp_options(text: str) -> dict[str, str]:
    """``exim -bP name ...``: ``name = value``, ``no_name`` (false) or ``name`` (true)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or " " in line.split("=")[0].strip():
            continue
        name, sep, value = line.partition("=")
        if sep:
            out[name.strip()] = value.strip()
        elif line.startswith("no_"):
            out[line[3:]] = "false"
        else:
            out[line] = "true"
    return out


def parse_exim_drivers(text: str, kind: str) -> list[tuple[str, dict[str, str]]]:
    """``exim -bP routers`` / ``-bP transports``: ``NAME router:`` then its options."""
    out: list[tuple[str, dict[str, str]]] = []
    suffix = f" {kind}:"
    for line in text.splitlines():
        line = line.strip()
        if line.endswith(suffix):
            out.append((line[: -len(suffix)], {}))
        elif out and " = " in line:
            name, _, value = line.partition(" = ")
            out[-1][1][name.strip()] = value.strip()
    return out


def exim_route_settings(routers: str, transports: str) -> dict[str, str]:
    """The smarthost route (the first ``manualroute`` router's ``route_list``) and the HELO
    name of the first ``smtp`` transport that sets one."""
    found: dict[str, str] = {}
    for _, options in parse_exim_drivers(routers, "router"):
        if options.get("driver") == "manualroute" and options.get("route_list"):
            found["smarthost_route"] = options["route_list"]
            break
    for _, options in parse_exim_drivers(transports, "transport"):
        if options.get("driver") == "smtp" and options.get("helo_data"):
            found["helo_data"] = options["helo_data"]
            break
    return found


def parse_debian_exim_conf(text: str) -> dict[str, str]:
    """Debian's ``update-exim4.conf.conf``: ``dc_name='value'`` lines."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"\s*(dc_\w+)\s*=\s*'?([^']*)'?\s*$", line)
        if match:
            out[match.group(1)] = match.group(2)
    return out


# --- the queue ------------------------------------------------------------------------------


@dataclass
class _Tally:
    count: int = 0
    error: str | None = None


def _queue(total: int, deferred: int, tallies: dict[str, _Tally]) -> Queue:
    ranked = sorted(tallies.items(), key=lambda item: (-item[1].count, item[0]))
    return Queue(
        readable=True,
        total=total,
        deferred=deferred,
        destinations=tuple(
            QueueDestination(
                domain=domain,
                count=tally.count,
                reason=classify(tally.error) if tally.error else "other",
                last_error=tally.error,
            )
            for domain, tally in ranked[:MAX_DESTINATIONS]
        ),
    )


def parse_postqueue_json(lines: Iterable[str]) -> Queue:
    """``postqueue -j``: one JSON object per message (Postfix >= 3.1)."""
    total = deferred = 0
    tallies: dict[str, _Tally] = {}
    for line in lines:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        total += 1
        if message.get("queue_name") != "deferred":
            continue
        deferred += 1
        seen: set[str] = set()
        for rcpt in message.get("recipients") or ():
            if not isinstance(rcpt, dict):
                continue
            domain = domain_of(str(rcpt.get("address", "")))
            if domain is None or domain in seen:
                continue
            seen.add(domain)
            tally = tallies.setdefault(domain, _Tally())
            tally.count += 1
            if rcpt.get("delay_reason"):
                tally.error = str(rcpt["delay_reason"])
    return _queue(total, deferred, tallies)


_EXIM_BP_HEAD = re.compile(r"^\s*\d+[smhdw]\s+\S+\s+\S+-\S+-\S+\s+<[^>]*>")


def parse_exim_bp(lines: Iterable[str], errors: dict[str, str] | None = None) -> Queue:
    """``exim -bp``: a header line per message, then its undelivered recipients indented
    (``D`` before one already delivered). Exim queues only what is not yet delivered, so
    every message counts as deferred; the last error per domain comes from the log."""
    total = 0
    tallies: dict[str, _Tally] = {}
    seen: set[str] = set()
    for line in lines:
        if _EXIM_BP_HEAD.match(line):
            total += 1
            seen = set()
            continue
        stripped = line.strip()
        if not stripped or not line[:1].isspace() or stripped.startswith("D "):
            continue
        domain = domain_of(stripped.split()[-1])
        if domain is None or domain in seen:
            continue
        seen.add(domain)
        tally = tallies.setdefault(domain, _Tally())
        tally.count += 1
        tally.error = (errors or {}).get(domain)
    return _queue(total, total, tallies)


# --- the log --------------------------------------------------------------------------------

_SYSLOG_TIME = (
    r"(?:\w{3} [ \d]\d \d\d:\d\d:\d\d"  # classic syslog, Postfix's maillog_file
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"  # RFC 3339 syslog
)
_POSTFIX = re.compile(
    rf"^(?P<time>{_SYSLOG_TIME}) \S+ postfix[^/\s]*/(?:smtp|lmtp|error|relay|retry)\[\d+\]: "
    r"\w+: to=<(?P<rcpt>[^>]*)>,(?:.*?) relay=(?P<relay>[^,]+),.*? "
    r"status=(?P<status>deferred|bounced) \((?P<text>.*)\)\s*$"
)
_HOST_IP = re.compile(r"\[(?P<ip>[0-9a-fA-F:.]+)\]")
_EXIM = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)?(?: [+-]\d{4})?(?: \[\d+\])? "
    r"\S+ (?P<flag>==|\*\*) (?P<rcpt>\S+) (?:<[^>]*> )?(?P<rest>.*)$"
)
_EXIM_TEXT = re.compile(
    r"(?:defer \([-\d]+\)(?:: | (?=H=))|(?=H=))(?:H=\S+ \[[^\]]+\](?::\d+)?:? )?(?P<text>.*)$"
)


def parse_postfix_line(line: str) -> Deferral | None:
    match = _POSTFIX.match(line)
    if match is None:
        return None
    text = match["text"]
    relay = match["relay"]
    where = _HOST_IP.search(text) or (None if relay == "none" else _HOST_IP.search(relay))
    host = where["ip"] if where else None
    return Deferral(
        time=match["time"],
        domain=domain_of(match["rcpt"]),
        host=host,
        family=family_of(host),
        reason=classify(text),
        text=text,
    )


def parse_exim_line(line: str) -> Deferral | None:
    match = _EXIM.match(line)
    if match is None:
        return None
    rest = match["rest"].replace("\\n", " ")
    where = _HOST_IP.search(rest)
    host = where["ip"] if where else None
    body = _EXIM_TEXT.search(rest)
    text = body["text"] if body else rest
    return Deferral(
        time=match["time"],
        domain=domain_of(match["rcpt"]),
        host=host,
        family=family_of(host),
        reason=classify(text),
        text=text,
    )


_EXIM_HOST_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})?(?: \[\d+\])? "
    r"(?P<id>\S+) H=\S+ \[(?P<ip>[0-9a-fA-F:.]+)\]"
)


def exim_host_line(line: str) -> tuple[str, str] | None:
    """``(message id, address)`` of an Exim line about one host of a delivery attempt."""
    match = _EXIM_HOST_LINE.match(line)
    return (match["id"], match["ip"]) if match else None


def exim_message_id(line: str) -> str | None:
    match = _EXIM.match(line)
    if match is None:
        return None
    before = line[: match.start("flag")].split()
    return before[-1] if before else None


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


def clean_text(raw: str) -> str:
    """Log text with binary junk (NULs, control bytes; bad UTF-8 already replaced) made
    harmless: every control character but the newline becomes a space."""
    return _CONTROL.sub(" ", raw)
