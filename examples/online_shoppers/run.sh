#!/usr/bin/env bash
# examples/online_shoppers/run.sh <data-dir>: trains a purchase classifier on the UCI Online
# Shoppers Purchasing Intention sessions as a user would, in a fresh Engage home, and prints as
# its last line
#   {"auc", "pr_auc", "log_loss", "rows_train", "rows_test"}   (on the held-out test split)
# <data-dir> holds online_shoppers_intention.csv (e.g. ../shared/data/online_shoppers_intention).
# ENGAGE (default: the build's binary) and ENGAGE_HOME (default: a new temporary directory,
# removed afterwards) may be set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="${1:?usage: run.sh <data-dir with online_shoppers_intention.csv>}"
file="$data/online_shoppers_intention.csv"
[ -f "$file" ] || { echo "run.sh: $file not found" >&2; exit 2; }
engage="${ENGAGE:-$here/../../build/default/engage}"
if [ -z "${ENGAGE_HOME:-}" ]; then
  ENGAGE_HOME="$(mktemp -d)"
  trap 'rm -rf "$ENGAGE_HOME"' EXIT
fi
export ENGAGE_HOME

"$engage" init --force >/dev/null
cp "$here/engage.toml" "$ENGAGE_HOME/engage.toml"
"$engage" ingest shoppers "$file" >&2
# Sessions have no id: the split is a seeded shuffle of the rows (--seed, default 42): 20% test,
# 20% of the rest for early stopping.
"$engage" train --table shoppers --label revenue --save "$ENGAGE_HOME/revenue.json" >&2
"$engage" train --table shoppers --label revenue --json |
  jq -c '{auc, pr_auc, log_loss, rows_train, rows_test}'
