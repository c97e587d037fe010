"""Many reports, one view: ``portprobe merge`` over the JSON reports of many vantage points.

The distributed part is the engine people already run (a CI matrix, Prometheus scraping
many hosts, cron on a few servers); portprobe's part is reading the reports they leave
behind and saying, honestly, what each vantage point saw and how many see each verdict —
counted per vantage point like OONI's aggregation (ok / anomaly per probe network), never
averaged into one verdict that nobody measured.

A report file is input from elsewhere, so it is read like network text: bounded
(``MAX_REPORT_BYTES``), parsed, and only the few fields the view uses are checked, each
failure one line naming the file (``InputError``). Strings are kept as they were (capped
in length) and made visible by the renderers, never here, so the JSON view stays exact.

Pure: no trio, socket, ssl, dns or typer.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Final

from portprobe.errors import InputError
from portprobe.outcome import SCHEMA_VERSION
from portprobe.vocab import FAMILIES, FAMILY_VERDICTS, MAIL_PORTS, VERDICTS

#: A real report is tens of kilobytes (the catalog run: ~150 probes, ~200 KB). 16 MiB is
#: far above any honest report and far below what would hurt to parse.
MAX_REPORT_BYTES: Final = 16 * 1024 * 1024
#: Strings from a report are capped: a vantage row is a summary, not a copy of the file.
MAX_TEXT: Final = 200
MAX_LINES: Final = 20
STDIN: Final = "-"


@dataclass(frozen=True)
class Vantage:
    """What one report says: who looked, from where, when, and what they saw."""

    name: str  # unique within a fleet: the report's vantage name or the file's stem
    source: str  # the file it came from ("-" for stdin)
    started_at: str
    tool_version: str
    port25: str  # a VerdictWord
    families: Mapping[str, str]  # family -> FamilyVerdictWord
    confidence: str
    ports: Mapping[int, str]  # tested port -> its summary state ("open", "filtered", ...)
    reachable: Mapping[int, bool]
    platform: str | None = None
    ci: str | None = None
    public_addresses: tuple[str, ...] = ()  # "(redacted)" where --redact hid one
    ready: str | None = None
    interrupted: bool = False
    reasons: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    #: Who stops port 25 (the report's ``path.blocker``): where, how, hop, address, asn,
    #: as_name; None when the report placed no blocker (or predates the path trace).
    blocker: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "started_at": self.started_at,
            "tool_version": self.tool_version,
            "platform": self.platform,
            "ci": self.ci,
            "public_addresses": list(self.public_addresses),
            "verdict": {
                "port25": self.port25,
                "families": dict(self.families),
                "confidence": self.confidence,
            },
            "ports": {
                str(p): {"state": s, "reachable": self.reachable.get(p, False)}
                for p, s in sorted(self.ports.items())
            },
            "ready": self.ready,
            "interrupted": self.interrupted,
            "reasons": list(self.reasons),
            "advice": list(self.advice),
            "blocker": dict(self.blocker) if self.blocker is not None else None,
        }


@dataclass(frozen=True)
class Fleet:
    """Every vantage point, and how many of them see each verdict."""

    vantages: tuple[Vantage, ...]
    verdicts: Mapping[str, int] = field(default_factory=dict)  # port-25 verdict -> count
    families: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    ports: Mapping[int, Mapping[str, int]] = field(default_factory=dict)  # port -> state -> n
    blockers: Mapping[str, int] = field(default_factory=dict)  # path.blocker.where -> n

    def to_dict(self) -> dict[str, Any]:
        return {
            "vantages": [v.to_dict() for v in self.vantages],
            "summary": {
                "vantages": len(self.vantages),
                "verdicts": dict(self.verdicts),
                "families": {f: dict(c) for f, c in self.families.items()},
                "ports": {str(p): dict(c) for p, c in sorted(self.ports.items())},
                "blockers": dict(self.blockers),
            },
        }


def build_fleet(vantages: Iterable[Vantage]) -> Fleet:
    """The fleet of ``vantages``, names made unique (``name``, ``name#2`` ...), counted."""
    unique: list[Vantage] = []
    seen: Counter[str] = Counter()
    for v in vantages:
        seen[v.name] += 1
        name = v.name if seen[v.name] == 1 else f"{v.name}#{seen[v.name]}"
        unique.append(v if name == v.name else _renamed(v, name))
    verdicts = Counter(v.port25 for v in unique)
    families: dict[str, dict[str, int]] = {
        fam: dict(Counter(v.families.get(fam, "untested") for v in unique)) for fam in FAMILIES
    }
    ports: dict[int, Counter[str]] = {}
    for v in unique:
        for port, state in v.ports.items():
            ports.setdefault(port, Counter())[state] += 1
    return Fleet(
        vantages=tuple(unique),
        verdicts={w: verdicts[w] for w in VERDICTS if verdicts[w]},
        families=families,
        ports={p: dict(c) for p, c in sorted(ports.items())},
        blockers=dict(Counter(str(v.blocker["where"]) for v in unique if v.blocker is not None)),
    )


def _renamed(v: Vantage, name: str) -> Vantage:
    return replace(v, name=name)


# --- reading ------------------------------------------------------------------------------


def expand_sources(sources: Sequence[str]) -> list[str]:
    """Files as given, a directory as its ``*.json`` files (sorted), ``-`` as stdin."""
    out: list[str] = []
    for source in sources:
        if source != STDIN and os.path.isdir(source):
            found = sorted(str(p) for p in Path(source).glob("*.json") if p.is_file())
            if not found:
                raise InputError(f"{source}: directory holds no *.json report")
            out += found
        else:
            out.append(source)
    return out


def read_bounded(source: str, stdin: IO[bytes] | None = None) -> bytes:
    """At most ``MAX_REPORT_BYTES`` of ``source``; a larger one is an error, not a slurp."""
    try:
        if source == STDIN:
            if stdin is None:
                raise InputError("-: no standard input to read")
            data = stdin.read(MAX_REPORT_BYTES + 1)
        else:
            with open(source, "rb") as handle:
                data = handle.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_REPORT_BYTES:
        raise InputError(
            f"{source}: larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB; not a portprobe report"
        )
    return data


def parse_report(data: bytes, source: str) -> dict[str, Any]:
    """The JSON object in ``data``, or one line saying why it is not one."""
    if not data.strip():
        raise InputError(f"{source}: empty file, not a portprobe report")
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text (byte {exc.start}); not JSON") from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except (ValueError, RecursionError) as exc:  # digit limits, absurd nesting
        raise InputError(f"{source}: not a usable JSON document ({type(exc).__name__})") from exc
    if not isinstance(doc, dict):
        raise InputError(f"{source}: JSON {type(doc).__name__}, expected a report object")
    return doc


def _text(value: object, limit: int = MAX_TEXT) -> str:
    return str(value)[:limit]


def _need(doc: Mapping[str, Any], key: str, kind: type, source: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InputError(
            f"{source}: not a portprobe report ({key!r} missing or not a {kind.__name__})"
        )
    return value


def vantage_from_dict(doc: Mapping[str, Any], source: str) -> Vantage:
    """Check the few fields the fleet view uses and keep them; one line per problem."""
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        shown = _text(json.dumps(version), 40)
        raise InputError(
            f"{source}: schema_version {shown}; this portprobe reads schema_version "
            f"{SCHEMA_VERSION} (convert it with the portprobe that wrote it)"
        )
    tool = _need(doc, "tool", dict, source)
    verdict = _need(doc, "verdict", dict, source)
    port25 = verdict.get("port25")
    if port25 not in VERDICTS:
        raise InputError(
            f"{source}: verdict.port25 {_text(json.dumps(port25), 40)} is not a verdict"
        )
    families_in = verdict.get("families")
    if not isinstance(families_in, dict):
        raise InputError(f"{source}: verdict.families missing or not an object")
    families: dict[str, str] = {}
    for fam in FAMILIES:
        word = families_in.get(fam, "untested")
        if word not in FAMILY_VERDICTS:
            raise InputError(
                f"{source}: verdict.families.{fam} {_text(json.dumps(word), 40)} is not a verdict"
            )
        families[fam] = word
    ports_in = _need(doc, "ports", dict, source)
    ports: dict[int, str] = {}
    reachable: dict[int, bool] = {}
    for key, entry in ports_in.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) in MAIL_PORTS):
            raise InputError(f"{source}: ports key {_text(json.dumps(key), 40)} is not a mail port")
        if not isinstance(entry, dict) or not isinstance(entry.get("state"), str):
            raise InputError(f"{source}: ports.{key} has no state")
        if entry.get("tested") is False:
            continue
        ports[int(key)] = _text(entry["state"], 40)
        reachable[int(key)] = entry.get("reachable") is True
    started = _need(doc, "started_at", str, source)
    env = doc.get("environment") if isinstance(doc.get("environment"), dict) else {}
    assert isinstance(env, dict)
    readiness = doc.get("readiness") if isinstance(doc.get("readiness"), dict) else None
    return Vantage(
        name=_vantage_name(doc, source),
        source=_text(source, 400),
        started_at=_text(started, 40),
        tool_version=_text(tool.get("version", "?"), 40),
        port25=port25,
        families=families,
        confidence=_text(verdict.get("confidence") or "?", 20),
        ports=ports,
        reachable=reachable,
        platform=_text(env["platform"], 40) if isinstance(env.get("platform"), str) else None,
        ci=_text(env["ci"], 40) if isinstance(env.get("ci"), str) else None,
        public_addresses=_public_addresses(readiness),
        ready=_text(readiness["ready"], 20)
        if readiness is not None and isinstance(readiness.get("ready"), str)
        else None,
        interrupted=doc.get("interrupted") is True,
        reasons=_lines(verdict.get("reasons")),
        advice=_lines(verdict.get("advice")),
        blocker=_blocker(doc.get("path")),
    )


