"""Environment results (spec "Environment"): pure, frozen, one ``to_dict`` each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from portprobe.advice import Advice, texts

Platform = Literal[
    "aws",
    "azure",
    "gcp",
    "digitalocean",
    "hetzner",
    "linode",
    "vultr",
    "ovh",
    "oracle",
    "scaleway",
    "alibaba",
    "upcloud",
    "hyper-v",
    "unknown",
]
PLATFORMS: Final[tuple[Platform, ...]] = get_args(Platform)
CISystem = Literal[
    "github-actions",
    "gitlab-ci",
    "circleci",
    "travis",
    "azure-pipelines",
    "bitbucket",
    "jenkins",
    "buildkite",
    "drone",
    "woodpecker",
    "generic",
]
CI_SYSTEMS: Final[tuple[CISystem, ...]] = get_args(CISystem)


@dataclass(frozen=True)
class Clue:
    """One piece of local evidence: where it was read, what it said, what it points to."""

    source: str  # e.g. "dmi:sys_vendor", "env:GITHUB_ACTIONS", "ptr", "--platform"
    value: str  # sanitised and bounded
    indicates: str  # a platform or CI name, or a sentence such as "Hyper-V or Azure"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "value": self.value, "indicates": self.indicates}


@dataclass(frozen=True)
class Environment:
    platform: Platform
    ci: CISystem | None
    evidence: tuple[Clue, ...] = ()
    label: str | None = None  # how a person names it: "AWS EC2", "Hyper-V or Azure"
    ci_hosted: bool | None = None  # GitHub Actions: RUNNER_ENVIRONMENT github-hosted
    advice: tuple[Advice, ...] = ()  # the platform's own next step for this verdict
    notes: tuple[str, ...] = ()  # documented policy compared with what was measured
    profile: str | None = None  # the platforms.toml entry whose policy applies ("aws")
    variant: str | None = None  # its account type, when stated (--platform azure:payg)

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "ci": self.ci,
            "evidence": [c.to_dict() for c in self.evidence],
            "label": self.label,
            "ci_hosted": self.ci_hosted,
            "advice": list(texts(self.advice)),
            "notes": list(self.notes),
            "profile": self.profile,
            "variant": self.variant,
        }
