#!/usr/bin/env bash
# examples/cdnow/run.sh DATA: fits BG/NBD and Gamma-Gamma on the CDNOW sample as a user would,
# in a fresh Engage home, and prints as its last line
#   {"bgnbd": {"r", "alpha", "a", "b", "log_likelihood"},
#    "gamma_gamma": {"p", "q", "gamma", "log_likelihood"}}
# DATA is the cdnow data folder as on disk (e.g. ../shared/data/cdnow from the repository root),
# its parent (../shared/data) or CDNOW_sample.txt itself; it works from any current directory.
# ENGAGE (default: the checkout's build/default/engage, else engage on PATH) and ENGAGE_HOME
# (default: a new temporary directory, removed afterwards) may be set.
set -euo pipefail
here="$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
example_name="examples/cdnow/run.sh"
# shellcheck source-path=SCRIPTDIR source=../common.sh
. "$here/../common.sh"
case "${1:-}" in
  -h | --help) sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
[ $# -eq 1 ] || example_die "usage: $example_name DATA (e.g. ../shared/data/cdnow)"
file="$(example_data_file "$1" cdnow CDNOW_sample.txt)"
engage="$(example_engage)"
example_require jq
example_home

"$engage" init --force >/dev/null
cp "$here/engage.toml" "$ENGAGE_HOME/engage.toml"
input="$(example_ingest_path "$file")"
"$engage" ingest cdnow "$input" >&2
# Calibration: the first 39 weeks (1997-01-01 .. 1997-09-30), time in weeks, one transaction
# per customer-day, as in Fader, Hardie & Lee (2005).
"$engage" btyd fit cdnow --calibration-end 1997-09-30 >&2
"$engage" btyd predict cdnow --calibration-end 1997-09-30 --horizon 39 --limit 5 >&2
"$engage" btyd fit cdnow --calibration-end 1997-09-30 --json |
  jq -c '{bgnbd: (.bgnbd | {r, alpha, a, b, log_likelihood}),
          gamma_gamma: (.gamma_gamma | {p, q, gamma, log_likelihood})}'
