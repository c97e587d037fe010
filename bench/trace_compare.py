"""The whole diagnosis with its path trace, beside `traceroute -T` and `mtr --tcp`.

In the path lab of tests/lab/pathlab.py (client → home NAT → ISP → transit → destination
router → hosts; scenario ``isp-drop``: the ISP router drops port 25), this times:

- portprobe's whole diagnosis of the three lab domains on ports 25 and 587, which traces
  port 25 (``--trace auto``), run as uid 65534 (no root);
- the same with ``--trace never`` (today's blocked run, without a trace);
- ``traceroute -T -p 25 -q 1 -m 20 203.0.113.10`` (Debian traceroute, root: raw socket);
- ``mtr --tcp -P 25 -c 1 -r -m 20 203.0.113.10`` (mtr-tiny, root).

Issue 22's targets: portprobe with its trace ≤ 1.0 × ``traceroute -T`` alone, and ≤ 1.3 ×
the blocked run without a trace (medians of wall time over ``--rounds`` runs each).

    sudo uv run python bench/trace_compare.py [--rounds 5] [--write]

Traffic goes only to the lab's namespaces; the lab is torn down at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common

PORTPROBE = str(common.PROJECT_DIR / ".venv" / "bin" / "portprobe")
HOST = "203.0.113.10"
UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def portprobe(trace: str) -> list[str]:
    from tests.lab.topology import PROVIDERS, RESOLVER_V4

    args = [*UNPRIVILEGED, PORTPROBE]
    for provider in PROVIDERS:
        args += ["--domain", provider.domain]
    args += ["--nameserver", RESOLVER_V4, "--ports", "25,587", "--no-readiness"]
    return [*args, "--trace", trace, "--json"]


TOOLS = {
    "portprobe (diagnosis + trace)": lambda: portprobe("auto"),
    "portprobe --trace never": lambda: portprobe("never"),
    "traceroute -T -p 25 -q 1": lambda: [
        "traceroute",
        "-T",
        "-p",
        "25",
        "-q",
        "1",
        "-m",
        "20",
        HOST,
    ],
    "mtr --tcp -P 25 -c 1 -r": lambda: [
        "mtr",
        "--tcp",
        "-P",
        "25",
        "-c",
        "1",
        "-r",
        "-m",
        "20",
        HOST,
    ],
}


def run_once(lab: object, argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = lab.run_client(argv, timeout=120)  # type: ignore[attr-defined]
    return time.perf_counter() - started, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()

    from tests.lab.netlab import lab_unavailable
    from tests.lab.pathlab import PathLab

    reason = lab_unavailable()
    missing = [t for t in ("traceroute", "mtr", "setpriv") if shutil.which(t) is None]
    if reason is not None or missing:
        sys.exit(f"trace_compare: cannot run here: {reason or 'missing ' + ', '.join(missing)}")
    walls: dict[str, list[float]] = {name: [] for name in TOOLS}
    placed: list[str] = []
    with PathLab() as lab:
        lab.switch("isp-drop")
        run_once(lab, TOOLS["portprobe (diagnosis + trace)"]())  # warm caches, not measured
        for _ in range(args.rounds):
            for name, make in TOOLS.items():
                wall, out = run_once(lab, make())
                walls[name].append(wall)
                if name.startswith("portprobe (") and out:
                    blocker = json.loads(out)["path"]["blocker"] or {}
                    placed.append(
                        f"{blocker.get('where')}/{blocker.get('how')}@{blocker.get('hop')}"
                    )
    med = {name: common.median(w) for name, w in walls.items()}
    rows = [[n, args.rounds, f"{med[n]:.3f}", f"{min(w):.3f}"] for n, w in walls.items()]
    table = common.markdown_table(["run", "runs", "median wall (s)", "best (s)"], rows)
    traced, untraced = med["portprobe (diagnosis + trace)"], med["portprobe --trace never"]
    tr = med["traceroute -T -p 25 -q 1"]
    verdict = (
        f"portprobe with trace / traceroute -T = {traced / tr:.2f} (target ≤ 1.0: "
        f"{common.met(traced <= tr)}); with / without trace = {traced / untraced:.2f} "
        f"(target ≤ 1.3: {common.met(traced <= 1.3 * untraced)}); the blocker placed as "
        f"{sorted(set(placed))} in every traced run"
    )
    print(table)
    print(verdict)
    if args.write:
        body = (
            "## The path trace beside traceroute -T and mtr (issue 22)\n\n"
            f"{common.provenance()}"
            f"- `sudo uv run python bench/trace_compare.py --rounds {args.rounds} --write`: "
            "the path lab (tests/lab/pathlab.py), scenario `isp-drop` (the ISP router, hop 2, "
            "drops port 25), host 203.0.113.10 five hops away; portprobe runs the whole "
            "diagnosis of three domains on ports 25 and 587 as uid 65534\n\n"
            f"{table}\n\n{verdict}\n"
        )
        common.update_readme("trace", body)


if __name__ == "__main__":
    main()
