"""A drop at the receivers' own doorstep is theirs: ``partial`` becomes ``open``.

Port 25 answering at some providers and failing at others reads as ``partial`` ("the
path stops port 25 towards some destinations"). When the trace shows that each failing
host stops port 25 at its own distance, or in its own AS, while the control port reaches
it, the path is not at fault: those receivers drop this client. The verdict is then
``open`` and the reasons name the hosts (spec "Path"). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from portprobe.outcome import Report
from portprobe.path.model import Blocker
from portprobe.report.advice import AdviceFacts, advice_for
from portprobe.report.evidence import PATH_FAILURES
from portprobe.vocab import FAMILIES, FAMILY_NAME


def theirs(report: Report, blockers: Mapping[tuple[str, str], Blocker]) -> Report:
    """``report`` with each partial family made open when every failing port-25 host of
    it was traced to a ``destination`` block; ``blockers`` by (family, address)."""
    v = report.verdict
    if v.port25 != "partial":
        return report
    families = dict(v.families)
    named: list[str] = []
    for family in FAMILIES:
        if families.get(family) != "partial":
            continue
        mine = [o.result for o in report.probes if o.result.spec.family == family]
        greeted = {
            r.spec.provider_key
            for r in mine
            if r.spec.port == 25 and r.greeting is not None and r.state in ("open", "rejected")
        }
        failing = [
            r
            for r in mine
            if r.spec.port == 25
            and not r.spec.negative
            and r.state in PATH_FAILURES
            and r.spec.provider_key not in greeted
        ]
        found = [blockers.get((family, r.spec.address or "")) for r in failing]
        if not failing or any(b is None or b.where != "destination" for b in found):
            continue
        families[family] = "open"
        hosts = sorted({r.spec.host for r in failing})
        named.append(
            f"Over {FAMILY_NAME[family]} port 25 dies at the receiver's own address for "
            f"{', '.join(hosts)} while the other providers answer: "
            f"{'that receiver drops' if len(hosts) == 1 else 'those receivers drop'} this "
            "client, not your network."
        )
    if not named or any(w in ("partial", "blocked") for w in families.values()):
        return report
    verdict = replace(
        v,
        port25="open",
        families=families,
        reasons=(*v.reasons, *named),
        advice=advice_for("open", AdviceFacts.from_evidence(report.probes)),
        failure_mode=None,
    )
    return replace(report, verdict=verdict)
