"""Thousands of targets: the report build after the probes end, time and peak RSS per size.

    uv run python bench/scale.py                      # 1,000 / 5,000 / 20,000 targets
    uv run python bench/scale.py --sizes 1000,2000    # other sizes
    uv run python bench/scale.py --write              # and replace its bench/README.md section

The probe results are built synthetically, as the engine would record a run of
``--target 127.0.x.y`` (one loopback address per target, each its own provider) with port 25
refused by a reset in 0.2 ms and 465/587 greeting with TLS, 2525 refused. Probing that many
loopback listeners measures the engine (``bench/load.py`` does); the figure here is only
what comes after it: the real ``portprobe.report.build_report`` (annotation, cross-probe
anomalies, the verdict, the per-port summary), then the JSON text (``Report.to_dict()``
dumped) and the Nagios and OpenMetrics renderings. A refused port 25 with a control on the
same address is the shape that used to make the build quadratic (every refusal looked
through every result for its control handshake).

Each size runs in a fresh child process; its peak RSS is ``ru_maxrss`` from ``wait4()``,
with a ``results only`` row (the same process building the results and no report) so the
report's own memory can be read off. Nothing is sent on any network.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOAL_SIZE = 5000
GOAL_SECONDS = 2.0


def addresses(n: int) -> list[str]:
    return [f"127.{1 + i // 62500}.{i // 250 % 250}.{1 + i % 250}" for i in range(n)]


def synthetic_results(n: int) -> list[Any]:
    """Four probes per loopback target, as a ``--target`` run records them."""
    from portprobe.model import ErrorInfo, ProbeResult, ProbeSpec, Reply, Timings, TLSInfo

    out: list[Any] = []
    for i, address in enumerate(addresses(n)):

        def spec(port: int, address: str = address) -> ProbeSpec:
            return ProbeSpec(
                target=address,
                host=address,
                address=address,
                family="ipv4",
                port=port,
                connect_port=2000 + port,
            )

        refused = ErrorInfo(kind="connect", message="Connection refused", errno="ECONNREFUSED")
        out.append(
            ProbeResult(spec=spec(25), state="refused", error=refused, timings=Timings(total=0.2))
        )
        for port in (587, 465):
            tls = TLSInfo(
                version="TLSv1.3",
                cipher="TLS_AES_256_GCM_SHA384",
                verified=True,
                verify_error=None,
                cert=None,
            )
            out.append(
                ProbeResult(
                    spec=spec(port),
                    state="open",
                    greeting=Reply(code=220, lines=(f"relay-{i}.test ESMTP ready",)),
                    ehlo=("SIZE 10240000", "STARTTLS") if port == 587 else ("SIZE 10240000",),
                    starttls="offered" if port == 587 else "n/a",
                    tls=tls,
                    timings=Timings(connect=0.2, greeting=0.5, tls=2.0, total=3.0),
                )
            )
        out.append(
            ProbeResult(spec=spec(2525), state="refused", error=refused, timings=Timings(total=0.2))
        )
    return out


def child(n: int, results_only: bool) -> dict[str, Any]:
    """One size, in this (fresh) process: seconds for each step."""
    from portprobe.model import Plan
    from portprobe.render import render
    from portprobe.report import build_report

    results = synthetic_results(n)
    if results_only:
        return {"targets": n, "probes": len(results)}
    plan = Plan(specs=tuple(r.spec for r in results))
    now = datetime.now(UTC)
    parameters = {"ports": [25, 465, 587, 2525], "targets": addresses(n)}
    c0, t0 = time.process_time(), time.perf_counter()
    report = build_report(
        results=results,
        plan=plan,
        parameters=parameters,
        tool_version="bench",
        started_at=now,
        finished_at=now,
        interrupted=False,
    )
    c1, t1 = time.process_time(), time.perf_counter()
    text = render("json", report)
    c2, t2 = time.process_time(), time.perf_counter()
    render("nagios", report)
    t3 = time.perf_counter()
    render("openmetrics", report)
    t4 = time.perf_counter()
    return {
        "targets": n,
        "probes": len(results),
        "verdict": report.verdict.port25,
        "build_s": t1 - t0,
        "build_cpu_s": c1 - c0,
        "json_s": t2 - t1,
        "json_cpu_s": c2 - c1,
        "nagios_s": t3 - t2,
        "openmetrics_s": t4 - t3,
        "json_bytes": len(text),
    }


def measure(n: int, results_only: bool = False) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", str(n)]
    if results_only:
        argv.append("--results-only")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child for {n} targets failed")
    row: dict[str, Any] = json.loads(out)
    row["peak_rss_mib"] = usage.ru_maxrss / 1024
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--write", action="store_true", help="replace the README section")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--results-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.results_only)))
        return

    from common import markdown_table, met, provenance, update_readme

    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        base = measure(n, results_only=True)
        got = measure(n)
        after = got["build_s"] + got["json_s"]
        after_cpu = got["build_cpu_s"] + got["json_cpu_s"]
        goal = ""
        if n == GOAL_SIZE:
            goal = f" ({met(after <= GOAL_SECONDS)}; CPU {met(after_cpu <= GOAL_SECONDS)})"
        rows.append(
            [
                f"{n:,}",
                f"{got['probes']:,}",
                got["verdict"],
                f"{got['build_s']:.2f} ({got['build_cpu_s']:.2f})",
                f"{got['json_s']:.2f} ({got['json_cpu_s']:.2f})",
                f"{after:.2f} ({after_cpu:.2f}){goal}",
                f"{got['nagios_s']:.2f}",
                f"{got['openmetrics_s']:.2f}",
                f"{base['peak_rss_mib']:.0f}",
                f"{got['peak_rss_mib']:.0f}",
                f"{(got['peak_rss_mib'] - base['peak_rss_mib']) * 1024 / n:.1f}",
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    table = markdown_table(
        [
            "targets",
            "probes",
            "verdict",
            "build_report s (CPU s)",
            "JSON text s (CPU s)",
            "report + JSON s (CPU s)",
            "nagios s",
            "openmetrics s",
            "peak RSS, results only MiB",
            "peak RSS MiB",
            "report KiB per target",
        ],
        rows,
    )
    print(table)
    if args.write:
        body = (
            "## Thousands of targets: the report after the probes end (issue 25)\n\n"
            "Synthetic results (one `--target 127.x.y.z` each: port 25 refused in 0.2 ms, "
            "465/587 greeting with TLS, 2525 refused) through the real `build_report`, then "
            'the JSON text (`render("json")`), and apart the Nagios and OpenMetrics '
            "renderings; each size in a fresh process. Wall seconds, with the process's CPU "
            "seconds in brackets (other work on the machine inflates the first, not the "
            "second). Goal: 5,000 targets' report + JSON in ≤ 2 s, memory linear.\n\n"
            f"{provenance()}\n{table}\n"
        )
        update_readme("scale", body)


if __name__ == "__main__":
    main()
