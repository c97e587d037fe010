"""What mail readiness costs a diagnosis: the lab's "nothing blocked" run with and without it.

In the lab of tests/lab (scenario ``open``, readiness world ``clean``: whoami servers,
PTR and forward records, a Spamhaus-coded DNSBL zone, all lab servers), portprobe runs
``--domain alpha.example --domain beta.example --domain gamma.example --nameserver
198.51.100.53 --ca-file CA --json`` with readiness (the default) and with
``--no-readiness``, alternating, ``--rounds`` times each (default 10). Issue 13's target:
the run with readiness takes at most 10 % longer (medians of wall time).

    sudo uv run python bench/readiness_cost.py [--rounds 10] [--write]

Traffic goes only to the lab's namespaces; the lab is torn down at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common

PORTPROBE = str(common.PROJECT_DIR / ".venv" / "bin" / "portprobe")


def argv(lab: object, readiness: bool) -> list[str]:
    from tests.lab.topology import PROVIDERS

    args = [PORTPROBE]
    for provider in PROVIDERS:
        args += ["--domain", provider.domain]
    args += ["--nameserver", lab.nameserver, "--ca-file", str(lab.ca_file), "--json"]  # type: ignore[attr-defined]
    if not readiness:
        args.append("--no-readiness")
    return lab.client_argv(args)  # type: ignore[attr-defined, no-any-return]


def run_once(lab: object, readiness: bool) -> tuple[float, dict[str, object]]:
    import subprocess

    started = time.perf_counter()
    proc = subprocess.run(argv(lab, readiness), capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    return wall, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()

    from tests.lab.netlab import Lab, lab_unavailable

    reason = lab_unavailable()
    if reason is not None:
        sys.exit(f"readiness_cost: the lab cannot run here: {reason}")
    walls: dict[bool, list[float]] = {True: [], False: []}
    ready: list[object] = []
    with Lab() as lab:
        lab.switch("open", readiness="clean")
        run_once(lab, True)  # warm the page cache and the lab's DNS, measured by neither
        for _ in range(args.rounds):
            for readiness in (True, False):
                wall, report = run_once(lab, readiness)
                walls[readiness].append(wall)
                if readiness:
                    ready.append((report.get("readiness") or {}).get("ready"))
    with_r, without = common.median(walls[True]), common.median(walls[False])
    ratio = with_r / without
    rows = [
        ["with readiness (default)", args.rounds, f"{with_r:.3f}", f"{min(walls[True]):.3f}"],
        ["--no-readiness", args.rounds, f"{without:.3f}", f"{min(walls[False]):.3f}"],
    ]
    table = common.markdown_table(["run", "runs", "median wall (s)", "best (s)"], rows)
    verdict = (
        f"with / without = {ratio:.3f} (target ≤ 1.10: {common.met(ratio <= 1.10)}); "
        f"readiness said {sorted({str(r) for r in ready})} in every run with it"
    )
    print(table)
    print(verdict)
    if args.write:
        body = (
            "## What mail readiness costs (issue 13)\n\n"
            f"{common.provenance()}"
            f"- `sudo uv run python bench/readiness_cost.py --rounds {args.rounds} --write`: "
            "the lab's `open` scenario, readiness world `clean`, three lab providers over "
            "IPv4 + IPv6, alternating runs with and without `--no-readiness`\n\n"
            f"{table}\n\n{verdict}\n"
        )
        common.update_readme("readiness", body)


if __name__ == "__main__":
    main()
