"""The platforms data file: how to recognise each platform and its outbound-mail policy.

The format is documented at the top of ``platforms.toml`` (shipped in this package). Every
problem in a file is one line naming the file and, when it can be found, the line:
``my.toml:12: platform "aws": port 26 is not one of 25, 465, 587, 2525``.

Pure: tomllib and the standard library only (``portprobe platforms`` must start fast).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any, Final, Literal, get_args

from portprobe import errors
from portprobe.datafile import At, DataFileProblem, Table, TableChecker, parse_toml, read_text
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
_POLICY_KEYS: Final = ("blocked", "unblock", "how", "source", "read", "verified")
_ENTRY_KEYS: Final = (
    *("id", "platform", "label", "kind", "ci", "relay", "yields_to", "confirm_dmi"),
    *_POLICY_KEYS,
    *("match", "variant"),
)
_VARIANT_KEYS: Final = ("id", "label", *_POLICY_KEYS)
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
    # nested: an entry's keys are found in its sub-tables too ([platform.match]'s env).
    return _catalog(TableChecker(text, path, nested=True), data)


def _catalog(check: TableChecker, data: Table) -> PlatformCatalog:
    check.known_keys(data, ("schema", "platform"), "")
    schema = data.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise check.fail(
            f"schema {schema!r} is not supported (only {SCHEMA_VERSION})", key="schema"
        )
    raw_entries = data.get("platform")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise check.fail("no [[platform]] tables: the file lists no platform")
    entries: list[PlatformInfo] = []
    for index, raw in enumerate(raw_entries):
        entry = _entry(check, raw, (("platform", index),), index)
        if any(e.id == entry.id for e in entries):
            raise check.fail(
                f'platform "{entry.id}" is defined twice', (("platform", index),), "id"
            )
        entries.append(entry)
    ids = {e.id for e in entries}
    for index, entry in enumerate(entries):
        for other in entry.yields_to:
            if other not in ids:
                raise check.fail(
                    f'platform "{entry.id}": yields_to names no platform "{other}"',
                    (("platform", index),),
                    "yields_to",
                )
    return PlatformCatalog(tuple(entries), check.path)


def _entry(check: TableChecker, value: object, at: At, index: int) -> PlatformInfo:
    raw = check.table(value, f"platform #{index + 1} is not a table", at)
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not _ID.fullmatch(entry_id):
        raise check.fail(
            f"platform #{index + 1}: id must be lower-case letters, digits and '-', "
            f"not {entry_id!r}",
            at,
            "id",
        )
    where = f'platform "{entry_id}"'
    check.known_keys(raw, _ENTRY_KEYS, where, at)
    platform = check.one_of(raw, "platform", PLATFORMS, where, at)
    kind = check.one_of(raw, "kind", KINDS, where, at)
    ci = raw.get("ci")
    if kind == "ci" and ci not in CI_SYSTEMS:
        raise check.fail(
            f'{where}: a kind "ci" entry needs ci, one of {", ".join(CI_SYSTEMS)}, not {ci!r}',
            at,
            "ci" if "ci" in raw else "kind",
        )
    if kind == "cloud" and ci is not None:
        raise check.fail(f'{where}: ci is only for kind "ci" entries', at, "ci")
    label = check.text(raw, "label", where, at, required=True)
    relay = check.text(raw, "relay", where, at, required=False)
    policy = _policy(check, raw, where, at, None)
    yields_to = check.strings(raw, "yields_to", f"{where}: yields_to must be a list of ids", at)
    confirm_dmi = check.boolean(raw, "confirm_dmi", where, at, default=False)
    match = _match(check, raw.get("match", {}), where, at, kind)
    raw_variants = raw.get("variant", [])
    if not isinstance(raw_variants, list):
        raise check.fail(f"{where}: variant must be [[platform.variant]] tables", at)
    variants: list[Variant] = []
    for number, raw_variant in enumerate(raw_variants):
        variant_at: At = (*at, ("variant", number))
        variant = _variant(check, raw_variant, where, variant_at, number, policy)
        if any(v.id == variant.id for v in variants):
            raise check.fail(f'{where}: variant "{variant.id}" is defined twice', variant_at, "id")
        variants.append(variant)
    return PlatformInfo(
        id=entry_id,
        platform=platform,
        label=label or entry_id,
        kind=kind,
        policy=policy,
        match=match,
        ci=next((c for c in CI_SYSTEMS if c == ci), None),
        relay=relay,
        variants=tuple(variants),
        yields_to=yields_to,
        confirm_dmi=bool(confirm_dmi),
    )


def _variant(
    check: TableChecker, value: object, where: str, at: At, number: int, parent: Policy
) -> Variant:
    raw = check.table(value, f"{where}: variant #{number + 1} is not a table", at[:1])
    variant_id = raw.get("id")
    if not isinstance(variant_id, str) or not _ID.fullmatch(variant_id):
        raise check.fail(
            f"{where}: variant #{number + 1}: id must be lower-case letters, digits and "
            f"'-', not {variant_id!r}",
            at,
            "id",
        )
    where = f'{where}, variant "{variant_id}"'
    check.known_keys(raw, _VARIANT_KEYS, where, at)
    label = check.text(raw, "label", where, at, required=True)
    policy = _policy(check, raw, where, at, parent)
    return Variant(id=variant_id, label=label or variant_id, policy=policy)


def _policy(check: TableChecker, raw: Table, where: str, at: At, parent: Policy | None) -> Policy:
    """The policy keys of an entry; a variant inherits source/read/verified."""
    blocked = check.ports(
        raw, "blocked", where, at, allowed=MAIL_PORTS, required=True, allow_empty=True
    )
    unblock = check.one_of(raw, "unblock", UNBLOCKS, where, at)
    if unblock == "not-blocked" and 25 in blocked:
        raise check.fail(
            f'{where}: unblock "not-blocked" contradicts port 25 in blocked', at, "unblock"
        )
    how = check.text(raw, "how", where, at, required=True) or ""
    if parent is not None and "source" not in raw:
        source = parent.source
    else:
        source = check.text(raw, "source", where, at, required=True) or ""
    check.url(
        source, "source", where, "source must be the address of the page the policy comes from", at
    )
    read = check.local_date(
        raw,
        "read",
        where,
        "read must be a TOML date (YYYY-MM-DD) saying when the source was read",
        at,
        default=parent.read if parent is not None else None,
    )
    verified = check.boolean(
        raw,
        "verified",
        where,
        at,
        default=parent.verified if parent is not None else None,
        required=True,
        why=" (false: no primary source)",
    )
    return Policy(
        blocked=blocked,
        unblock=unblock,
        how=how,
        source=source,
        read=read,
        verified=bool(verified),
    )


def _match(check: TableChecker, value: object, where: str, at: At, kind: Kind) -> Recognition:
    raw = check.table(value, f"{where}: match must be a table", at, "match")
    check.known_keys(raw, _MATCH_KEYS, f"{where}, match", at)
    dmi: list[tuple[str, tuple[str, ...]]] = []
    for name in DMI_FILES:
        if name in raw:
            dmi.append((name, _patterns(check, raw[name], f"{where}, match.{name}", at, name)))
    ptr = _patterns(check, raw.get("ptr", []), f"{where}, match.ptr", at, "ptr")
    problem = f'{where}: match.env must be a table of VARIABLE = "value"'
    env = check.table(raw.get("env", {}), problem, at, "env")
    variables = tuple((name, v) for name, v in env.items() if isinstance(v, str))
    if len(variables) != len(env):
        raise check.fail(problem, at, "env")
    if kind == "ci" and not env:
        raise check.fail(f'{where}: a kind "ci" entry needs match.env', at, "match")
    if kind == "cloud" and env:
        raise check.fail(f'{where}: match.env is only for kind "ci" entries', at, "env")
    return Recognition(
        dmi=tuple(dmi),
        ptr=tuple(p.lower().rstrip(".") for p in ptr),
        env=variables,
    )


def _patterns(check: TableChecker, value: object, where: str, at: At, key: str) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and v.strip() for v in value)
        or any(v.strip("*") == "" for v in value)
    ):
        raise check.fail(f"{where} must be a list of non-empty strings (not just '*')", at, key)
    return tuple(v.strip() for v in value)
