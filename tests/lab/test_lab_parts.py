"""The lab's own moving parts, without root: the ASA rewriting, netlink framing, scenarios."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

from .delayline import NFNL_SUBSYS_QUEUE, NFQA_PACKET_HDR, NFQNL_MSG_PACKET, Queue, _attr, _message
from .interceptors import mask_greeting_line, strip_starttls_line
from .scenarios import SCENARIOS

REPO = Path(__file__).resolve().parents[2]


def test_asa_masks_the_greeting_text_but_not_the_code() -> None:
    assert mask_greeting_line(b"220 mx.alpha.example ESMTP Postfix\r\n") == (
        b"220 **************** ***** *******\r\n"
    )
    assert mask_greeting_line(b"220-first\n").startswith(b"220-*****")


def test_asa_replaces_starttls_with_same_length_keyword() -> None:
    assert strip_starttls_line(b"250-STARTTLS\r\n") == b"250-XXXXXXXA\r\n"
    assert strip_starttls_line(b"250 starttls\r\n") == b"250 XXXXXXXA\r\n"
    assert strip_starttls_line(b"250-PIPELINING\r\n") == b"250-PIPELINING\r\n"
    assert strip_starttls_line(b"250-STARTTLSX\r\n") == b"250-STARTTLSX\r\n"


def test_delayline_reads_packet_ids_from_netlink_frames() -> None:
    frames = b"".join(
        _message(
            NFQNL_MSG_PACKET, 0, 0, 2, 7, _attr(NFQA_PACKET_HDR, struct.pack("!IHB", pid, 0x800, 1))
        )
        for pid in (41, 42)
    )
    queue = Queue.__new__(Queue)  # the parser needs no socket
    assert queue.packet_ids(frames) == [41, 42]
    assert (NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET) == 0x300


def test_every_scenario_has_a_complete_ruleset() -> None:
    for scenario in SCENARIOS.values():
        for family in (4, 6):
            rules = scenario.ruleset(family)
            assert rules.count("COMMIT") == 2
            assert "NFQUEUE --queue-num 1" in rules  # ICMP errors always go through the delay


def test_cli_lists_scenarios() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.lab", "scenarios"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert [line.split()[0] for line in proc.stdout.splitlines()] == list(SCENARIOS)
