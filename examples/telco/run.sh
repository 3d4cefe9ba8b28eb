#!/usr/bin/env bash
# examples/telco/run.sh <data-dir>: trains a churn classifier on IBM's Telco Customer Churn file
# as a user would, in a fresh Engage home, and prints as its last line
#   {"auc", "pr_auc", "log_loss", "rows_train", "rows_test"}   (on the held-out test split)
# <data-dir> holds Telco-Customer-Churn.csv (e.g. ../shared/data/telco_churn). ENGAGE (default:
# the build's binary) and ENGAGE_HOME (default: a new temporary directory, removed afterwards)
# may be set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="${1:?usage: run.sh <data-dir with Telco-Customer-Churn.csv>}"
file="$data/Telco-Customer-Churn.csv"
[ -f "$file" ] || { echo "run.sh: $file not found" >&2; exit 2; }
engage="${ENGAGE:-$here/../../build/default/engage}"
if [ -z "${ENGAGE_HOME:-}" ]; then
  ENGAGE_HOME="$(mktemp -d)"
  trap 'rm -rf "$ENGAGE_HOME"' EXIT
fi
export ENGAGE_HOME

"$engage" init --force >/dev/null
cp "$here/engage.toml" "$ENGAGE_HOME/engage.toml"
"$engage" ingest telco "$file" >&2
# 20% of customers (by a hash of customer_id) are held out for the test split; 20% of the rest
# decide when boosting stops.
"$engage" train --table telco --label churn --id customer_id --save "$ENGAGE_HOME/churn.json" >&2
"$engage" train --table telco --label churn --id customer_id --json |
  jq -c '{auc, pr_auc, log_loss, rows_train, rows_test}'
