"""Concurrency efficiency: N loopback hosts × 4 ports, against one probe alone.

For N in (50, 200, 1000) hosts, each with the four roles 25/465/587/2525 on its own
loopback address (127.20.x.y, so the per-address limit applies as against real hosts),
the whole run is timed and divided by the wall time of the slowest single probe run
alone. A ratio of 1 means the run costs one probe's round trips, paid once.

The responder (bench/responder.py, a separate process, so its CPU and memory are not
ours) greets after ``--delay`` seconds. With TLS (the default) it speaks implicit TLS on
the 465 role and offers STARTTLS on the others, with a certificate from a throw-away CA
that portprobe verifies; ``--plain`` leaves TLS out (roles 25/587/2525/25) to show what
TLS costs.

Each run is a fresh worker process, so peak RSS (ru_maxrss) is that run's alone. Runs
use portprobe's library defaults (ProbeConfig(), per-host limit 4) with two global
concurrency limits: the CLI default (64) and one slot per probe (4N, "unbounded").

    uv run python bench/concurrency.py [--hosts 50,200,1000] [--write]

Loopback only; every process stops by itself.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import responder

from portprobe import defaults

# Targets from issue 7.
TARGET_RATIO = {200: 1.3, 1000: 2.0}
TARGET_RSS_MB = {1000: 150.0}
DEFAULT_CONCURRENCY = defaults.CONCURRENCY  # the CLI's --concurrency default
SINGLE_REPEATS = 7
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the worker: one timed run in its own process --------------------------------------------


def _specs(hosts: int, base_port: int, tls: bool) -> list[Any]:
    from portprobe.model import ProbeSpec

    # Without TLS the 465 role (implicit TLS by definition) cannot be probed: use 25 twice.
    roles = responder.ROLES if tls else (25, 587, 2525, 25)
    return [
        ProbeSpec(
            target=responder.host_name(i),
            host=responder.host_name(i),
            address=responder.address(i),
            family="ipv4",
            port=role,
            provider=f"bench{i}",
            connect_port=base_port + offset,
        )
        for i in range(hosts)
        for offset, role in enumerate(roles)
    ]


def _run_once(specs: list[Any], concurrency: int, ca_file: str | None) -> dict[str, Any]:
    import trio

    from portprobe.probe.runner import Runner
    from portprobe.probe.tls import make_contexts

    holder: dict[str, Any] = {}
    # Loading the trust store is a per-run constant, not concurrency: timed on its own.
    started = time.perf_counter()
    contexts = make_contexts(ca_file)
    holder["setup"] = time.perf_counter() - started

    async def go() -> None:
        started = time.perf_counter()
        runner = Runner(specs, concurrency=concurrency, tls=contexts)
        results = await runner.run()
        holder["wall"] = time.perf_counter() - started
        holder["results"] = results
        holder["concurrency"] = runner.concurrency
        holder["warnings"] = runner.warnings

    trio.run(go)
    return holder


def worker(args: argparse.Namespace) -> None:
    common.raise_fd_limit()
    # Loaded on first use by the engine (certificate parsing); a cold-start cost measured
    # in bench/coldstart.py, kept out of this one.
    import cryptography.x509  # noqa: F401

    import portprobe.probe.runner  # noqa: F401

    tls = args.ca_file is not None
    specs = _specs(args.hosts, args.base_port, tls)
    out: dict[str, Any] = {}
    if args.single:
        # One probe at a time, each role, after one warm-up: the physical floor.
        per_role: dict[str, float] = {}
        for spec in specs[:4]:
            _run_once([spec], 1, args.ca_file)
            walls = [_run_once([spec], 1, args.ca_file)["wall"] for _ in range(SINGLE_REPEATS)]
            per_role[f"{spec.port}@{spec.dial_port}"] = common.median(walls)
        out["single"] = per_role
    else:
        before = resource.getrusage(resource.RUSAGE_SELF)
        run = _run_once(specs, args.concurrency, args.ca_file)
        after = resource.getrusage(resource.RUSAGE_SELF)
        results = run["results"]
        totals = [r.timings.total or 0.0 for r in results]
        out = {
            "wall": run["wall"],
            "setup": run["setup"],
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "maxrss_kib": after.ru_maxrss,
            "vmhwm_kib": common.vm_hwm_kib(),
            "probes": len(results),
            "states": dict(Counter(r.state for r in results)),
            "tls_verified": sum(1 for r in results if r.tls is not None and r.tls.verified),
            "slowest_probe_ms": max(totals),
            "max_phase_ms": {
                phase: max((getattr(r.timings, phase) or 0.0) for r in results)
                for phase in ("connect", "greeting", "ehlo", "tls", "total")
            },
            "concurrency": run["concurrency"],
            "warnings": run["warnings"],
        }
    print(json.dumps(out))


# --- the orchestrator -------------------------------------------------------------------------


def spawn_worker(
    hosts: int,
    base_port: int,
    concurrency: int,
    ca_file: str | None,
    single: bool = False,
) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--worker", "--hosts", str(hosts)]
    argv += ["--base-port", str(base_port), "--concurrency", str(concurrency)]
    if ca_file:
        argv += ["--ca-file", ca_file]
    if single:
        argv.append("--single")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


class ResponderProcess:
    def __init__(self, hosts: int, base_port: int, delay: float, tls_dir: str | None) -> None:
        argv = [sys.executable, responder.__file__, "--hosts", str(hosts)]
        argv += ["--base-port", str(base_port), "--delay", str(delay), "--lifetime", "1800"]
        if tls_dir:
            argv += ["--tls-dir", tls_dir]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "READY":
            self.stop()
            raise RuntimeError("responder did not start")

    def cpu_seconds(self) -> float:
        """user+sys CPU the responder has used so far (from /proc/PID/stat)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure(args: argparse.Namespace, tls: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="portprobe-bench-") as tmp:
        ca_file = str(responder.write_certs(Path(tmp))) if tls else None
        server = ResponderProcess(max(args.hosts), args.base_port, args.delay, tmp if tls else None)
        try:
            single = spawn_worker(1, args.base_port, 1, ca_file, single=True)["single"]
            floor = max(single.values())
            print(f"[{'tls' if tls else 'plain'}] single probes alone (s): {single}", flush=True)
            for hosts in args.hosts:
                for label in args.concurrency:
                    conc = 4 * hosts if label == "all" else int(label)
                    runs = []
                    for _ in range(args.repeat):
                        server_before = server.cpu_seconds()
                        run = spawn_worker(hosts, args.base_port, conc, ca_file)
                        run["server_cpu"] = server.cpu_seconds() - server_before
                        runs.append(run)
                    wall = common.median(r["wall"] for r in runs)
                    row = {
                        "tls": tls,
                        "hosts": hosts,
                        "probes": runs[0]["probes"],
                        "concurrency": conc,
                        "effective": runs[0]["concurrency"],
                        "wall": wall,
                        "floor": floor,
                        "ratio": wall / floor,
                        "cpu": common.median(r["cpu"] for r in runs),
                        "server_cpu": common.median(r["server_cpu"] for r in runs),
                        "rss_mb": max(r["maxrss_kib"] for r in runs) / 1024,
                        "states": runs[0]["states"],
                        "max_phase_ms": runs[0]["max_phase_ms"],
                        "verified": runs[0]["tls_verified"],
                        "all_open": all(r["states"] == {"open": r["probes"]} for r in runs),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            server.stop()
    return rows


def target_text(row: dict[str, Any]) -> str:
    notes = []
    hosts = row["hosts"]
    if hosts in TARGET_RATIO:
        limit = TARGET_RATIO[hosts]
        notes.append(f"ratio ≤ {limit}: {common.met(row['ratio'] <= limit)}")
    if hosts in TARGET_RSS_MB:
        limit = TARGET_RSS_MB[hosts]
        notes.append(f"RSS < {limit:g} MB: {common.met(row['rss_mb'] < limit)}")
    if not row["all_open"]:
        notes.append(f"**not all open**: {row['states']}")
    return "; ".join(notes) or "–"


def render(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    headers = [
        "TLS",
        "hosts × 4",
        "probes",
        "concurrency",
        "wall (s)",
        "1 probe alone (s)",
        "ratio",
        "ratio floor at this concurrency",
        "CPU (s)",
        "CPU/probe (ms)",
        "responder CPU (s)",
        "peak RSS (MB)",
        "targets",
    ]
    table = [
        [
            "465 implicit + STARTTLS, verified" if r["tls"] else "none (plain)",
            r["hosts"],
            r["probes"],
            r["effective"] if r["effective"] == r["concurrency"] else f"{r['effective']}*",
            f"{r['wall']:.3f}",
            f"{r['floor']:.3f}",
            f"{r['ratio']:.2f}",
            str(math.ceil(r["probes"] / r["effective"])),
            f"{r['cpu']:.2f}",
            f"{1000 * r['cpu'] / r['probes']:.2f}",
            f"{r['server_cpu']:.2f}",
            f"{r['rss_mb']:.1f}",
            target_text(r),
        ]
        for r in rows
    ]
    return common.markdown_table(headers, table)


def section_suffix(args: argparse.Namespace) -> str:
    """The default greeting delay has the plain section names; others get their own."""
    return "" if args.delay == 0.2 else f"-delay-{args.delay:g}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ca-file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--hosts", default="50,200,1000")
    parser.add_argument("--concurrency", default=f"{DEFAULT_CONCURRENCY},all")
    parser.add_argument("--base-port", type=int, default=42000)
    parser.add_argument("--delay", type=float, default=0.2, help="greeting delay (s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (median)")
    parser.add_argument("--plain", action="store_true", help="also measure without TLS")
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()
    if args.worker:
        args.hosts = int(args.hosts)
        args.concurrency = int(args.concurrency)
        worker(args)
        return
    args.hosts = [int(h) for h in args.hosts.split(",")]
    args.concurrency = args.concurrency.split(",")
    common.raise_fd_limit()
    rows = measure(args, tls=True)
    if args.plain:
        rows += measure(args, tls=False)
    table = render(rows, args)
    print(table)
    if args.write:
        body = (
            f"## Concurrency efficiency (issue 7, part 2), greeting delay {args.delay:g} s\n\n"
            f"{common.provenance()}"
            f"- responder: bench/responder.py in its own process, greeting after "
            f"{args.delay:g} s; one loopback address per host (127.20.x.y), one port per "
            "role.\n"
            f"- each cell: median wall of {args.repeat} runs, each in a fresh worker "
            "process; peak RSS = max ru_maxrss of the worker (interpreter + trio + ssl + "
            "cryptography included); CPU = the worker's user+sys during the run.\n"
            "- ratio = wall / (median wall of the slowest role probed alone, one probe at "
            "a time, after a warm-up).\n"
            "- concurrency: 64 is the CLI default; 4N gives every probe a slot "
            "(per-host limit 4 = one per port, the library default). With 64 slots the "
            "run cannot take less than ⌈probes / 64⌉ greeting delays: that is the "
            "'ratio floor at this concurrency' column (a politeness choice, not a cost).\n\n"
            f"{table}\n"
        )
        common.update_readme(f"concurrency{section_suffix(args)}", body)


if __name__ == "__main__":
    main()