_BLOCKER_WORDS: Final = {
    "where": ("this-machine", "local-network", "isp", "transit", "destination", "unknown"),
    "how": ("drop", "reset", "prohibited", "proxy"),
}


def _blocker(path: object) -> dict[str, Any] | None:
    """The report's ``path.blocker``, only its known words and bounded values kept."""
    if not isinstance(path, dict) or not isinstance(path.get("blocker"), dict):
        return None
    b = path["blocker"]
    if any(b.get(k) not in words for k, words in _BLOCKER_WORDS.items()):
        return None

    def number(key: str) -> int | None:
        value = b.get(key)
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32
        return value if ok else None

    def text(key: str, limit: int) -> str | None:
        value = b.get(key)
        return _text(value, limit) if isinstance(value, str) else None

    return {
        "where": b["where"],
        "how": b["how"],
        "hop": number("hop"),
        "address": text("address", 45),
        "asn": number("asn"),
        "as_name": text("as_name", 64),
    }


def _lines(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(_text(v, 400) for v in value[:MAX_LINES] if isinstance(v, str))


def _public_addresses(readiness: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Every public address the report knows, ``(redacted)`` for what ``--redact`` hid."""
    if readiness is None or not isinstance(readiness.get("public_addresses"), dict):
        return ()
    out: list[str] = []
    for fam in FAMILIES:
        for address in readiness["public_addresses"].get(fam) or []:
            try:
                out.append(str(ipaddress.ip_address(str(address))))
            except ValueError:
                out.append("(redacted)")
    return tuple(dict.fromkeys(out))[:8]


def _vantage_name(doc: Mapping[str, Any], source: str) -> str:
    """The report's own vantage name when it has one, else the file name without ``.json``."""
    vantage = doc.get("vantage")
    if isinstance(vantage, dict):
        for key in ("name", "hostname"):
            if isinstance(vantage.get(key), str) and vantage[key].strip():
                return _text(vantage[key].strip(), 80)
    if source == STDIN:
        return "stdin"
    name = os.path.basename(source)
    return _text(name[:-5] if name.endswith(".json") else name, 80) or "report"


def load_vantage(source: str, stdin: IO[bytes] | None = None) -> Vantage:
    return vantage_from_dict(parse_report(read_bounded(source, stdin), source), source)


def load_fleet(
    sources: Sequence[str], stdin: IO[bytes] | None = None
) -> tuple[Fleet, tuple[InputError, ...]]:
    """The fleet of every readable report, and one error per source that was not one.

    The caller decides what a bad file means (``merge`` exits 2 unless ``--skip-bad``);
    a directory with no report, or stdin named twice, is an error of its own.
    """
    errors: list[InputError] = []
    vantages: list[Vantage] = []
    if list(sources).count(STDIN) > 1:
        raise InputError("-: standard input can be read only once")
    for given in sources:
        try:
            expanded = expand_sources([given])
        except InputError as exc:
            errors.append(exc)
            continue
        for source in expanded:
            try:
                vantages.append(load_vantage(source, stdin))
            except InputError as exc:
                errors.append(exc)
    return build_fleet(vantages), tuple(errors)
