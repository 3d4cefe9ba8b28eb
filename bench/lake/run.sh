#!/usr/bin/env bash
# bench/lake/run.sh [events]: Engage lake ingest and queries vs raw DuckDB, same files, one run.
# Builds the release preset if needed; writes bench/results/lake-<events>.json; the last line
# printed is the JSON object.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
events="${1:-1000000}"
build="$root/build/release"
if [ ! -x "$build/bench/lake_bench" ]; then
  "$root/scripts/install-deps"
  cmake --preset release -S "$root" >/dev/null
  cmake --build "$build" --target lake_bench >/dev/null
fi
work="${BENCH_WORK:-$root/build/bench-work}"
mkdir -p "$root/bench/results" "$work"
out="$("$build/bench/lake_bench" --events "$events" --work "$work" --reps "${BENCH_REPS:-3}")"
printf '%s\n' "$out" | head -n -1
json="$(printf '%s\n' "$out" | tail -n 1)"
printf '%s\n' "$json" >"$root/bench/results/lake-$events.json"
printf '%s\n' "$json"
