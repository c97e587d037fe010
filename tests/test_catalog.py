"""The shipped catalog is well-formed and sized; a malformed one says file, line, problem."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from portprobe.render.catalog import catalog_to_dict, render_catalog_table
from portprobe.targets.catalog import Catalog, CatalogError, load_catalog, parse_catalog
from portprobe.targets.names import check_host_name, ip_literal
from portprobe.vocab import MAIL_PORTS


@pytest.fixture(scope="module")
def builtin() -> Catalog:
    return load_catalog()


# -- the shipped catalog -------------------------------------------------------------------


def test_builtin_catalog_has_six_independent_providers(builtin: Catalog) -> None:
    assert len(builtin.providers) >= 6
    names = [p.name for p in builtin.providers]
    assert len(set(names)) == len(names)
    networks = [p.network for p in builtin.providers]
    assert all(networks) and len(set(networks)) == len(networks)  # different networks


def test_builtin_catalog_entries_are_well_formed(builtin: Catalog) -> None:
    hosts = [host for _, host in builtin.hosts]
    assert len({h.name for h in hosts}) == len(hosts)  # no host listed twice
    for host in hosts:
        assert host.ports, host.name
        assert set(host.ports) <= set(MAIL_PORTS)
        assert set(host.negative_ports) <= set(MAIL_PORTS)
        assert not set(host.ports) & set(host.negative_ports)
        assert host.source.startswith("https://"), host.name  # every fact is cited
        assert host.role in ("mx", "submission", "relay")
        assert ip_literal(host.name) is None  # the public catalog names hosts
        assert check_host_name(host.name) == host.name
        if host.mail_domain:
            assert host.role == "mx" and host.ports == (25,)
        if host.expect and host.expect.greeting_pattern:
            re.compile(host.expect.greeting_pattern)


def test_builtin_catalog_has_controls_on_every_port(builtin: Catalog) -> None:
    """Each port is documented to answer at several providers, and some hosts answer on
    three or more ports of the same machine: the controls the verdict compares."""
    providers_per_port = Counter(
        port for p in builtin.providers for port in {q for h in p.hosts for q in h.ports}
    )
    assert all(providers_per_port[port] >= 3 for port in MAIL_PORTS), providers_per_port
    multi_port = [h for _, h in builtin.hosts if {25, 587} <= set(h.ports) and len(h.ports) >= 3]
    assert len(multi_port) >= 4
    assert any(h.negative_ports for _, h in builtin.hosts)


def test_builtin_catalog_default_run_is_bounded(builtin: Catalog) -> None:
    """At most this many probes with both families (fewer where a host has one family
    or fewer addresses); the issue wants a default run of roughly 60-150."""
    worst = 0
    for _, host in builtin.hosts:
        per_name = (len(host.ports) + len(host.negative_ports)) * builtin.max_addresses * 2
        worst += per_name * (builtin.max_mx if host.mail_domain else 1)
    assert 60 <= worst <= 150, worst


def test_builtin_catalog_loads_without_dnspython() -> None:
    code = (
        "import sys; from portprobe.targets.catalog import load_catalog; load_catalog(); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('dns', 'trio', 'typer')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_catalog_rendering_is_presentation_only() -> None:
    """render/ reads the catalog's types; it must not pull in the report, probes or I/O."""
    code = (
        "import sys; import portprobe.render.catalog; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('dns', 'trio', 'typer', 'ssl')"
        " or m.startswith(('portprobe.report', 'portprobe.probe'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_catalog_to_dict_is_json(builtin: Catalog) -> None:
    data = json.loads(json.dumps(catalog_to_dict(builtin)))
    assert data["limits"] == {"max_mx": builtin.max_mx, "max_addresses": builtin.max_addresses}
    google = next(p for p in data["providers"] if p["name"] == "google")
    gmail = google["hosts"][0]
    assert gmail["lookup"] == "mx" and gmail["ports"] == [25]
    assert set(gmail) == {"name", "lookup", "role", "ports", "negative_ports", "expect", "source"}
    assert set(gmail["expect"]) == {"greeting_pattern", "starttls", "cert_name"}


def test_render_catalog_table(builtin: Catalog) -> None:
    table = render_catalog_table(builtin)
    assert "\x1b" not in table
    for provider in builtin.providers:
        assert provider.name in table
    assert "smtp.sendgrid.net" in table and "25,465,587,2525" in table
    assert f"{len(builtin.providers)} providers" in table
    assert "\x1b[1m" in render_catalog_table(builtin, color=True)
    assert builtin.providers[0].hosts[0].source in render_catalog_table(builtin, show_sources=True)


def test_render_makes_user_text_visible(tmp_path: Path) -> None:
    path = tmp_path / "evil.toml"
    path.write_text(
        '[[provider]]\nname = "x"\ndescription = "d"\n'
        '[[provider.host]]\nhost = "192.0.2.1"\nports = [25]\nrole = "relay"\n'
        'source = "see \\u001b]0;pwned\\u0007 here"\n',
        encoding="utf-8",
    )
    table = render_catalog_table(load_catalog(path), show_sources=True)
    assert "\x1b" not in table and "\x07" not in table
    assert "\\x1b]0;pwned\\x07" in table


# -- malformed catalogs --------------------------------------------------------------------

GOOD_HOST = (
    '[[provider.host]]\nhost = "smtp.example.net"\nrole = "relay"\nports = [25]\nsource = "s"\n'
)


def provider(name: str, body: str = GOOD_HOST) -> str:
    return f'[[provider]]\nname = "{name}"\n{body}'


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("schema = 1\n[[provider]\n", 2, "column 11: invalid TOML"),
        ('[[provider]]\nname = "x"\nname = "y"\n', 3, "invalid TOML"),
        ("schema = 2\n" + provider("x"), 1, "schema 2 is not supported"),
        ("schema = 1\n", 1, "lists no provider"),
        ("colour = 1\n" + provider("x"), 1, "top level: unknown key 'colour'"),
        ("[limits]\nmax_mx = 0\n" + provider("x"), 2, "[limits] max_mx must be a whole number"),
        (
            "schema = 1\n\n[limits] # caps\nmax_mx = 2\nmax_addresses = 99\n" + provider("x"),
            5,
            "[limits] max_addresses must be a whole number from 1 to 16, not 99",
        ),
        ("schema = 1\n[limits]\nmax_hosts = 2\n" + provider("x"), 3, "unknown key 'max_hosts'"),
        (
            provider("x", GOOD_HOST.replace("ports = [25]", "ports = [25, 26]")),
            6,
            'provider "x", host smtp.example.net: port 26 is not one of 25, 465, 587, 2525',
        ),
        (
            provider("x", GOOD_HOST.replace("ports = [25]", "ports = [25, 25]")),
            6,
            "port 25 is listed twice",
        ),
        (provider("x", GOOD_HOST.replace("ports = [25]", "ports = []")), 6, "non-empty list"),
        (
            provider("x", GOOD_HOST.replace("ports = [25]", 'ports = ["25"]')),
            6,
            "port '25' is not one of",
        ),
        (provider("x", GOOD_HOST.replace("ports = [25]", "ports = [true]")), 6, "port True"),
        (
            provider("x", GOOD_HOST + "negative_ports = [25]\n"),
            8,
            "port 25 is in both ports and negative_ports",
        ),
        (provider("x", GOOD_HOST.replace('source = "s"\n', "")), 3, "'source'"),
        (provider("x", GOOD_HOST.replace('source = "s"', 'source = "  "')), 7, "'source'"),
        (provider("x", GOOD_HOST + "prots = [587]\n"), 8, "unknown key 'prots'"),
        (provider("x", GOOD_HOST.replace('role = "relay"', 'role = "mta"')), 5, "role must be"),
        (
            provider(
                "x", GOOD_HOST.replace('host = "smtp.example.net"', 'host = "smtp_1.example"')
            ),
            4,
            "label 'smtp_1'",
        ),
        (
            provider("x", GOOD_HOST + 'domain = "example.net"\n'),
            3,
            "needs exactly one of 'host' or 'domain'",
        ),
        (
            provider("x", GOOD_HOST.replace("host = ", "domain = ")),
            5,
            "a 'domain' entry is resolved by MX",
        ),
        (
            provider("x", GOOD_HOST + "expect = { greeting_pattern = '(' }\n"),
            8,
            "greeting_pattern is not a valid regular expression",
        ),
        (
            provider("x", GOOD_HOST + 'expect = { starttls = "yes" }\n'),
            8,
            "starttls must be true or false",
        ),
        (provider("x", GOOD_HOST + "expect = { tls = true }\n"), 8, "unknown key 'tls'"),
        (provider("x") + provider("x"), 9, 'provider "x" is defined twice'),
        (
            provider("x") + provider("y"),
            11,
            'provider "y": host smtp.example.net is already listed under "x"',
        ),
        (provider("x", ""), 1, 'provider "x": no [[provider.host]] entries'),
        ('[[provider]]\nname = "a b"\n' + GOOD_HOST, 2, "provider #1: name must be"),
        ("provider = 3\n", 1, "lists no provider"),
    ],
)
def test_malformed_catalog_names_file_line_and_problem(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: "), message
    assert problem in message
    assert caught.value.line == line and caught.value.path == str(path)


def test_unreadable_catalog(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(CatalogError, match=rf"^{re.escape(str(missing))}: cannot read: "):
        load_catalog(missing)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CatalogError, match="not UTF-8"):
        load_catalog(binary)
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path)  # a directory


def test_user_catalog_may_use_ip_literals_and_defaults() -> None:
    catalog = parse_catalog(
        '[[provider]]\nname = "lab"\n[[provider.host]]\nhost = "[2001:db8::25]"\n'
        'role = "mx"\nports = [2525, 25]\nsource = "lab"\n',
        "lab.toml",
    )
    (host,) = catalog.providers[0].hosts
    assert host.name == "2001:db8::25" and host.ports == (25, 2525) and host.expect is None
    assert (catalog.max_mx, catalog.max_addresses, catalog.path) == (2, 2, "lab.toml")
    assert catalog.providers[0].description == "" and catalog.providers[0].network is None
