#!/usr/bin/env bash
# Run the non-lab test suite N times (default 5) while two CPU-burning processes compete
# for the CPUs, to flush out tests that depend on timing (issue 12 §4): a mock clock over
# real sockets, a real-time deadline, a sleep standing in for synchronisation.
#
#   bench/stress_tests.sh            # 5 runs, stop at the first failing run
#   bench/stress_tests.sh -x         # extra arguments go to pytest
#   RUNS=10 BURNERS=4 bench/stress_tests.sh
#
# Exit status: 0 when every run passed, else the first failing run's pytest status.
# The burners are this script's own children and are killed (by PID) on any exit.
set -euo pipefail

RUNS="${RUNS:-5}"
BURNERS="${BURNERS:-2}"
cd "$(dirname "$0")/.."

burners=()
stop_burners() {
    for pid in "${burners[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${burners[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_burners EXIT INT TERM

for _ in $(seq "$BURNERS"); do
    # A shell busy loop: no I/O, no memory, just a CPU taken away from the tests.
    sh -c 'while :; do :; done' &
    burners+=("$!")
done
echo "stress: ${BURNERS} CPU burners (pids ${burners[*]}), ${RUNS} runs of the non-lab suite"

for run in $(seq "$RUNS"); do
    started=$(date +%s)
    status=0
    uv run pytest -q -m "not lab" -p no:cacheprovider "$@" || status=$?
    echo "stress: run ${run}/${RUNS}: exit ${status} after $(( $(date +%s) - started )) s"
    if [ "$status" -ne 0 ]; then
        echo "stress: FAILED in run ${run}" >&2
        exit "$status"
    fi
done
echo "stress: all ${RUNS} runs passed under load"
