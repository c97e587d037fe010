"""Advice: one next step, typed, so that its sources combine by code and never by its text.

Three sources advise: the port-25 verdict (``report/advice.py``), the platform's own policy
(``report/platform_advice.py``) and mail readiness (``readiness/assess.py``). One source
can make another's step wrong or redundant: the platform's own unblock form replaces the
generic "ask the ISP to lift the block", and a platform that blocks 465 makes every step
through 465 wrong. So each step says what it asks for (``code``, a word of
``vocab.AdviceCode``), which ports it goes through, and which codes it replaces; a source
that overrides another reads only those fields. The JSON report keeps only ``text``.

Pure data: no trio, socket, ssl, dns or typer (tests/test_layers.py holds that line).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from portprobe.vocab import AdviceCode, Family


@dataclass(frozen=True)
class Advice:
    """One next step: what it asks for, the sentence a person reads, and what it relies on."""

    code: AdviceCode
    text: str
    #: The ports other than 25 this step sends or probes through: a platform that blocks
    #: one of them makes the step wrong (port 25 is what every step is about, so not listed).
    ports: tuple[int, ...] = ()
    family: Family | None = None  # the one address family the step is about, if only one
    #: Other sources' steps this one makes redundant (the platform's own unblock form
    #: replaces the generic "ask the ISP to lift the block").
    replaces: tuple[AdviceCode, ...] = ()


def unique(advice: Iterable[Advice]) -> tuple[Advice, ...]:
    """``advice`` in order, without a step whose text was already given."""
    first: dict[str, Advice] = {}
    for a in advice:
        first.setdefault(a.text, a)
    return tuple(first.values())


def without_replaced(advice: Iterable[Advice], by: Iterable[Advice]) -> tuple[Advice, ...]:
    """``advice`` without the steps whose code one of ``by`` replaces."""
    replaced = {code for a in by for code in a.replaces}
    return tuple(a for a in advice if a.code not in replaced)


def without_ports(advice: Iterable[Advice], blocked: Iterable[int]) -> tuple[Advice, ...]:
    """``advice`` without the steps that go through one of the ``blocked`` ports."""
    closed = set(blocked)
    return tuple(a for a in advice if not closed.intersection(a.ports))


def texts(advice: Iterable[Advice]) -> tuple[str, ...]:
    """What a person reads (and what the JSON report holds): each step's text."""
    return tuple(a.text for a in advice)
