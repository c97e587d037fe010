"""Readiness advice (pure): the next step for each failed check, read with the path verdict.

The advice is combined with the port-25 path verdict, because a perfect address behind a
blocked port 25 still cannot deliver directly, and an open port 25 from a PBL address will
be refused. Each step is a typed ``Advice``: a Spamhaus PBL listing is known by its answer
codes (``DnsblCheck.policy_listing``), never by the words of its meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

from portprobe.advice import Advice
from portprobe.readiness.model import DnsblCheck, GenericNameCheck, PtrCheck
from portprobe.vocab import Ready, VerdictWord


def advise(
    have_address: bool,
    ptr: Sequence[PtrCheck],
    generic_name: Sequence[GenericNameCheck],
    dnsbl: Sequence[DnsblCheck],
    ready: Ready,
    port25: VerdictWord | None,
) -> list[Advice]:
    """The next step for each failed check, then the answer read with the path verdict."""
    advice = []
    if not have_address:
        advice.append(
            Advice(
                "state-public-ip",
                "state it with --public-ip ADDR to check its reverse DNS and DNSBLs",
            )
        )
    if any(p.iprev in ("permerror", "fail") for p in ptr):
        # RFC 8601 iprev: receivers want a PTR name that resolves back to the address.
        advice.append(
            Advice(
                "ptr-missing",
                "ask whoever owns the address (ISP or cloud provider) for a PTR record naming "
                "your mail host, and give that name an A/AAAA record pointing back "
                "(Gmail requires both)",
            )
        )
    if any(g.generic for g in generic_name):
        advice.append(
            Advice(
                "ptr-generic",
                "set a PTR record naming your mail host (e.g. mail.<your domain>) instead of "
                "the provider's default name",
            )
        )
    # A policy listing (Spamhaus PBL, known by its answer codes) names no cause to stop:
    # the range is end-user space, so the step is to relay (``_path_advice``) instead.
    if any(d.status == "listed" and not d.policy_listing for d in dnsbl):
        advice.append(
            Advice("dnsbl-listed", "find and stop the cause, then ask the list for removal")
        )
    if any(d.refused_public_resolver for d in dnsbl):
        advice.append(
            Advice(
                "dnsbl-own-resolver",
                "query DNSBLs through your own recursive resolver (--nameserver), not a "
                "public one, or use a Spamhaus DQS key",
            )
        )
    pbl = any(d.policy_listing for d in dnsbl)
    return advice + _path_advice(ready, port25, pbl)


def _path_advice(ready: Ready, port25: VerdictWord | None, pbl: bool) -> list[Advice]:
    """The readiness answer read together with the port-25 path verdict."""
    if port25 is None:
        if ready != "no":
            return []
        return [
            Advice(
                "relay-smarthost",
                "relay through a smarthost on 587 (your provider's submission server)",
                ports=(587,),
            )
        ]
    if port25 == "blocked":
        # Only the smarthost's address meets the receivers, so ours does not matter.
        return [
            Advice(
                "readiness-moot",
                "port 25 is blocked on the path, so readiness is moot for direct delivery: "
                "relay through a smarthost on 587, where only the smarthost's address matters",
                ports=(587,),
            )
        ]
    if port25 in ("open", "partial", "restricted") and ready == "no":
        if pbl:
            # The PBL is the range owner's word that it sends no direct mail: nothing to fix.
            return [
                Advice(
                    "pbl-relay",
                    "port 25 is open but the address is in Spamhaus PBL: direct delivery "
                    "will be refused; relay through a smarthost on 587",
                    ports=(587,),
                )
            ]
        return [
            Advice(
                "fix-or-relay",
                "port 25 is open but receivers will refuse or spam-folder direct mail from "
                "this address: fix the above or relay through a smarthost on 587",
                ports=(587,),
            )
        ]
    if port25 == "open" and ready == "yes":
        return [
            Advice(
                "ready-direct",
                "port 25 is open and the address passes receivers' sender checks: "
                "direct delivery can work (SPF/DKIM/DMARC still apply)",
            )
        ]
    return []
