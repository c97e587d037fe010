"""Where am I running: detection from fake sysfs trees, CI variables and PTR names; the
cited platforms file; the platform's advice for every verdict; bad input.

The fake trees (tests/fixtures/sysfs/<platform>/class/dmi/id/) hold the exact strings
the detectors of cloud-init and systemd match (research §3.2); nothing here touches the
network.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portprobe.advice import Advice, texts
from portprobe.environment.detect import (
    DMI_READ_LIMIT,
    VALUE_LIMIT,
    check_platform,
    check_sysfs,
    detect_ci,
    detect_environment,
    read_dmi,
)
from portprobe.environment.model import CI_SYSTEMS, PLATFORMS, Environment
from portprobe.environment.platforms import (
    DMI_FILES,
    PlatformCatalog,
    load_platforms,
    parse_platforms,
)
from portprobe.errors import CatalogError, InputError, PortprobeError
from portprobe.outcome import PortSummary, Verdict
from portprobe.render.platforms import (
    junit_properties,
    platforms_to_dict,
    render_platforms_table,
    running_on,
)
from portprobe.report.advice import AdviceFacts, advice_for
from portprobe.report.platform_advice import advise, filter_generic_advice
from portprobe.vocab import MAIL_PORTS, VERDICTS

ROOT = Path(__file__).resolve().parents[1]
SYSFS = Path(__file__).parent / "fixtures" / "sysfs"
SCHEMA = json.loads((ROOT / "reports" / "report.schema.json").read_text("utf-8"))
CATALOG = load_platforms()
NO_ENV: dict[str, str] = {}


def detect(tree: str | Path, **kwargs: object) -> Environment:
    sysfs = SYSFS / tree if isinstance(tree, str) else tree
    kwargs.setdefault("environ", NO_ENV)
    return detect_environment(sysfs=sysfs, platforms=CATALOG, **kwargs)  # type: ignore[arg-type]


def dmi_tree(tmp_path: Path, files: dict[str, bytes]) -> Path:
    base = tmp_path / "class" / "dmi" / "id"
    base.mkdir(parents=True)
    for name, content in files.items():
        (base / name).write_bytes(content)
    return tmp_path


# -- the data file ---------------------------------------------------------------------


def test_builtin_file_covers_the_platforms_the_issue_names() -> None:
    ids = {p.id for p in CATALOG.platforms}
    for wanted in (
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
        "github-hosted",
        "gitlab-hosted",
    ):
        assert wanted in ids
    assert {p.platform for p in CATALOG.platforms} <= set(PLATFORMS)
    for entry in CATALOG.platforms:
        for policy in (entry.policy, *(v.policy for v in entry.variants)):
            assert policy.source.startswith("https://"), entry.id
            assert isinstance(policy.read, date), entry.id
            assert policy.how, entry.id


def test_builtin_facts_match_the_research() -> None:
    get = CATALOG.get
    assert get("hetzner").policy.blocked == (25, 465)  # type: ignore[union-attr]
    assert get("scaleway").policy.blocked == (25, 465, 587)  # type: ignore[union-attr]
    assert get("linode").policy.blocked == (25, 465, 587)  # type: ignore[union-attr]
    assert get("gcp").policy.unblock == "never"  # type: ignore[union-attr]
    assert get("ovh").policy.blocked == ()  # type: ignore[union-attr]
    azure = get("azure")
    assert azure is not None
    assert {v.id for v in azure.variants} == {"ea", "payg", "msdn", "csp"}
    assert azure.policy_for("ea").blocked == ()
    assert azure.policy_for("msdn").unblock == "never"
    # Unverified sources are marked, so the advice can say "reportedly".
    assert not get("hetzner").policy.verified  # type: ignore[union-attr]
    assert not get("github-hosted").policy.verified  # type: ignore[union-attr]
    assert get("aws").policy.verified  # type: ignore[union-attr]


def test_names_include_variants() -> None:
    assert "azure:payg" in CATALOG.names and "aws" in CATALOG.names


GOOD_ENTRY = """\
schema = 1

