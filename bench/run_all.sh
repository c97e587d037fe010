#!/bin/sh
# Run every portprobe benchmark and update bench/README.md with the figures.
# From the project root:  sh bench/run_all.sh      (the lab part needs root and ip netns)
# Loopback and lab namespaces only; every step is bounded and stops by itself.
set -eu
cd "$(dirname "$0")/.."
uv run python bench/coldstart.py --runs 20 --write
uv run python bench/concurrency.py --hosts 50,200,1000 --concurrency 64,all --repeat 3 --plain --write
uv run python bench/second_diagnosis.py --runs 30 --write
uv run python bench/scale.py --write
uv run python bench/shape.py
if [ "$(id -u)" = 0 ]; then
    uv run python bench/lab_compare.py --rounds 5 --verdict-runs 20 --write
else
    echo "bench/lab_compare.py skipped: the lab needs root" >&2
fi
