#!/usr/bin/env bash
# bench/lake/run.sh [events] [lake_bench flags]: Engage lake ingest and queries vs raw DuckDB,
# same files, one run, and the fixed cost Engage adds to a small query. Builds the release preset
# (incrementally: a stale binary would measure old code); writes bench/results/lake-<events>.json
# (lake-<events>-fixed.json with --fixed-only); the last line printed is the JSON object.
# BENCH_REPS (default 3) and BENCH_SMALL_REPS (default 300) set the repetitions.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
events="${1:-1000000}"
shift || true
build="$root/build/release"
if [ ! -d "$build" ]; then
  "$root/scripts/install-deps"
  cmake --preset release -S "$root" >/dev/null
fi
cmake --build "$build" --target lake_bench >/dev/null
work="${BENCH_WORK:-$root/build/bench-work}"
mkdir -p "$root/bench/results" "$work"
out="$("$build/bench/lake_bench" --events "$events" --work "$work" --reps "${BENCH_REPS:-3}" \
  --small-reps "${BENCH_SMALL_REPS:-300}" "$@")"
printf '%s\n' "$out" | head -n -1
json="$(printf '%s\n' "$out" | tail -n 1)"
suffix=""
for a in "$@"; do [ "$a" = "--fixed-only" ] && suffix="-fixed"; done
printf '%s\n' "$json" >"$root/bench/results/lake-$events$suffix.json"
printf '%s\n' "$json"
