"""Where am I running? From local evidence only: DMI files, CI variables, the PTR name.

Never a metadata endpoint (169.254.169.254 and friends) and never the network: the
answer must be the same offline, in a lab namespace and behind a firewall, and asking a
metadata service is itself traffic a monitored host should not send.

- DMI (SMBIOS) strings under ``<sysfs>/class/dmi/id/``: only the world-readable files
  (``platforms.DMI_FILES``), each read at most ``DMI_READ_LIMIT`` bytes, non-blocking
  (a FIFO planted in a fake tree must not hang the run), made visible and bounded. A file
  that is missing or unreadable is evidence of nothing, never an error.
- CI systems from their variables, in the order of watson/ci-info's vendors.json
  (@c4e1d05): the specific systems first, then the generic ``CI``; ``CI=false`` turns
  CI detection off, as ci-info does.
- The public address's PTR name, when readiness found one: weaker than DMI (a VPN or a
  NAT changes it), so it decides only when DMI names nothing.

Ambiguity is said, not guessed: two platforms matching leaves ``unknown`` with both named.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Final

from portprobe.environment.model import CISystem, Clue, Environment
from portprobe.environment.platforms import (
    DMI_FILES,
    PlatformCatalog,
    PlatformInfo,
    load_platforms,
)
from portprobe.errors import InputError
from portprobe.text import shorten, visible

#: A DMI string is at most 64 bytes in practice (SMBIOS strings are short); sysfs serves
#: one page. 4 KiB bounds a fake or hostile file without cutting a real value.
DMI_READ_LIMIT: Final = 4096
#: Longest value kept as evidence (after control characters are made visible).
VALUE_LIMIT: Final = 200
#: RFC 1035 §2.3.4: a name is at most 253 characters in text form.
PTR_LIMIT: Final = 253

#: (CI system, variable, value that must match or None for "set and not empty"), first
#: match wins. watson/ci-info vendors.json; Jenkins needs both of its variables.
_CI_RULES: Final[tuple[tuple[CISystem, tuple[tuple[str, str | None], ...]], ...]] = (
    ("github-actions", (("GITHUB_ACTIONS", None),)),
    ("gitlab-ci", (("GITLAB_CI", None),)),
    ("circleci", (("CIRCLECI", None),)),
    ("travis", (("TRAVIS", None),)),
    ("azure-pipelines", (("TF_BUILD", None),)),
    ("bitbucket", (("BITBUCKET_COMMIT", None),)),
    ("jenkins", (("JENKINS_URL", None), ("BUILD_ID", None))),
    ("buildkite", (("BUILDKITE", None),)),
    ("drone", (("DRONE", None),)),
    ("woodpecker", (("CI", "woodpecker"),)),
)
#: ci-info's generic fallback, when no vendor matched.
_GENERIC_CI: Final = ("CI", "CONTINUOUS_INTEGRATION", "BUILD_NUMBER", "RUN_ID")
#: Variables whose value is a fixed word worth showing; any other is shown as "(set)" so a
#: shared report does not carry a Jenkins URL or a commit hash.
_SHOWN: Final = frozenset(
    {
        "GITHUB_ACTIONS",
        "RUNNER_ENVIRONMENT",
        "GITLAB_CI",
        "CIRCLECI",
        "TRAVIS",
        "TF_BUILD",
        "BUILDKITE",
        "DRONE",
        "CI",
        "CONTINUOUS_INTEGRATION",
        "CI_SERVER_HOST",
    }
)
#: GitHub's RUNNER_ENVIRONMENT words (github/docs PR #33310).
_RUNNER_HOSTED: Final = {"github-hosted": True, "self-hosted": False}


# -- input checks (exit 2 at the CLI) ----------------------------------------------------


def check_sysfs(path: str | os.PathLike[str]) -> Path:
    """``--sysfs``: must be a directory (the DMI files under it may still be missing)."""
    candidate = Path(path)
    if not candidate.is_dir():
        shown = visible(os.fspath(path))
        problem = "does not exist" if not candidate.exists() else "is not a directory"
        raise InputError(f"--sysfs {shown}: {problem} (give the directory mounted as /sys)")
    return candidate


def check_platform(name: str, platforms: PlatformCatalog) -> str:
    """``--platform``: an id of the data file, or ``id:variant``; returns it normalised."""
    wanted = name.strip().lower()
    if wanted not in platforms.names:
        raise InputError(
            f"--platform {visible(name)!r} is not a known platform "
            f"(known: {', '.join(platforms.names)})"
        )
    return wanted


# -- reading -----------------------------------------------------------------------------


def read_dmi(sysfs: Path) -> dict[str, str]:
    """The readable DMI strings under ``sysfs``, trimmed, visible and bounded."""
    base = sysfs / "class" / "dmi" / "id"
    found: dict[str, str] = {}
    for name in DMI_FILES:
        raw = _read_bounded(base / name)
        if raw is None:
            continue
        text = raw.decode("utf-8", "backslashreplace").strip(" \t\r\n\x00")
        if text:
            found[name] = shorten(visible(text), VALUE_LIMIT)
    return found


def _read_bounded(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except (OSError, ValueError):
        return None  # missing, root-only (0400), or a name the OS refuses
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None  # a FIFO, socket or device in a fake tree: not a DMI attribute
        return os.read(fd, DMI_READ_LIMIT)
    except OSError:
        return None
    finally:
        os.close(fd)


def detect_ci(
    environ: Mapping[str, str],
) -> tuple[CISystem | None, bool | None, tuple[Clue, ...]]:
    """The CI system, whether it is a provider-hosted runner (GitHub only), and why."""
    if environ.get("CI", "").strip().lower() == "false":
        return None, None, (Clue("env:CI", "false", "not CI (CI=false turns detection off)"),)
    for system, required in _CI_RULES:
        if all(_env_matches(environ, var, value) for var, value in required):
            clues = [Clue(f"env:{var}", _shown(environ, var), system) for var, _ in required]
            hosted = None
            if system == "github-actions" and "RUNNER_ENVIRONMENT" in environ:
                runner = environ["RUNNER_ENVIRONMENT"].strip()
                hosted = _RUNNER_HOSTED.get(runner)
                meaning = {True: "GitHub-hosted runner", False: "self-hosted runner"}
                clues.append(
                    Clue(
                        "env:RUNNER_ENVIRONMENT",
                        _shown(environ, "RUNNER_ENVIRONMENT"),
                        meaning[hosted] if hosted is not None else "unknown runner type",
                    )
                )
            return system, hosted, tuple(clues)
    for var in _GENERIC_CI:
        if _env_matches(environ, var, None):
            return "generic", None, (Clue(f"env:{var}", _shown(environ, var), "generic"),)
    return None, None, ()


def _env_matches(environ: Mapping[str, str], var: str, value: str | None) -> bool:
    present = environ.get(var, "").strip()
    return bool(present) if value is None else present.lower() == value


def _shown(environ: Mapping[str, str], var: str) -> str:
    if var not in _SHOWN:
        return "(set)"
    return shorten(visible(environ.get(var, "")), VALUE_LIMIT)


@cache
def _pattern(glob: str) -> re.Pattern[str]:
    """A data-file pattern: exact, with ``*`` as the only wildcard."""
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")), re.DOTALL)


def _matches(value: str, patterns: Sequence[str]) -> bool:
    return any(_pattern(p).fullmatch(value) for p in patterns)


def _indicates(entry: PlatformInfo) -> str:
    # An entry that yields to another is a vendor string shared with it: say both.
    return entry.label if entry.yields_to else entry.platform


# -- deciding ----------------------------------------------------------------------------


def detect_environment(
    *,
    sysfs: Path = Path("/sys"),
    environ: Mapping[str, str],
    ptr_names: Sequence[str] = (),
    override: str | None = None,
    platforms: PlatformCatalog | None = None,
    dmi: Mapping[str, str] | None = None,
) -> Environment:
    """Name the platform and CI system from local evidence (or ``override``).

    ``override`` must already have passed :func:`check_platform`. Reads only the DMI files
    (unless ``dmi`` gives what :func:`read_dmi` read before); everything else is given.
    """
    catalog = platforms if platforms is not None else load_platforms()
    clouds = [p for p in catalog.platforms if p.kind == "cloud"]
    evidence: list[Clue] = []
    notes: list[str] = []

    dmi = read_dmi(sysfs) if dmi is None else dmi
    dmi_hits = _hits(clouds, evidence, dmi)
    if not dmi_hits:
        for name in ("sys_vendor", "product_name"):
            if name in dmi:
                evidence.append(Clue(f"dmi:{name}", dmi[name], "no known platform"))
    ptrs = tuple(dict.fromkeys(_clean_ptr(n) for n in ptr_names if n.strip()))
    ptr_hits: list[PlatformInfo] = []
    for entry in clouds:
        for name in ptrs:
            if entry.match.ptr and _matches(name, entry.match.ptr):
                evidence.append(Clue("ptr", name, _indicates(entry)))
                if entry not in ptr_hits:
                    ptr_hits.append(entry)
    ptr_hits = _prune(ptr_hits)

    chosen: PlatformInfo | None = None
    ambiguous: list[PlatformInfo] = []
    if len(dmi_hits) == 1:
        chosen = dmi_hits[0]
        others = [e for e in ptr_hits if e.platform != chosen.platform]
        if others:
            notes.append(
                f"The DMI files say {chosen.label}, but the public address's reverse DNS "
                f"points to {' or '.join(e.label for e in others)}: the traffic may leave "
                "through another network (VPN, tunnel or NAT)."
            )
    elif dmi_hits:
        ambiguous = dmi_hits
    elif len(ptr_hits) == 1:
        chosen = ptr_hits[0]
    elif ptr_hits:
        ambiguous = ptr_hits

    ci, hosted, ci_clues = detect_ci(environ)
    evidence += ci_clues
    runner = _hosted_runner(catalog, ci, environ, chosen, evidence)
    if runner is not None:
        chosen = runner
        ambiguous = []

    variant: str | None = None
    if override is not None:
        entry_id, _, variant_id = override.partition(":")
        stated = catalog.get(entry_id)
        if stated is None:  # check_platform was skipped: say so rather than guess
            raise InputError(
                f"--platform {visible(override)!r} is not a known platform "
                f"(known: {', '.join(catalog.names)})"
            )
        detected = chosen
        chosen, ambiguous, variant = stated, [], variant_id or None
        evidence.insert(0, Clue("--platform", override, stated.platform))
        if detected is not None and detected.platform != stated.platform:
            notes.append(
                f"Local evidence points to {detected.label}; the stated platform "
                f"{stated.label} is used."
            )

    if chosen is None:
        label = "ambiguous: " + " or ".join(e.label for e in ambiguous) if ambiguous else None
        return Environment(
            platform="unknown",
            ci=ci,
            evidence=tuple(evidence),
            label=label,
            ci_hosted=hosted,
            notes=tuple(notes),
        )
    label = chosen.label
    chosen_variant = chosen.variant(variant)
    if chosen_variant is not None:
        label = f"{label} ({chosen_variant.label})"
    return Environment(
        platform=chosen.platform,
        ci=ci,
        evidence=tuple(evidence),
        label=label,
        ci_hosted=hosted,
        notes=tuple(notes),
        profile=chosen.id,
        variant=chosen_variant.id if chosen_variant is not None else None,
    )


def _hits(
    clouds: Sequence[PlatformInfo], evidence: list[Clue], dmi: Mapping[str, str]
) -> list[PlatformInfo]:
    found: dict[str, tuple[PlatformInfo, list[tuple[str, str]]]] = {}
    for entry in clouds:
        for name, patterns in entry.match.dmi:
            value = dmi.get(name)
            if value is not None and _matches(value, patterns):
                found.setdefault(entry.id, (entry, []))[1].append((name, value))
    hits = _prune([entry for entry, _ in found.values()])
    for entry, seen in found.values():
        # A vendor string that yields (Microsoft Corporation beside Azure's asset tag) is
        # still evidence: for the entry it yielded to.
        winner = next((h for h in hits if h.id in entry.yields_to), entry)
        for name, value in seen:
            evidence.append(Clue(f"dmi:{name}", value, _indicates(winner)))
    return hits


def _prune(hits: list[PlatformInfo]) -> list[PlatformInfo]:
    """Drop an entry whose ``yields_to`` names another hit (Hyper-V beside Azure's tag)."""
    ids = {e.id for e in hits}
    return [e for e in hits if not ids.intersection(e.yields_to)]


def _hosted_runner(
    catalog: PlatformCatalog,
    ci: CISystem | None,
    environ: Mapping[str, str],
    chosen: PlatformInfo | None,
    evidence: list[Clue],
) -> PlatformInfo | None:
    """A provider-hosted CI runner entry that fits the CI variables and the DMI answer."""
    for entry in catalog.platforms:
        if entry.kind != "ci" or entry.ci != ci:
            continue
        if not all(environ.get(var, "").strip() == value for var, value in entry.match.env):
            continue
        if chosen is None:
            fits = not entry.confirm_dmi
        else:
            # The runner's platform, or a vendor string that yields to it (a GitHub runner
            # whose DMI says only "Microsoft Corporation" is still an Azure VM).
            yielded = {p.platform for p in map(catalog.get, chosen.yields_to) if p is not None}
            fits = chosen.platform == entry.platform or entry.platform in yielded
        if not fits:
            continue
        for var, _ in entry.match.env:
            if not any(c.source == f"env:{var}" for c in evidence):
                evidence.append(Clue(f"env:{var}", _shown(environ, var), entry.label))
        return entry
    return None


def _clean_ptr(name: str) -> str:
    return shorten(visible(name.strip().rstrip(".").lower()), PTR_LIMIT)
