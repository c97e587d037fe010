"""The default view in a real terminal: the installed CLI in tmux, in the lab's client namespace.

tmux gives the program a real pseudo-terminal of a chosen size, so ``isatty`` and the
terminal width are what a person's would be; ``capture-pane -J`` joins lines the terminal
wrapped (a line wider than the pane comes back whole, so its length shows), ``-e`` keeps
the SGR sequences. The pane's shell signals ``tmux wait-for`` when portprobe exits, so
nothing here waits on a clock. stderr (progress) goes to a file: the view is stdout's.

Checked per scenario ("dropped", "asa", "offline") at 80 and 120 columns: no line wider
than the terminal, each host × family row distinguishable, the verdict line present,
colour on the terminal; and no escape at all when piped or with ``NO_COLOR``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import PORTPROBE
from .netlab import Lab
from .topology import DOMAINS

pytestmark = pytest.mark.lab

SCENARIOS = {
    # scenario: (verdict word, a state every port-25 row shows)
    "dropped": ("blocked", "filtered"),
    "asa": ("intercepted", "open"),
    "offline": ("offline", None),  # by name: DNS does not answer, one collapsed line
}
WIDTHS = (80, 120)
SGR = re.compile(r"\x1b\[[0-9;]*m")
VERDICT = re.compile(r"^port 25: (\w+) \(", re.M)
EXIT = re.compile(r"(\x1b\[[0-9;]*m)*\[exit \d+\]")
#: SGR foreground of the verdict line (render/table.py VERDICT_COLOR): red, magenta.
VERDICT_FG = {"blocked": 31, "intercepted": 31, "offline": 35}
STATE_FG = {"filtered": 31, "open": 32}
ROW = re.compile(r"^(\S+)\s+(IPv4|IPv6)\s+(.*)$")


def _tmux() -> str:
    tmux = shutil.which("tmux")
    if tmux is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed (apt-get install -y tmux); CI must run this")
        pytest.skip("tmux is not installed (apt-get install -y tmux)")
    return tmux


class Terminal:
    """One private tmux server; ``run`` shows a command in a fresh pane of a given size."""

    def __init__(self, tmux: str, home: Path) -> None:
        self.base = [tmux, "-S", str(home / "tmux.sock"), "-f", "/dev/null"]
        self.home = home
        self.count = 0
        # Options set before any pane exists: a pane that ends before we look stays
        # readable, with its scrollback, and the server outlives its last session.
        self._tmux(
            "start-server", ";", "set-option", "-g", "exit-empty", "off",
            ";", "set-option", "-g", "remain-on-exit", "on",
            ";", "set-option", "-g", "history-limit", "5000",
        )  # fmt: skip

    def _tmux(self, *args: str, timeout: float = 120) -> str:
        proc = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=timeout, check=True
        )
        return proc.stdout

    def run(self, argv: list[str], width: int, env: dict[str, str] | None = None) -> str:
        """The pane's contents (with SGR) after ``argv`` ran in a ``width``-column terminal."""
        self.count += 1
        name, channel = f"t{self.count}", f"done{self.count}"
        stderr = self.home / f"{name}.stderr"
        # COLUMNS/LINES from the test's own environment would override the pane's size.
        settings = [f"{k}={v}" for k, v in (env or {}).items()]
        command = shlex.join(["env", "-u", "COLUMNS", "-u", "LINES", *settings, *argv])
        script = (
            f"{command} 2>{shlex.quote(str(stderr))}; "
            f'echo "[exit $?]"; {shlex.join(self.base)} wait-for -S {channel}'
        )
        self._tmux(
            "new-session", "-d", "-s", name, "-x", str(width), "-y", "200",
            "sh", "-c", script,
        )  # fmt: skip
        self._tmux("wait-for", channel)
        out = self._tmux("capture-pane", "-p", "-e", "-J", "-S", "-", "-t", name)
        self._tmux("kill-session", "-t", name)
        end = EXIT.search(out)
        assert end, f"portprobe did not finish in the pane:\n{out}"
        return out[: end.start()].rstrip("\n") + "\n"

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, check=False)