[[platform]]
id = "x"
platform = "aws"
label = "X"
kind = "cloud"
blocked = [25]
unblock = "request"
how = "ask"
source = "https://example.org/policy"
read = 2026-01-02
verified = true
"""


def test_parse_a_minimal_file() -> None:
    catalog = parse_platforms(GOOD_ENTRY, "mine.toml")
    assert catalog.names == ("x",)
    assert catalog.platforms[0].policy.read == date(2026, 1, 2)


@pytest.mark.parametrize(
    ("change", "line", "problem"),
    [
        (("blocked = [25]", "blocked = [26]"), 8, "port 26 is not one of 25, 465, 587, 2525"),
        (('unblock = "request"', 'unblock = "maybe"'), 9, "unblock must be one of"),
        (('source = "https://example.org/policy"\n', ""), 3, "source must be a non-empty"),
        (("read = 2026-01-02", 'read = "yesterday"'), 12, "read must be a TOML date"),
        (('platform = "aws"', 'platform = "heroku"'), 5, "platform must be one of"),
        (("verified = true", "verified = true\ncolour = 1"), 14, "unknown key 'colour'"),
        (('kind = "cloud"', 'kind = "ci"'), 7, "needs ci"),
        (('id = "x"', 'id = "X Y"'), 4, "id must be lower-case"),
        # tomllib finds an unclosed array where the next line starts.
        (("blocked = [25]", "blocked = [25"), 9, "invalid TOML"),
    ],
)
def test_a_bad_file_is_one_line_with_file_and_line(
    change: tuple[str, str], line: int, problem: str
) -> None:
    text = GOOD_ENTRY.replace(*change)
    assert text != GOOD_ENTRY
    with pytest.raises(CatalogError) as caught:
        parse_platforms(text, "mine.toml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"mine.toml:{line}:"), message
    assert problem in message
    assert isinstance(caught.value, PortprobeError)


def test_duplicate_ids_and_dangling_yields_to_are_refused() -> None:
    with pytest.raises(CatalogError, match="defined twice"):
        parse_platforms(GOOD_ENTRY + GOOD_ENTRY.replace("schema = 1\n", ""), "f")
    with pytest.raises(CatalogError, match='yields_to names no platform "azure"'):
        parse_platforms(GOOD_ENTRY + 'yields_to = ["azure"]\n', "f")


def test_unreadable_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_platforms(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(CatalogError, match="not UTF-8"):
        load_platforms(bad)


def test_variant_inherits_source_and_can_override_the_policy() -> None:
    text = GOOD_ENTRY + (
        '\n[[platform.variant]]\nid = "ent"\nlabel = "Enterprise"\nblocked = []\n'
        'unblock = "not-blocked"\nhow = "not blocked"\n'
    )
    entry = parse_platforms(text, "f").platforms[0]
    assert entry.policy_for("ent").blocked == ()
    assert entry.policy_for("ent").source == "https://example.org/policy"
    assert entry.policy_for(None).blocked == (25,)


# -- detection from DMI --------------------------------------------------------------------

TREES = {
    "aws": ("aws", "AWS EC2"),
    "aws-xen": ("aws", "AWS EC2"),
    "azure": ("azure", "Microsoft Azure"),
    "hyper-v": ("hyper-v", "Hyper-V or Azure"),
    "gcp": ("gcp", "Google Cloud Compute Engine"),
    "digitalocean": ("digitalocean", "DigitalOcean"),
    "hetzner": ("hetzner", "Hetzner Cloud"),
    "linode": ("linode", "Akamai Cloud (Linode)"),
    "akamai": ("linode", "Akamai Cloud (Linode)"),
    "vultr": ("vultr", "Vultr"),
    "oracle": ("oracle", "Oracle Cloud Infrastructure"),
    "alibaba": ("alibaba", "Alibaba Cloud ECS"),
    "scaleway": ("scaleway", "Scaleway"),
    "upcloud": ("upcloud", "UpCloud"),
    "openstack": ("unknown", None),
    "baremetal": ("unknown", None),
}


@pytest.mark.parametrize("tree", list(TREES))
def test_platform_from_a_fake_sysfs_tree(tree: str) -> None:
    platform, label = TREES[tree]
    env = detect(tree)
    assert (env.platform, env.label) == (platform, label)
    assert env.ci is None
    dmi = [c for c in env.evidence if c.source.startswith("dmi:")]
    assert dmi, "the evidence names the DMI file that was read"
    if platform != "unknown":
        assert env.profile is not None
        assert any(c.indicates in (platform, label) for c in dmi)
    else:
        assert env.profile is None
        assert {c.indicates for c in dmi} == {"no known platform"}


def test_every_fixture_tree_is_tested() -> None:
    trees = {p.name for p in SYSFS.iterdir() if p.is_dir()}
    assert trees == set(TREES)


def test_root_only_files_are_never_read() -> None:
    for tree in ("aws", "gcp", "digitalocean"):
        env = detect(tree)
        assert not any("uuid" in c.source or "serial" in c.source for c in env.evidence)
        assert not any("GoogleCloud" in c.value or "ec2e" in c.value for c in env.evidence)
    assert "product_uuid" not in DMI_FILES and "product_serial" not in DMI_FILES


def test_microsoft_vendor_without_the_azure_tag_is_said_to_be_ambiguous() -> None:
    env = detect("hyper-v")
    assert env.platform == "hyper-v"
    assert env.label == "Hyper-V or Azure"
    assert [c.indicates for c in env.evidence] == ["Hyper-V or Azure"]
    # With the tag, the same vendor is Azure, and Hyper-V is not named.
    azure = detect("azure")
    assert azure.platform == "azure" and azure.label == "Microsoft Azure"
    # The shared vendor string is still evidence, now pointing to Azure.
    assert {(c.source, c.indicates) for c in azure.evidence} == {
        ("dmi:chassis_asset_tag", "azure"),
        ("dmi:sys_vendor", "azure"),
    }


def test_two_platforms_matching_is_not_guessed(tmp_path: Path) -> None:
    sysfs = dmi_tree(tmp_path, {"sys_vendor": b"Hetzner\n", "product_name": b"Alibaba Cloud ECS\n"})
    env = detect(sysfs)
    assert env.platform == "unknown"
    assert env.label is not None and env.label.startswith("ambiguous:")
    assert "Hetzner Cloud" in env.label and "Alibaba Cloud ECS" in env.label


def test_no_dmi_at_all_is_evidence_of_nothing(tmp_path: Path) -> None:
    env = detect(tmp_path)  # a container without /sys/class/dmi
    assert env == Environment(platform="unknown", ci=None)


def test_a_one_megabyte_dmi_file_is_read_bounded(tmp_path: Path) -> None:
    sysfs = dmi_tree(tmp_path, {"sys_vendor": b"Hetzner" + b"x" * (1 << 20)})
    found = read_dmi(sysfs)
    assert len(found["sys_vendor"]) <= VALUE_LIMIT
    assert found["sys_vendor"].endswith("…")
    assert detect(sysfs).platform == "unknown"  # not "Hetzner": the string is not exact
    assert DMI_READ_LIMIT <= 4096


def test_control_characters_in_a_dmi_file_are_made_visible(tmp_path: Path) -> None:
    sysfs = dmi_tree(
        tmp_path,
        {"sys_vendor": b"Evil\x1b]0;pwned\x07\xff\n", "product_name": b"\xe2\x80\xaeRTL\n"},
    )
    found = read_dmi(sysfs)
    assert found["sys_vendor"] == "Evil\\x1b]0;pwned\\x07\\xff"
    assert found["product_name"] == "\\u202eRTL"
    env = detect(sysfs)
    line = running_on(env) or ""
    assert "\x1b" not in json.dumps(env.to_dict()) and "\x1b" not in line
    assert all(ch.isprintable() for c in env.evidence for ch in c.value)


def test_fifos_directories_and_dangling_links_are_skipped(tmp_path: Path) -> None:
    base = dmi_tree(tmp_path, {"product_name": b"Google Compute Engine\n"}) / "class" / "dmi"
    os.mkfifo(base / "id" / "sys_vendor")  # opening it blocking would hang the run
    (base / "id" / "bios_vendor").mkdir()
    (base / "id" / "board_vendor").symlink_to(tmp_path / "nowhere")
    found = read_dmi(tmp_path)
    assert found == {"product_name": "Google Compute Engine"}
    assert detect(tmp_path).platform == "gcp"


def test_blank_and_whitespace_values_are_no_evidence(tmp_path: Path) -> None:
    sysfs = dmi_tree(tmp_path, {"sys_vendor": b"\n", "chassis_asset_tag": b"  \x00\n"})
    assert read_dmi(sysfs) == {}


# -- CI systems -----------------------------------------------------------------------------

CI_TABLES: list[tuple[dict[str, str], str | None, bool | None]] = [
    ({"GITHUB_ACTIONS": "true", "CI": "true"}, "github-actions", None),
    ({"GITHUB_ACTIONS": "true", "RUNNER_ENVIRONMENT": "github-hosted"}, "github-actions", True),
    ({"GITHUB_ACTIONS": "true", "RUNNER_ENVIRONMENT": "self-hosted"}, "github-actions", False),
    ({"GITLAB_CI": "true", "CI": "true", "CI_SERVER_HOST": "gitlab.com"}, "gitlab-ci", None),
    ({"CIRCLECI": "true", "CI": "true"}, "circleci", None),
    ({"TRAVIS": "true", "CI": "true"}, "travis", None),
    ({"TF_BUILD": "True"}, "azure-pipelines", None),
    ({"BITBUCKET_COMMIT": "0123abcd", "CI": "true"}, "bitbucket", None),
    ({"JENKINS_URL": "https://ci.internal/", "BUILD_ID": "42"}, "jenkins", None),
    ({"BUILDKITE": "true", "CI": "true"}, "buildkite", None),
    ({"DRONE": "true", "CI": "true"}, "drone", None),
    ({"CI": "woodpecker"}, "woodpecker", None),
    ({"CI": "true"}, "generic", None),
    ({"CONTINUOUS_INTEGRATION": "1"}, "generic", None),
    ({"BUILD_NUMBER": "7"}, "generic", None),
    # Jenkins needs both of its variables; one alone is not Jenkins.
    ({"JENKINS_URL": "https://ci.internal/"}, None, None),
    # CI=false turns everything off, as ci-info does.
    ({"GITHUB_ACTIONS": "true", "CI": "false"}, None, None),
    ({"GITHUB_ACTIONS": ""}, None, None),
    ({}, None, None),
]


@pytest.mark.parametrize(("environ", "ci", "hosted"), CI_TABLES)
def test_ci_from_environment_variables(
    environ: dict[str, str], ci: str | None, hosted: bool | None
) -> None:
    found, found_hosted, clues = detect_ci(environ)
    assert (found, found_hosted) == (ci, hosted)
    if ci is not None:
        assert any(c.indicates == ci for c in clues)


def test_every_ci_word_is_detectable() -> None:
    assert {ci for _, ci, _ in CI_TABLES if ci} == set(CI_SYSTEMS)


def test_private_values_are_not_copied_into_the_report() -> None:
    _, _, clues = detect_ci({"JENKINS_URL": "https://secret.internal/", "BUILD_ID": "1"})
    assert {c.value for c in clues} == {"(set)"}
    _, _, clues = detect_ci({"BITBUCKET_COMMIT": "deadbeef"})
    assert clues[0].value == "(set)"


def test_github_hosted_runner_is_azure_even_when_dmi_is_silent(tmp_path: Path) -> None:
    environ = {"GITHUB_ACTIONS": "true", "RUNNER_ENVIRONMENT": "github-hosted"}
    for sysfs in (SYSFS / "azure", SYSFS / "hyper-v", tmp_path):
        env = detect(sysfs, environ=environ)
        assert (env.platform, env.ci, env.ci_hosted) == ("azure", "github-actions", True)
        assert env.profile == "github-hosted"
        assert any(c.source == "env:RUNNER_ENVIRONMENT" for c in env.evidence)


def test_self_hosted_runner_keeps_the_machine_platform() -> None:
    environ = {"GITHUB_ACTIONS": "true", "RUNNER_ENVIRONMENT": "self-hosted"}
    env = detect("hetzner", environ=environ)
    assert (env.platform, env.profile, env.ci_hosted) == ("hetzner", "hetzner", False)


def test_gitlab_hosted_runner_needs_the_dmi_to_agree() -> None:
    environ = {"GITLAB_CI": "true", "CI_SERVER_HOST": "gitlab.com"}
    assert detect("gcp", environ=environ).profile == "gitlab-hosted"
    # A self-hosted runner of a GitLab.com project, on a physical server or on AWS.
    assert detect("baremetal", environ=environ).profile is None
    assert detect("aws", environ=environ).profile == "aws"


# -- detection from PTR names --------------------------------------------------------------

PTR_NAMES = [
    ("ec2-3-120-1-2.eu-central-1.compute.amazonaws.com", "aws"),
    ("ec2-54-1-2-3.compute-1.amazonaws.com.", "aws"),
    ("2.1.120.34.bc.googleusercontent.com", "gcp"),
    ("static.2.1.168.192.clients.your-server.de", "hetzner"),
    ("192-0-2-1.ip.linodeusercontent.com", "linode"),
    ("EC2-3-1-2-4.Compute-1.AmazonAWS.com", "aws"),
    ("mail.example.org", "unknown"),
    ("compute.amazonaws.com.evil.example", "unknown"),
]


@pytest.mark.parametrize(("name", "platform"), PTR_NAMES)
def test_platform_from_the_ptr_name(name: str, platform: str) -> None:
    env = detect("baremetal", ptr_names=[name])
    assert env.platform == platform
    if platform != "unknown":
        assert any(c.source == "ptr" and c.indicates == platform for c in env.evidence)


def test_dmi_wins_over_ptr_and_the_disagreement_is_noted() -> None:
    env = detect("aws", ptr_names=["static.1.2.3.4.clients.your-server.de"])
    assert env.platform == "aws"
    assert any("VPN" in n and "Hetzner" in n for n in env.notes)


# -- --platform and --sysfs ----------------------------------------------------------------


def test_platform_override_wins_and_keeps_the_evidence() -> None:
    env = detect("aws", override=check_platform("Azure:PAYG", CATALOG))
    assert (env.platform, env.profile, env.variant) == ("azure", "azure", "payg")
    assert env.label == "Microsoft Azure (Pay-as-you-go)"
    assert env.evidence[0].source == "--platform"
    assert any(c.source == "dmi:sys_vendor" for c in env.evidence)
    assert any("AWS EC2" in n for n in env.notes)


def test_unknown_platform_is_one_line_listing_the_known_names() -> None:
    with pytest.raises(InputError) as caught:
        check_platform("heroku", CATALOG)
    message = str(caught.value)
    assert "\n" not in message and "'heroku'" in message
    for name in CATALOG.names:
        assert name in message


def test_sysfs_must_be_a_directory(tmp_path: Path) -> None:
    assert check_sysfs(tmp_path) == tmp_path
    afile = tmp_path / "file"
    afile.write_text("x")
    for bad, problem in ((afile, "is not a directory"), (tmp_path / "nope", "does not exist")):
        with pytest.raises(InputError) as caught:
            check_sysfs(bad)
        assert str(caught.value) == f"--sysfs {bad}: {problem} (give the directory mounted as /sys)"


def test_sysfs_name_with_control_characters_is_shown_escaped(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        check_sysfs(tmp_path / "a\x1b[2Jb")
    assert "\x1b" not in str(caught.value) and "\\x1b" in str(caught.value)


# -- advice: platform x verdict --------------------------------------------------------


def verdict(word: str, advice: tuple[Advice, ...] = ()) -> Verdict:
    return Verdict(
        port25=word,  # type: ignore[arg-type]
        families={"ipv4": word},  # type: ignore[dict-item]
        confidence="high",
        reasons=(),
        advice=advice,
    )


def ports(**reachable: bool) -> dict[int, PortSummary]:
    """Every mail port tested; ``p465=True`` marks 465 as reachable."""
    out = {}
    for port in MAIL_PORTS:
        ok = reachable.get(f"p{port}", port != 25)
        out[port] = PortSummary(
            tested=True,
            reachable=ok,
            greeting_ok=ok,
            genuine=ok,
            tls_ok=ok,
            state="open" if ok else "filtered",
        )
    return out


def advised(profile: str, word: str, **port_state: bool) -> Environment:
    entry_id, _, variant = profile.partition(":")
    env = detect("baremetal", override=profile)
    assert env.profile == entry_id and env.variant == (variant or None)
    state = {"p25": word in ("open", "restricted", "intercepted", "partial")}
    if word == "offline":
        state |= {f"p{p}": False for p in MAIL_PORTS}
    state |= port_state
    return advise(env, CATALOG, verdict=verdict(word), ports=ports(**state))


@pytest.mark.parametrize("word", VERDICTS)
@pytest.mark.parametrize("profile", CATALOG.names)
def test_every_platform_and_verdict_gives_sound_advice(profile: str, word: str) -> None:
    env = advised(profile, word)
    entry = CATALOG.get(env.profile)
    assert entry is not None
    policy = entry.policy_for(env.variant)
    text = "\n".join(texts(env.advice) + env.notes)
    assert all(ch.isprintable() or ch == "\n" for ch in text)
    if word == "blocked":
        assert env.advice, "a blocked verdict always gets the platform's next step"
        assert policy.how in env.advice[0].text and policy.source in env.advice[0].text
    if word in ("open", "offline"):
        assert env.advice == ()
    if word == "offline":
        assert not any("Unexpected" in n for n in env.notes)
    # "reportedly" exactly when the policy has no primary source.
    if word == "blocked" and policy.unblock != "unknown":
        said = re.search(r"\breportedly (blocks|does not block)\b", env.advice[0].text)
        assert (said is not None) == (not policy.verified), env.advice[0].text
    # A port the platform blocks is never suggested as a way out.
    for line in texts(env.advice):
        if "not blocked on" in line:
            suggested = {int(p) for p in re.findall(r"\b(\d{3,4})\b", line.split(":")[0])}
            assert suggested and not suggested & set(policy.blocked), line
    env2 = advised(profile, word)
    assert env2 == env  # pure


def test_aws_blocked_names_the_form() -> None:
    env = advised("aws", "blocked")
    assert "Request to remove email sending limitations" in env.advice[0].text
    assert "reportedly" not in env.advice[0].text.split(";")[0]
    assert any("Amazon SES" in line for line in texts(env.advice))


def test_gcp_blocked_says_it_cannot_be_lifted_and_which_ports_work() -> None:
    env = advised("gcp", "blocked")
    assert "never lifts" in env.advice[0].text
    assert "Ports 587, 465 and 2525 are not blocked on Google Cloud" in env.advice[1].text


def test_hetzner_never_suggests_465() -> None:
    env = advised("hetzner", "blocked")
    assert "reportedly blocks outbound ports 25 and 465" in env.advice[0].text
    assert env.advice[1].text.startswith("Ports 587 and 2525 are not blocked on Hetzner Cloud")
    generic = advice_for("blocked", AdviceFacts(submission_ports={465, 587, 2525}))
    kept = texts(filter_generic_advice(generic, env, CATALOG))
    assert any("465" in line for line in texts(generic))
    assert not any(re.search(r"\b465\b", line) for line in kept)
    assert any("2525" in line for line in kept)


def test_scaleway_blocks_587_too() -> None:
    env = advised("scaleway", "blocked")
    assert "ports 25, 465 and 587" in env.advice[0].text and "Enable SMTP" in env.advice[0].text
    assert env.advice[1].text.startswith("Port 2525 is not blocked on Scaleway")
    generic = advice_for("blocked", AdviceFacts(submission_ports={587}))
    kept = texts(filter_generic_advice(generic, env, CATALOG))
    assert not any("587" in line for line in kept)


def test_linode_wants_reverse_dns_before_a_ticket() -> None:
    env = advised("linode", "blocked")
    assert re.search(r"reverse DNS.*then open a support ticket", env.advice[0].text)


def test_azure_depends_on_the_subscription_type() -> None:
    unknown = advised("azure", "blocked")
    assert (
        "subscription type" in unknown.advice[0].text
        and "--platform azure:" in unknown.advice[0].text
    )
    assert "Diagnose and solve problems" in advised("azure:payg", "blocked").advice[0].text
    assert "does not lift" in advised("azure:msdn", "blocked").advice[0].text
    ea = advised("azure:ea", "blocked")
    assert "does not block port 25 by default" in ea.advice[0].text
    assert any(n.startswith("Unexpected") for n in ea.notes)
    # Port 25 open on Azure without a known type: lifted, or an exempt subscription.
    assert any("Enterprise Agreement" in n for n in advised("azure", "open").notes)


def test_github_hosted_is_reportedly_blocked() -> None:
    env = advised("github-hosted", "blocked")
    assert "reportedly" in env.advice[0].text and "self-hosted runner" in env.advice[0].text


def test_the_generic_lift_line_gives_way_to_the_platform_step() -> None:
    generic = advice_for("blocked", AdviceFacts(submission_ports={587}))
    lift = [a for a in generic if a.code == "lift-port25-block"]
    assert len(lift) == 1 and "ask the ISP (or cloud provider) to lift" in lift[0].text
    for profile in ("aws", "gcp", "hetzner", "linode"):
        env = advised(profile, "blocked")
        own = [a for a in env.advice if a.code == "platform-unblock-step"]
        assert own and "lift-port25-block" in own[0].replaces
        kept = filter_generic_advice(generic, env, CATALOG)
        assert lift[0] not in kept
        entry = CATALOG.get(profile)
        if entry is not None and entry.policy.blocked == (25,):  # only the lift step goes
            assert [a for a in generic if a not in kept] == lift, profile
    # No platform, or one with no known policy: the generic advice is untouched.
    assert filter_generic_advice(generic, None, CATALOG) == generic
    assert filter_generic_advice(generic, detect("baremetal"), CATALOG) == generic
    assert filter_generic_advice(generic, advised("alibaba", "blocked"), CATALOG) == generic


def test_gcp_with_port_25_open_is_unexpected() -> None:
    env = advised("gcp", "open")
    assert any(n.startswith("Unexpected") and "VPN" in n for n in env.notes)


def test_aws_with_port_25_open_means_the_limit_was_lifted() -> None:
    env = advised("aws", "open")
    assert any("lifted for this account" in n for n in env.notes)
    assert not any(n.startswith("Unexpected") for n in env.notes)


def test_blocked_where_the_platform_does_not_block_points_elsewhere() -> None:
    env = advised("ovh", "blocked")
    assert "the block is elsewhere" in env.advice[0].text and "anti-spam" in env.advice[0].text
    assert any(n.startswith("Unexpected") for n in env.notes)


def test_other_blocked_ports_are_held_against_the_measurement() -> None:
    assert any("Port 465 failed too" in n for n in advised("hetzner", "blocked", p465=False).notes)
    surprise = advised("hetzner", "blocked", p465=True).notes
    assert any(n.startswith("Unexpected") and "465" in n for n in surprise)


def test_an_ambiguous_platform_asks_for_platform() -> None:
    env = Environment(platform="unknown", ci=None, label="ambiguous: Hetzner Cloud or Vultr")
    out = advise(env, CATALOG, verdict=verdict("blocked"), ports=ports())
    assert out.advice and "--platform" in out.advice[0].text
    plain = advise(detect("baremetal"), CATALOG, verdict=verdict("blocked"), ports=ports())
    assert plain.advice == () and plain.notes == ()


# -- the report parts --------------------------------------------------------------------


def validate(env: Environment) -> None:
    schema = {"$defs": SCHEMA["$defs"], **SCHEMA["$defs"]["environment_or_null"]}
    jsonschema.validate(env.to_dict(), schema)


@pytest.mark.parametrize("tree", list(TREES))
def test_environment_json_follows_the_schema(tree: str) -> None:
    environ = {"GITHUB_ACTIONS": "true", "RUNNER_ENVIRONMENT": "self-hosted"}
    env = detect(tree, environ=environ, ptr_names=["a.compute.amazonaws.com"])
    validate(advise(env, CATALOG, verdict=verdict("blocked"), ports=ports()))


def test_schema_allows_null_and_refuses_unknown_words() -> None:
    schema = {"$defs": SCHEMA["$defs"], **SCHEMA["$defs"]["environment_or_null"]}
    jsonschema.validate(None, schema)
    bad = Environment(platform="unknown", ci=None).to_dict() | {"platform": "heroku"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    assert set(SCHEMA["$defs"]["environment"]["properties"]["platform"]["enum"]) == set(PLATFORMS)
    ci_words = set(SCHEMA["$defs"]["environment"]["properties"]["ci"]["enum"]) - {None}
    assert ci_words == set(CI_SYSTEMS)


def test_running_on_line_names_platform_evidence_and_ci() -> None:
    environ = {"GITHUB_ACTIONS": "true", "RUNNER_ENVIRONMENT": "github-hosted"}
    env = detect("azure", environ=environ)
    line = running_on(env)
    assert line is not None and "\n" not in line
    assert line.startswith("Running on: GitHub-hosted runner (Azure) (dmi:")
    assert line.endswith("; CI github-actions (provider-hosted)")
    assert running_on(env.to_dict()) == line
    assert running_on(None) is None
    assert running_on(detect("baremetal")) == "Running on: unknown platform"


def test_junit_properties() -> None:
    props = dict(junit_properties(detect("hetzner")))
    assert props == {
        "environment.platform": "hetzner",
        "environment.label": "Hetzner Cloud",
        "environment.ci": "-",
        "environment.ci_hosted": "-",
    }
    assert junit_properties(None) == []


def test_platforms_listing_table_and_json() -> None:
    table = render_platforms_table(CATALOG, color=False)
    for name in CATALOG.names:
        assert name in table
    assert "\x1b" not in table
    assert "\x1b[1m" in render_platforms_table(CATALOG, color=True)
    assert "https://www.linode.com/" in render_platforms_table(CATALOG, show_sources=True)
    data = json.loads(json.dumps(platforms_to_dict(CATALOG)))
    assert data["names"] == list(CATALOG.names)
    hetzner = next(p for p in data["platforms"] if p["id"] == "hetzner")
    assert hetzner["blocked"] == [25, 465] and hetzner["verified"] is False
    assert hetzner["read"] == "2026-08-21" and hetzner["source"].startswith("https://")


def test_a_user_file_with_escape_sequences_is_listed_safely() -> None:
    text = GOOD_ENTRY.replace('label = "X"', 'label = "X\\u001b[31mred"')
    table = render_platforms_table(parse_platforms(text, "mine.toml"))
    assert "\x1b" not in table and "\\x1b[31mred" in table


def test_catalog_type_is_exported_for_callers() -> None:
    assert isinstance(CATALOG, PlatformCatalog)


def test_detection_and_advice_import_no_network_code() -> None:
    """Local only, by construction: no trio, socket, ssl or dnspython behind detection."""
    import subprocess
    import sys

    code = (
        "import sys, portprobe.report.platform_advice, portprobe.environment.detect, "
        "portprobe.render.platforms; "
        "print(sorted(m for m in ('trio', 'socket', 'ssl', 'dns', 'typer', 'tabulate') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


@settings(max_examples=60, deadline=None)
@given(content=st.binary(max_size=600), ptr=st.text(max_size=80))
def test_any_bytes_in_a_dmi_file_give_printable_bounded_evidence(content: bytes, ptr: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sysfs = dmi_tree(Path(tmp), {"sys_vendor": content, "chassis_asset_tag": content})
        env = detect(sysfs, ptr_names=[ptr])
    for clue in env.evidence:
        assert len(clue.value) <= max(VALUE_LIMIT, 253)
        assert all(ch.isprintable() for ch in clue.value), clue
    validate(env)


def test_ports_that_never_got_past_dns_prove_no_policy() -> None:
    """An offline run on a platform that blocks 465 and 587 says nothing about them."""
    from portprobe.environment.model import Environment
    from portprobe.environment.platforms import load_platforms
    from portprobe.outcome import PortSummary, Verdict

    platforms = load_platforms()
    env = Environment(platform="linode", ci=None, profile="linode")
    verdict = Verdict("offline", {"ipv4": "offline", "ipv6": "offline"}, "high", ("r",), ())
    dns_failed = PortSummary(True, False, False, False, None, "dns-error")
    ports = dict.fromkeys((25, 465, 587, 2525), dns_failed)
    advised = advise(env, platforms, verdict=verdict, ports=ports)
    assert not any("failed too" in note for note in advised.notes)
    dropped = PortSummary(True, False, False, False, None, "filtered")
    blocked = Verdict("blocked", {"ipv4": "blocked", "ipv6": "untested"}, "high", ("r",), ())
    advised = advise(env, platforms, verdict=blocked, ports=dict.fromkeys((25, 465), dropped))
    assert any("Port 465 failed too" in note for note in advised.notes)
