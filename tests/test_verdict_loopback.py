"""Refusal greetings from real sockets on loopback, through the real engine, to the verdict.

Each receiver is a raw trio server on 127.0.0.1 that does what Postfix's smtpd does when
anvil says a client is over ``smtpd_client_connection_count_limit``: greet with
``421 4.7.0 <host> Error: too many connections from <ip>`` and hang up (or, for a listed
client, ``554 ... blocked using zen.spamhaus.org``). Port 587 of each provider greets
normally, so the path is known to work. The real Postfix scenario lives in tests/lab.
No timing is asserted: the servers answer at once.
"""

from __future__ import annotations

import functools

import pytest
import trio

from portprobe.model import ProbeResult, ProbeSpec
from portprobe.probe import ProbeConfig, probe
from portprobe.probe.tls import make_contexts
from portprobe.report import annotate, decide
from tests.servers import Transcript, serve_raw, simple_smtp_dialogue

FAST = ProbeConfig(timeout=5.0, connect_timeout=2.0)
PROVIDERS = ("alpha", "bravo", "charlie")


def anvil(host: str) -> bytes:
    return f"421 4.7.0 {host} Error: too many connections from 127.0.0.1\r\n".encode()


def spamhaus(host: str) -> bytes:
    return (
        f"554 5.7.1 {host} Service unavailable; Client host [127.0.0.1] blocked using "
        "zen.spamhaus.org\r\n"
    ).encode()


def welcome(host: str) -> bytes:
    return f"220 {host} ESMTP Postfix\r\n".encode()


async def refuse(greeting: bytes, stream: trio.SocketStream, transcript: Transcript) -> None:
    """Greet with a refusal and close, as smtpd does after a 421/554 greeting."""
    await stream.send_all(greeting)


def provider_spec(provider: str, role: int, port: int) -> ProbeSpec:
    host = f"mx.{provider}.test"
    return ProbeSpec(
        target=f"{provider}.test",
        host=host,
        address="127.0.0.1",
        family="ipv4",
        port=role,
        provider=provider,
        connect_port=port,
    )


async def run_scenario(port25: dict[str, str]) -> list[ProbeResult]:
    """One loopback receiver per provider on 25 (its greeting kind) and on 587 (welcome)."""
    kinds = {"anvil": anvil, "spamhaus": spamhaus, "welcome": welcome}
    tls = make_contexts(None)
    results: list[ProbeResult] = []
    async with trio.open_nursery() as nursery:
        specs = []
        for provider, kind in port25.items():
            host = f"mx.{provider}.test"
            if kind == "welcome":
                handler = functools.partial(simple_smtp_dialogue, greeting=welcome(host))
            else:
                handler = functools.partial(refuse, kinds[kind](host))
            p25, _ = await serve_raw(nursery, handler)
            p587, _ = await serve_raw(
                nursery, functools.partial(simple_smtp_dialogue, greeting=welcome(host))
            )
            specs += [provider_spec(provider, 25, p25), provider_spec(provider, 587, p587)]
        for s in specs:
            results.append(await probe(s, FAST, tls=tls))
        nursery.cancel_scope.cancel()
    return results


@pytest.mark.parametrize(
    ("port25", "verdict", "refusal", "reason", "advice"),
    [
        (
            dict.fromkeys(PROVIDERS, "anvil"),
            "restricted",
            "rate-limited",
            "3 of 3 providers refused this client in the greeting (rate-limited",
            "--concurrency",
        ),
        (
            dict.fromkeys(PROVIDERS, "spamhaus"),
            "restricted",
            "blocklisted",
            "3 of 3 providers refused this client in the greeting (blocklisted)",
            "Spamhaus",
        ),
        (
            {"alpha": "anvil", "bravo": "anvil", "charlie": "spamhaus"},
            "restricted",
            "mixed",
            "(1 blocklisted, 2 rate-limited)",
            "--per-host",
        ),
        (
            {"alpha": "welcome", "bravo": "welcome", "charlie": "anvil"},
            "open",
            None,
            "charlie (mx.charlie.test) answered 421",
            "PTR",
        ),
    ],
    ids=["all-rate-limited", "all-blocklisted", "mixed", "one-421-among-greetings"],
)
def test_refusal_greetings_over_real_sockets(
    port25: dict[str, str], verdict: str, refusal: str | None, reason: str, advice: str
) -> None:
    results = trio.run(run_scenario, port25)
    states = {(r.spec.provider, r.spec.port): r.state for r in results}
    for provider, kind in port25.items():
        assert states[(provider, 25)] == ("open" if kind == "welcome" else "rejected")
        assert states[(provider, 587)] == "open"
    observed = annotate(results)
    labelled = {o.result.spec.provider for o in observed if "rate-limited" in o.anomalies}
    assert labelled == {p for p, kind in port25.items() if kind == "anvil"}
    v = decide(observed, used_catalog=True)
    assert (v.port25, v.refusal, v.failure_mode) == (verdict, refusal, None)
    assert reason in " ".join(v.reasons)
    assert advice in " ".join(a.text for a in v.advice)
