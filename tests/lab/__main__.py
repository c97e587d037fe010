"""Drive the lab by hand or from a script (as root, from the repository root).

python -m tests.lab up --scenario dropped      # build, print how to use it, wait for Ctrl-C
python -m tests.lab switch asa                 # in another shell: change the running lab
python -m tests.lab exec -- swaks --server mx.alpha.example ...   # run in its client ns
python -m tests.lab run --scenario dropped -- portprobe --domain alpha.example ...
python -m tests.lab scenarios                  # list scenarios
python -m tests.lab cleanup                    # remove leftovers of killed runs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from .netlab import (
    PATH_DELAY_MS,
    PATH_LOSS,
    Lab,
    LabInfo,
    apply_scenario,
    remove_stale,
    running_labs,
)
from .readiness_world import WORLDS
from .scenarios import SCENARIOS
from .topology import PROVIDERS


def _portprobe() -> str:
    return str(Path(sys.executable).parent / "portprobe")


def _usage_text(info: LabInfo) -> str:
    domains = " ".join(f"--domain {p.domain}" for p in PROVIDERS)
    probe = f"{_portprobe()} {domains} --nameserver {info.nameservers[0]} --ca-file {info.ca_file}"
    return "\n".join(
        [
            f"lab up: client={info.client} router={info.router} internet={info.internet}",
            f"  workdir  {info.workdir}  (logs: *.log, postfix-*/maillog)",
            f"  CA       {info.ca_file}",
            f"  DNS      {', '.join(info.nameservers)}",
            f"  portprobe:  ip netns exec {info.client} {probe}",
            f"  swaks:      ip netns exec {info.client} swaks --server {PROVIDERS[0].ipv4}"
            " --quit-after EHLO -tls",
            f"  nmap:       ip netns exec {info.client} nmap -sT -Pn -p25,465,587,2525 "
            + " ".join(p.ipv4 for p in PROVIDERS),
            f"  switch:     {sys.executable} -m tests.lab switch SCENARIO",
            "  Ctrl-C tears it down.",
        ]
    )


def _env(info: LabInfo) -> dict[str, str]:
    """The environment for commands in the lab: where its CA and resolver are."""
    return {**os.environ, "PPLAB_CA_FILE": info.ca_file, "PPLAB_NAMESERVER": info.nameservers[0]}


def _pick(labs: list[LabInfo], name: str | None) -> LabInfo:
    if name:
        labs = [lab for lab in labs if name in (lab.client, lab.router, lab.internet)]
    if len(labs) != 1:
        found = ", ".join(lab.client for lab in labs) or "none"
        sys.exit(f"need exactly one running lab (use --lab CLIENT-NS); found: {found}")
    return labs[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "run"):
        p = sub.add_parser(name)
        p.add_argument("--scenario", default="open", choices=sorted(SCENARIOS))
        p.add_argument("--readiness", default="clean", choices=sorted(WORLDS), help="DNS world")
        p.add_argument("--delay-ms", type=float, default=PATH_DELAY_MS, help="latency, each way")
        p.add_argument("--loss", type=float, default=PATH_LOSS, help="latency scenario loss")
        p.add_argument("--seed", type=int, default=None)
        p.add_argument("--keep", action="store_true", help="keep the work directory")
    sub.choices["up"].add_argument("--json", action="store_true", help="print the lab as JSON")
    sub.choices["run"].add_argument("cmd", nargs=argparse.REMAINDER)
    p = sub.add_parser("switch")
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--readiness", default="clean", choices=sorted(WORLDS), help="DNS world")
    p.add_argument("--lab")
    p = sub.add_parser("exec")
    p.add_argument("--lab")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    sub.add_parser("scenarios")
    sub.add_parser("worlds")
    sub.add_parser("list")
    sub.add_parser("cleanup")
    args = parser.parse_args(argv)

    if args.command == "scenarios":
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:12} {scenario.description}")
        return 0
    if args.command == "worlds":
        for world in WORLDS.values():
            print(f"{world.name:12} {world.description}")
        return 0
    if args.command == "cleanup":
        for name in remove_stale():
            print(f"removed {name}")
        return 0
    if args.command == "list":
        for info in running_labs():
            print(json.dumps(info.to_dict()))
        return 0
    if args.command == "switch":
        info = _pick(running_labs(), args.lab)
        apply_scenario(info, SCENARIOS[args.scenario], WORLDS[args.readiness])
        print(f"{info.client}: {args.scenario}, readiness world {args.readiness}")
        return 0
    if args.command == "exec":
        info = _pick(running_labs(), args.lab)
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        return subprocess.call(["ip", "netns", "exec", info.client, *cmd], env=_env(info))

    lab = Lab(
        path_delay_ms=args.delay_ms, path_loss=args.loss, seed=args.seed, keep_workdir=args.keep
    )
    with lab:
        lab.switch(args.scenario, args.readiness)
        if args.command == "run":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                sys.exit("run: give a command after --")
            env = _env(lab.info)
            print(f"+ [{lab.client.name}] {shlex.join(cmd)}", file=sys.stderr)
            return subprocess.call(lab.client_argv(cmd), env=env)
        print(
            json.dumps(lab.info.to_dict(), indent=2) if args.json else _usage_text(lab.info),
            flush=True,
        )
        # Started in the background by a script, SIGINT may be ignored: take it back.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
