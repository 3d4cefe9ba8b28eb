#!/usr/bin/env bash
# bench/monitor/run.sh: Engage's table drift (`engage drift`) vs the same aggregates on raw DuckDB
# over the same lake files, one run.
# Builds the release preset if needed (BENCH_BUILD overrides the build directory); writes
# bench/results/drift.json; the last line printed is the JSON object. BENCH_REPS (default 3) sets
# the repetitions; other options pass through (--rows per window, default 1000000; --numeric 80;
# --categorical 20; --threads; --work; --keep). Generating and ingesting 2M rows x 100 columns
# takes a minute or two; progress goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BENCH_BUILD:-$root/build/release}"
# Always (re)build: an incremental build is quick and a stale binary would measure old code.
if [ ! -d "$build" ]; then
  "$root/scripts/install-deps"
  cmake --preset release -S "$root" >/dev/null
fi
cmake --build "$build" --target drift_bench >/dev/null
mkdir -p "$root/bench/results"
out="$("$build/bench/drift_bench" --reps "${BENCH_REPS:-3}" "$@")"
printf '%s\n' "$out" | head -n -1
json="$(printf '%s\n' "$out" | tail -n 1)"
printf '%s\n' "$json" >"$root/bench/results/drift.json"
printf '%s\n' "$json"
