#!/usr/bin/env bash
# bench/flow/run.sh: Engage flow state transitions per second, with the history persisted in
# SQLite and without, vs a hand-written reference doing the same data flow, one run.
# Builds the release preset if needed; writes bench/results/flow.json; the last line printed is
# the JSON object. BENCH_REPS (default 5) sets the repetitions.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build/release"
# Always (re)build: an incremental build is quick and a stale binary would measure old code.
if [ ! -d "$build" ]; then
  "$root/scripts/install-deps"
  cmake --preset release -S "$root" >/dev/null
fi
cmake --build "$build" --target flow_bench >/dev/null
work="${BENCH_WORK:-$root/build/bench-work}"
mkdir -p "$root/bench/results" "$work"
out="$("$build/bench/flow_bench" --work "$work" --reps "${BENCH_REPS:-5}" "$@")"
printf '%s\n' "$out" | head -n -1
json="$(printf '%s\n' "$out" | tail -n 1)"
printf '%s\n' "$json" >"$root/bench/results/flow.json"
printf '%s\n' "$json"
