#!/usr/bin/env bash
# examples/cdnow/run.sh <data-dir>: fits BG/NBD and Gamma-Gamma on the CDNOW sample as a user
# would, in a fresh Engage home, and prints as its last line
#   {"bgnbd": {"r", "alpha", "a", "b", "log_likelihood"},
#    "gamma_gamma": {"p", "q", "gamma", "log_likelihood"}}
# <data-dir> holds CDNOW_sample.txt (e.g. ../shared/data/cdnow). ENGAGE (default: the build's
# binary) and ENGAGE_HOME (default: a new temporary directory, removed afterwards) may be set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="${1:?usage: run.sh <data-dir with CDNOW_sample.txt>}"
[ -f "$data/CDNOW_sample.txt" ] || { echo "run.sh: $data/CDNOW_sample.txt not found" >&2; exit 2; }
engage="${ENGAGE:-$here/../../build/default/engage}"
if [ -z "${ENGAGE_HOME:-}" ]; then
  ENGAGE_HOME="$(mktemp -d)"
  trap 'rm -rf "$ENGAGE_HOME"' EXIT
fi
export ENGAGE_HOME

"$engage" init --force >/dev/null
cp "$here/engage.toml" "$ENGAGE_HOME/engage.toml"
"$engage" ingest cdnow "$data/CDNOW_sample.txt" >&2
# Calibration: the first 39 weeks (1997-01-01 .. 1997-09-30), time in weeks, one transaction
# per customer-day, as in Fader, Hardie & Lee (2005).
"$engage" btyd fit cdnow --calibration-end 1997-09-30 >&2
"$engage" btyd predict cdnow --calibration-end 1997-09-30 --horizon 39 --limit 5 >&2
"$engage" btyd fit cdnow --calibration-end 1997-09-30 --json |
  jq -c '{bgnbd: (.bgnbd | {r, alpha, a, b, log_likelihood}),
          gamma_gamma: (.gamma_gamma | {p, q, gamma, log_likelihood})}'
