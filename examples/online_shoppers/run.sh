#!/usr/bin/env bash
# examples/online_shoppers/run.sh DATA: trains a purchase classifier on the UCI Online Shoppers
# Purchasing Intention sessions as a user would, in a fresh Engage home, and prints as its last
# line   {"auc", "pr_auc", "log_loss", "rows_train", "rows_test"}   (on the held-out test split)
# DATA is the online_shoppers_intention data folder as on disk (e.g.
# ../shared/data/online_shoppers_intention from the repository root), its parent
# (../shared/data) or online_shoppers_intention.csv itself; it works from any current directory.
# ENGAGE (default: the checkout's build/default/engage, else engage on PATH) and ENGAGE_HOME
# (default: a new temporary directory, removed afterwards) may be set.
set -euo pipefail
here="$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
example_name="examples/online_shoppers/run.sh"
# shellcheck source-path=SCRIPTDIR source=../common.sh
. "$here/../common.sh"
case "${1:-}" in
  -h | --help) sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
[ $# -eq 1 ] ||
  example_die "usage: $example_name DATA (e.g. ../shared/data/online_shoppers_intention)"
file="$(example_data_file "$1" online_shoppers_intention online_shoppers_intention.csv)"
engage="$(example_engage)"
example_require jq
example_home

"$engage" init --force >/dev/null
cp "$here/engage.toml" "$ENGAGE_HOME/engage.toml"
input="$(example_ingest_path "$file")"
"$engage" ingest shoppers "$input" >&2
# Sessions have no id: the split is a seeded shuffle of the rows (--seed, default 42): 20% test,
# 20% of the rest for early stopping.
"$engage" train --table shoppers --label revenue --save "$ENGAGE_HOME/revenue.json" >&2
"$engage" train --table shoppers --label revenue --json |
  jq -c '{auc, pr_auc, log_loss, rows_train, rows_test}'
