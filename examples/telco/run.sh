#!/usr/bin/env bash
# examples/telco/run.sh DATA: trains a churn classifier on IBM's Telco Customer Churn file as a
# user would, in a fresh Engage home, and prints as its last line
#   {"auc", "pr_auc", "log_loss", "rows_train", "rows_test"}   (on the held-out test split)
# DATA is the telco_churn data folder as on disk (e.g. ../shared/data/telco_churn from the
# repository root), its parent (../shared/data) or Telco-Customer-Churn.csv itself; it works
# from any current directory. ENGAGE (default: the checkout's build/default/engage, else engage
# on PATH) and ENGAGE_HOME (default: a new temporary directory, removed afterwards) may be set.
set -euo pipefail
here="$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
example_name="examples/telco/run.sh"
# shellcheck source-path=SCRIPTDIR source=../common.sh
. "$here/../common.sh"
case "${1:-}" in
  -h | --help) sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
[ $# -eq 1 ] || example_die "usage: $example_name DATA (e.g. ../shared/data/telco_churn)"
file="$(example_data_file "$1" telco_churn Telco-Customer-Churn.csv)"
engage="$(example_engage)"
example_require jq
example_home

"$engage" init --force >/dev/null
cp "$here/engage.toml" "$ENGAGE_HOME/engage.toml"
input="$(example_ingest_path "$file")"
"$engage" ingest telco "$input" >&2
# 20% of customers (by a hash of customer_id) are held out for the test split; 20% of the rest
# decide when boosting stops.
"$engage" train --table telco --label churn --id customer_id --save "$ENGAGE_HOME/churn.json" >&2
"$engage" train --table telco --label churn --id customer_id --json |
  jq -c '{auc, pr_auc, log_loss, rows_train, rows_test}'
