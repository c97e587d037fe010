"""The platforms data file: how to recognise each platform and its outbound-mail policy.

The format is documented at the top of ``platforms.toml`` (shipped in this package). Every
problem in a file is one line naming the file and, when it can be found, the line:
``my.toml:12: platform "aws": port 26 is not one of 25, 465, 587, 2525``.

Pure: tomllib and the standard library only (``portprobe platforms`` must start fast).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any, Final, Literal, cast, get_args

from portprobe import errors
from portprobe.datafile import DataFileProblem, parse_toml, read_text
from portprobe.environment.model import CI_SYSTEMS, PLATFORMS, CISystem, Platform
from portprobe.vocab import MAIL_PORTS

BUILTIN_NAME: Final = "platforms.toml"
SCHEMA_VERSION: Final = 1

Kind = Literal["cloud", "ci"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
Unblock = Literal["request", "self-service", "never", "not-blocked", "unknown"]
UNBLOCKS: Final[tuple[Unblock, ...]] = get_args(Unblock)

#: The DMI files read (all 0444 in drivers/firmware/dmi-id.c). The root-only
#: ``product_uuid``/``product_serial``/``board_serial``/``chassis_serial`` are never read:
#: portprobe runs unprivileged, and an answer must not depend on who runs it.
DMI_FILES: Final = (
    "sys_vendor",
    "product_name",
    "product_version",
    "bios_vendor",
    "bios_version",
    "board_vendor",
    "chassis_asset_tag",
)
_MATCH_KEYS: Final = (*DMI_FILES, "ptr", "env")
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class Policy:
    """What a platform documents about outbound mail ports, with its source."""

    blocked: tuple[int, ...]  # outbound ports blocked by default
    unblock: Unblock
    how: str  # the unblock path, or the way round it
    source: str
    read: date  # when the source was read
    verified: bool  # False: no primary source; advice says "reportedly"

    def to_dict(self) -> dict[str, Any]:
        return {
            "blocked": list(self.blocked),
            "unblock": self.unblock,
            "how": self.how,
            "source": self.source,
            "read": self.read.isoformat(),
            "verified": self.verified,
        }


@dataclass(frozen=True)
class Variant:
    """An account type whose policy differs (Azure subscription types)."""

    id: str
    label: str
    policy: Policy

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, **self.policy.to_dict()}


@dataclass(frozen=True)
class Recognition:
    """Local evidence that names the platform: DMI patterns, PTR patterns, CI variables."""

    dmi: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (file, patterns)
    ptr: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # (variable, exact value)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: list(patterns) for name, patterns in self.dmi}
        out["ptr"] = list(self.ptr)
        out["env"] = dict(self.env)
        return out


@dataclass(frozen=True)
class PlatformInfo:
    """One entry of the data file."""

    id: str
    platform: Platform
    label: str
    kind: Kind
    policy: Policy
    match: Recognition = field(default_factory=Recognition)
    ci: CISystem | None = None
    relay: str | None = None
    variants: tuple[Variant, ...] = ()
    yields_to: tuple[str, ...] = ()
    confirm_dmi: bool = False

    def variant(self, variant_id: str | None) -> Variant | None:
        return next((v for v in self.variants if v.id == variant_id), None)

    def policy_for(self, variant_id: str | None) -> Policy:
        chosen = self.variant(variant_id)
        return chosen.policy if chosen is not None else self.policy

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platform": self.platform,
            "label": self.label,
            "kind": self.kind,
            "ci": self.ci,
            **self.policy.to_dict(),
            "relay": self.relay,
            "match": self.match.to_dict(),
            "variants": [v.to_dict() for v in self.variants],
            "yields_to": list(self.yields_to),
            "confirm_dmi": self.confirm_dmi,
        }


@dataclass(frozen=True)
class PlatformCatalog:
    platforms: tuple[PlatformInfo, ...]
    path: str

    def get(self, entry_id: str | None) -> PlatformInfo | None:
        return next((p for p in self.platforms if p.id == entry_id), None)

    @property
    def names(self) -> tuple[str, ...]:
        """What ``--platform`` accepts: each id, and ``id:variant`` for each variant."""
        out: list[str] = []
        for entry in self.platforms:
            out.append(entry.id)
            out += [f"{entry.id}:{v.id}" for v in entry.variants]
        return tuple(out)


def load_platforms(path: str | os.PathLike[str] | None = None) -> PlatformCatalog:
    """Read and check a platforms file; ``None`` means the built-in one.

    Raises :class:`portprobe.errors.CatalogError` (one line, ``file:line: problem``).
    """
    if path is None:
        label = f"<built-in {BUILTIN_NAME}>"
        resource = resources.files("portprobe.environment").joinpath(BUILTIN_NAME)
        text = resource.read_text("utf-8")
    else:
        label = os.fspath(path)
        try:
            text = read_text(label)
        except DataFileProblem as exc:
            raise errors.CatalogError(f"{label}: {exc.problem}") from None
    return parse_platforms(text, label)


def parse_platforms(text: str, path: str = "<platforms>") -> PlatformCatalog:
    """Check ``text`` (TOML) and build a :class:`PlatformCatalog`; ``path`` labels errors."""
    try:
        data = parse_toml(text)
    except DataFileProblem as exc:
        where = path if exc.line is None else f"{path}:{exc.line}"
        raise errors.CatalogError(f"{where}: {exc.problem}") from None
    return _Checker(text, path).catalog(data)


class _Checker:
    """Schema checks; each failure is located in the source text when possible."""

    def __init__(self, text: str, path: str) -> None:
        self.lines = text.splitlines()
        self.path = path

    def _entry_span(self, entry: int | None) -> tuple[int, int]:
        """1-based first and last line of the ``entry``-th ``[[platform]]`` block."""
        if entry is None:
            return 1, len(self.lines)
        starts = [n for n, raw in enumerate(self.lines, 1) if _header(raw) == "[[platform]]"] + [
            len(self.lines) + 1
        ]
        if entry + 1 >= len(starts):
            return 1, len(self.lines)
        return starts[entry], starts[entry + 1] - 1

    def _line(self, entry: int | None, key: str | None, variant: int | None) -> int:
        first, last = self._entry_span(entry)
        if variant is not None:
            seen = -1
            for number in range(first, last + 1):
                if _header(self.lines[number - 1]) == "[[platform.variant]]":
                    seen += 1
                    if seen == variant:
                        first = number
                        break
        if key is None:
            return first
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(first, last + 1):
            if number > first and variant is not None and _header(self.lines[number - 1]):
                break  # the next table: the key is not in this variant
            if pattern.match(self.lines[number - 1]):
                return number
        return first

    def fail(
        self,
        problem: str,
        entry: int | None = None,
        key: str | None = None,
        variant: int | None = None,
    ) -> errors.CatalogError:
        line = self._line(entry, key, variant)
        return errors.CatalogError(f"{self.path}:{line}: {problem}")

    # -- checking ---------------------------------------------------------------------

    def catalog(self, data: Mapping[str, Any]) -> PlatformCatalog:
        for key in data:
            if key not in ("schema", "platform"):
                raise self.fail(f"unknown key {key!r} (expected one of: platform, schema)")
        schema = data.get("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION or isinstance(schema, bool):
            raise self.fail(
                f"schema {schema!r} is not supported (only {SCHEMA_VERSION})", key="schema"
            )
        raw_entries = data.get("platform")
        if not isinstance(raw_entries, list) or not raw_entries:
            raise self.fail("no [[platform]] tables: the file lists no platform")
        entries: list[PlatformInfo] = []
        for index, raw in enumerate(raw_entries):
            entry = self._entry(index, raw)
            if any(e.id == entry.id for e in entries):
                raise self.fail(f'platform "{entry.id}" is defined twice', index, "id")
            entries.append(entry)
        ids = {e.id for e in entries}
        for index, entry in enumerate(entries):
            for other in entry.yields_to:
                if other not in ids:
                    raise self.fail(
                        f'platform "{entry.id}": yields_to names no platform "{other}"',
                        index,
                        "yields_to",
                    )
        return PlatformCatalog(tuple(entries), self.path)

    def _entry(self, index: int, raw: Any) -> PlatformInfo:
        if not isinstance(raw, dict):
            raise self.fail(f"platform #{index + 1} is not a table", index)
        entry_id = raw.get("id")
        if not isinstance(entry_id, str) or not _ID.fullmatch(entry_id):
            raise self.fail(
                f"platform #{index + 1}: id must be lower-case letters, digits and '-', "
                f"not {entry_id!r}",
                index,
                "id",
            )
        where = f'platform "{entry_id}"'
        allowed = {
            "id",
            "platform",
            "label",
            "kind",
            "ci",
            "blocked",
            "unblock",
            "how",
            "relay",
            "source",
            "read",
            "verified",
            "yields_to",
            "confirm_dmi",
            "match",
            "variant",
        }
        self._unknown(raw, allowed, where, index)
        platform = raw.get("platform")
        if platform not in PLATFORMS:
            raise self.fail(
                f"{where}: platform must be one of {', '.join(PLATFORMS)}, not {platform!r}",
                index,
                "platform",
            )
        kind = raw.get("kind")
        if kind not in KINDS:
            raise self.fail(
                f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}", index, "kind"
            )
        ci = raw.get("ci")
        if kind == "ci" and ci not in CI_SYSTEMS:
            raise self.fail(
                f'{where}: a kind "ci" entry needs ci, one of {", ".join(CI_SYSTEMS)}, not {ci!r}',
                index,
                "ci" if "ci" in raw else "kind",
            )
        if kind == "cloud" and ci is not None:
            raise self.fail(f'{where}: ci is only for kind "ci" entries', index, "ci")
        label = self._text(raw, "label", where, index, required=True)
        relay = self._text(raw, "relay", where, index, required=False)
        policy = self._policy(raw, where, index, None, None)
        yields_to = raw.get("yields_to", [])
        if not isinstance(yields_to, list) or not all(isinstance(y, str) for y in yields_to):
            raise self.fail(f"{where}: yields_to must be a list of ids", index, "yields_to")
        confirm_dmi = raw.get("confirm_dmi", False)
        if not isinstance(confirm_dmi, bool):
            raise self.fail(f"{where}: confirm_dmi must be true or false", index, "confirm_dmi")
        match = self._match(raw.get("match", {}), where, index, cast(Kind, kind))
        raw_variants = raw.get("variant", [])
        if not isinstance(raw_variants, list):
            raise self.fail(f"{where}: variant must be [[platform.variant]] tables", index)
        variants: list[Variant] = []
        for number, raw_variant in enumerate(raw_variants):
            variant = self._variant(raw_variant, where, index, number, policy)
            if any(v.id == variant.id for v in variants):
                raise self.fail(
                    f'{where}: variant "{variant.id}" is defined twice', index, "id", number
                )
            variants.append(variant)
        return PlatformInfo(
            id=entry_id,
            platform=cast(Platform, platform),
            label=label or entry_id,
            kind=cast(Kind, kind),
            policy=policy,
            match=match,
            ci=cast(CISystem | None, ci),
            relay=relay,
            variants=tuple(variants),
            yields_to=tuple(yields_to),
            confirm_dmi=confirm_dmi,
        )

    def _variant(self, raw: Any, where: str, index: int, number: int, parent: Policy) -> Variant:
        if not isinstance(raw, dict):
            raise self.fail(f"{where}: variant #{number + 1} is not a table", index)
        allowed = {"id", "label", "blocked", "unblock", "how", "source", "read", "verified"}
        variant_id = raw.get("id")
        if not isinstance(variant_id, str) or not _ID.fullmatch(variant_id):
            raise self.fail(
                f"{where}: variant #{number + 1}: id must be lower-case letters, digits and "
                f"'-', not {variant_id!r}",
                index,
                "id",
                number,
            )
        where = f'{where}, variant "{variant_id}"'
        self._unknown(raw, allowed, where, index, number)
        label = self._text(raw, "label", where, index, required=True, variant=number)
        policy = self._policy(raw, where, index, number, parent)
        return Variant(id=variant_id, label=label or variant_id, policy=policy)

    def _unknown(
        self,
        raw: Mapping[str, Any],
        allowed: set[str],
        where: str,
        index: int,
        variant: int | None = None,
    ) -> None:
        for key in raw:
            if key not in allowed:
                raise self.fail(
                    f"{where}: unknown key {key!r} (expected one of: {', '.join(sorted(allowed))})",
                    index,
                    key,
                    variant,
                )

    def _text(
        self,
        raw: Mapping[str, Any],
        key: str,
        where: str,
        index: int,
        *,
        required: bool,
        variant: int | None = None,
    ) -> str | None:
        value = raw.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                f"{where}: {key} must be a non-empty string",
                index,
                key if key in raw else None,
                variant,
            )
        return value.strip()

    def _policy(
        self,
        raw: Mapping[str, Any],
        where: str,
        index: int,
        variant: int | None,
        parent: Policy | None,
    ) -> Policy:
        """The policy keys of an entry; a variant inherits source/read/verified."""

        def text(key: str) -> str:
            if parent is not None and key == "source" and key not in raw:
                return parent.source
            value = self._text(raw, key, where, index, required=True, variant=variant)
            return value or ""

        blocked = raw.get("blocked")
        allowed_ports = ", ".join(str(p) for p in MAIL_PORTS)
        if not isinstance(blocked, list):
            raise self.fail(
                f"{where}: blocked must be a list of ports ([] for none)",
                index,
                "blocked" if "blocked" in raw else None,
                variant,
            )
        for port in blocked:
            if type(port) is not int or port not in MAIL_PORTS:
                raise self.fail(
                    f"{where}: port {port!r} is not one of {allowed_ports}",
                    index,
                    "blocked",
                    variant,
                )
        if len(set(blocked)) != len(blocked):
            raise self.fail(
                f"{where}: a port is listed twice in blocked", index, "blocked", variant
            )
        unblock = raw.get("unblock")
        if unblock not in UNBLOCKS:
            raise self.fail(
                f"{where}: unblock must be one of {', '.join(UNBLOCKS)}, not {unblock!r}",
                index,
                "unblock" if "unblock" in raw else None,
                variant,
            )
        if unblock == "not-blocked" and 25 in blocked:
            raise self.fail(
                f'{where}: unblock "not-blocked" contradicts port 25 in blocked',
                index,
                "unblock",
                variant,
            )
        how = text("how")
        source = text("source")
        if not re.match(r"https?://\S+$", source):
            raise self.fail(
                f"{where}: source must be the address of the page the policy comes from, "
                f"not {source!r}",
                index,
                "source",
                variant,
            )
        read = raw.get("read", parent.read if parent is not None else None)
        if not isinstance(read, date) or hasattr(read, "hour"):
            raise self.fail(
                f"{where}: read must be a TOML date (YYYY-MM-DD) saying when the source was "
                f"read, not {read!r}",
                index,
                "read" if "read" in raw else None,
                variant,
            )
        verified = raw.get("verified", parent.verified if parent is not None else None)
        if not isinstance(verified, bool):
            raise self.fail(
                f"{where}: verified must be true or false (false: no primary source)",
                index,
                "verified" if "verified" in raw else None,
                variant,
            )
        return Policy(
            blocked=tuple(sorted(blocked, key=MAIL_PORTS.index)),
            unblock=cast(Unblock, unblock),
            how=how,
            source=source,
            read=read,
            verified=verified,
        )

    def _match(self, raw: Any, where: str, index: int, kind: Kind) -> Recognition:
        if not isinstance(raw, dict):
            raise self.fail(f"{where}: match must be a table", index, "match")
        for key in raw:
            if key not in _MATCH_KEYS:
                raise self.fail(
                    f"{where}, match: unknown key {key!r} (expected one of: "
                    f"{', '.join(sorted(_MATCH_KEYS))})",
                    index,
                    key,
                )
        dmi: list[tuple[str, tuple[str, ...]]] = []
        for name in DMI_FILES:
            if name in raw:
                dmi.append((name, self._patterns(raw[name], f"{where}, match.{name}", index, name)))
        ptr = self._patterns(raw.get("ptr", []), f"{where}, match.ptr", index, "ptr")
        env = raw.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise self.fail(
                f'{where}: match.env must be a table of VARIABLE = "value"', index, "env"
            )
        if kind == "ci" and not env:
            raise self.fail(f'{where}: a kind "ci" entry needs match.env', index, "match")
        if kind == "cloud" and env:
            raise self.fail(f'{where}: match.env is only for kind "ci" entries', index, "env")
        return Recognition(
            dmi=tuple(dmi),
            ptr=tuple(p.lower().rstrip(".") for p in ptr),
            env=tuple(env.items()),
        )

    def _patterns(self, value: Any, where: str, index: int, key: str) -> tuple[str, ...]:
        if (
            not isinstance(value, list)
            or not all(isinstance(v, str) and v.strip() for v in value)
            or any(v.strip("*") == "" for v in value)
        ):
            raise self.fail(
                f"{where} must be a list of non-empty strings (not just '*')", index, key
            )
        return tuple(v.strip() for v in value)


def _header(raw: str) -> str:
    """The table header on a line (``[[platform]]``), or ``""`` for any other line."""
    line = raw.split("#", 1)[0].strip().replace(" ", "")
    return line if line.startswith("[") else ""
