#!/usr/bin/env bash
# bench/features/run.sh: Engage's FeatureBuilder (scoring cutoff and the training set) vs the same
# SQL run on raw DuckDB over the same lake files, one run.
# Builds the release preset if needed (BENCH_BUILD overrides the build directory); writes
# bench/results/features.json; the last line printed is the JSON object. BENCH_REPS (default 3)
# sets the repetitions; other options pass through (--customers, default 1000000, --threads,
# --work, --keep, --home). Generating and ingesting 1M customers (~47M events) takes minutes;
# progress goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BENCH_BUILD:-$root/build/release}"
# Always (re)build: an incremental build is quick and a stale binary would measure old code.
if [ ! -d "$build" ]; then
  "$root/scripts/install-deps"
  cmake --preset release -S "$root" >/dev/null
fi
cmake --build "$build" --target features_bench >/dev/null
mkdir -p "$root/bench/results"
out="$("$build/bench/features_bench" --reps "${BENCH_REPS:-3}" "$@")"
printf '%s\n' "$out" | head -n -1
json="$(printf '%s\n' "$out" | tail -n 1)"
printf '%s\n' "$json" >"$root/bench/results/features.json"
printf '%s\n' "$json"