@pytest.fixture(scope="module")
def terminal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminal]:
    term = Terminal(_tmux(), tmp_path_factory.mktemp("tmux"))
    try:
        yield term
    finally:
        term.close()


def portprobe_argv(lab: Lab) -> list[str]:
    """The default (table) view of the lab's three domains."""
    targets = [x for d in DOMAINS for x in ("--domain", d)]
    return [str(PORTPROBE), *targets, "--nameserver", lab.nameserver, "--ca-file", str(lab.ca_file)]


def view_argv(lab: Lab) -> list[str]:
    return lab.client_argv(portprobe_argv(lab))


def foreground_at(shown: str, text: str) -> int | None:
    """The SGR foreground colour in force where ``text`` starts in a captured pane.

    tmux re-encodes what it displays (a colour carried over from the previous line is
    not repeated), so the colour is followed through every SGR before that point.
    """
    where = shown.index(text)
    colour: int | None = None
    for sgr in SGR.finditer(shown, 0, where):
        for param in (sgr.group()[2:-1] or "0").split(";"):
            code = int(param or 0)
            if code in (0, 39):
                colour = None
            elif 30 <= code <= 37 or 90 <= code <= 97:
                colour = code
    return colour


def check_view(text: str, width: int, scenario: str) -> None:
    """The issue's conditions on one captured (SGR-free) view."""
    verdict, state25 = SCENARIOS[scenario]
    lines = text.splitlines()
    wide = [line for line in lines if len(line) > width]
    assert not wide, f"lines wider than {width}:\n" + "\n".join(wide)
    found = VERDICT.findall(text)
    assert found == [verdict], text
    rows = [m.groups() for line in lines if (m := ROW.match(line))]
    if state25 is None:
        assert not rows and "DNS could not resolve 3 hosts" in " ".join(text.split()), text
        return
    # Every MX host on both families, each row unlike every other.
    assert {(host, family) for host, family, _ in rows} == {
        (f"mx.{d}", f) for d in DOMAINS for f in ("IPv4", "IPv6")
    }, text
    assert len({line for line in lines if ROW.match(line)}) == len(rows), text
    header = next(line for line in lines if line.startswith("host "))
    assert header.split()[:6] == ["host", "family", "25", "465", "587", "2525"], text
    for _, _, cells in rows:
        assert cells.split()[0] == state25, text
    if width >= 120:
        assert "address" in header and "greeting" in header, text  # more room, more detail


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_default_view_in_a_real_terminal(
    scenario: str, width: int, lab: Lab, terminal: Terminal, portprobe_installed: None
) -> None:
    lab.switch(scenario)
    shown = terminal.run(view_argv(lab), width)
    plain = SGR.sub("", shown)
    assert "\x1b" not in plain, shown  # only our own SGR reached the terminal
    check_view(plain, width, scenario)
    # Colour by meaning on a terminal: the verdict line is painted.
    verdict = SCENARIOS[scenario][0]
    assert foreground_at(shown, f"port 25: {verdict}") == VERDICT_FG[verdict], shown
    state25 = SCENARIOS[scenario][1]
    if state25 is not None:  # and so is each state: the first port-25 cell
        assert foreground_at(shown, state25) == STATE_FG[state25], shown
    # NO_COLOR: the same terminal, not one escape.
    no_color = terminal.run(view_argv(lab), width, env={"NO_COLOR": "1"})
    assert "\x1b" not in no_color, no_color
    check_view(no_color, width, scenario)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_piped_view_has_no_escapes(scenario: str, lab: Lab, portprobe_installed: None) -> None:
    lab.switch(scenario)
    proc = lab.run_client(portprobe_argv(lab), timeout=120)
    assert "\x1b" not in proc.stdout, proc.stdout
    check_view(proc.stdout, 120, scenario)  # piped: the default width
