#!/usr/bin/env bash
# bench/ml/run.sh: Engage's XGBoost wrapper (training with validation each round, scoring) vs the
# same work written directly on the XGBoost C API, one run.
# Builds the release preset if needed; writes bench/results/ml.json; the last line printed is
# the JSON object. BENCH_REPS (default 3) sets the repetitions; other options pass through
# (--rows, --features, --rounds, --score-rows).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build/release"
# Always (re)build: an incremental build is quick and a stale binary would measure old code.
if [ ! -d "$build" ]; then
  "$root/scripts/install-deps"
  cmake --preset release -S "$root" >/dev/null
fi
cmake --build "$build" --target ml_bench >/dev/null
mkdir -p "$root/bench/results"
out="$("$build/bench/ml_bench" --reps "${BENCH_REPS:-3}" "$@")"
printf '%s\n' "$out" | head -n -1
json="$(printf '%s\n' "$out" | tail -n 1)"
printf '%s\n' "$json" >"$root/bench/results/ml.json"
printf '%s\n' "$json"
