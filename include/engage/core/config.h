// engage.toml: the one configuration file of an installation.
//
// It declares the lake's tables (columns, types, validation rules, how source columns map onto
// them, partitioning time column, retention), the price sheet used to cost queries, and query
// limits. `engage init` writes DefaultConfigToml(); users edit it.
//
// Thread-safety: Config is an immutable value once loaded.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engage/core/status.h"

namespace engage {

enum class ColumnType { kString, kInt64, kDouble, kBool, kTimestamp, kDate };

std::string_view ColumnTypeName(ColumnType t);  // "string", "int64", ...
std::string_view ColumnTypeSql(ColumnType t);   // "VARCHAR", "BIGINT", ...

struct ColumnSpec {
  std::string name;
  ColumnType type = ColumnType::kString;
  bool required = false;
  // Source column this one is read from (defaults to `name`). For headerless CSV and
  // whitespace-separated files the source columns are "column0", "column1", ...
  std::string source;
  // Optional SQL expression over source columns, evaluated instead of `source`
  // (e.g. "Quantity::DOUBLE * UnitPrice::DOUBLE"). Written by the operator, not by users.
  std::string expr;
  std::optional<double> min;
  std::optional<double> max;
  std::vector<std::string> allowed;
  std::optional<int64_t> max_length;
  // strptime format for timestamp/date columns given as text, e.g. "%Y%m%d".
  std::string format;
};

struct CsvOptions {
  // A single character, or "whitespace" for runs of spaces/tabs (fixed-width padded files).
  std::string delimiter = ",";
  bool header = true;
  std::string quote = "\"";
  // Longest accepted line; longer lines are quarantined.
  int64_t max_line_bytes = 2 * 1024 * 1024;
};

// A data-quality check declared on a table ([[tables.T.checks]]), run by `engage check` and the
// pipeline's data-quality step (the monitor component).
enum class CheckKind {
  kNotNull,         // columns: no NULL
  kUnique,          // columns (together): no two rows share them
  kRange,           // column: min <= value <= max (either bound may be absent)
  kAllowed,         // column: one of `values`
  kRegex,           // column: matches `pattern` whole (RE2 syntax)
  kFreshness,       // the newest time_column is at most max_age_hours old
  kRowCountChange,  // the latest ingest's rows within max_change_percent of the previous one's
  kSql,             // `sql` returns the failing rows
};
std::string_view CheckKindName(CheckKind kind);

struct CheckSpec {
  std::string name;  // unique in its table; default "<kind>" or "<kind>_<columns>"
  CheckKind kind = CheckKind::kNotNull;
  std::vector<std::string> columns;
  std::optional<double> min, max;
  std::vector<std::string> values;
  std::string pattern;
  double max_age_hours = 0;
  double max_change_percent = 0;
  std::string sql;
  bool error = true;  // severity: "error" fails the check run, "warning" only reports
};

struct TableSpec {
  std::string name;
  std::vector<ColumnSpec> columns;
  // Timestamp/date column whose UTC date gives the dt=YYYY-MM-DD partition. Empty for snapshot
  // tables (e.g. one row per customer): their rows are partitioned by the date of the load.
  std::string time_column;
  std::vector<std::string> primary_key;
  int retention_days = 90;  // 0 keeps data forever
  bool require_partition_filter = false;
  // Rows whose time is before `min_time` (YYYY-MM-DD) or more than `max_future_days` after the
  // ingest are rejected.
  std::string min_time = "1990-01-01";
  int max_future_days = 2;
  CsvOptions csv;
  std::vector<CheckSpec> checks;  // [[tables.T.checks]]

  const ColumnSpec* FindColumn(const std::string& col) const;
};

struct Prices {
  double scan_usd_per_tb = 5.0;                      // Athena list price
  int64_t min_bytes_per_query = 10LL * 1000 * 1000;  // Athena bills at least 10 MB
};

struct QueryLimits {
  int64_t max_scan_bytes = 0;  // 0 = no cutoff
  int64_t max_result_rows = 100000;
  // A user query (CLI or HTTP) stops after this long; unset: each caller's default (the CLI's
  // and the server's differ, see sql/query.h); 0 = no limit.
  std::optional<int64_t> timeout_seconds;
  // DuckDB's memory limit for queries; beyond it large operations spill to <home>/tmp.
  std::string memory_limit = "4GB";
};

// A local stand-in for a cloud task that ASL Task states call: a command run with the task's
// JSON payload on stdin, printing its JSON result on stdout.
struct FlowCommand {
  std::vector<std::string> command;
  int64_t timeout_seconds = 0;  // 0: the Task's TimeoutSeconds (or none)
};

// [flow]: how Task resources map to local work.
struct FlowConfig {
  std::string region = "local";
  std::string account = "000000000000";
  // FunctionName of arn:aws:states:::lambda:invoke (name, or the full function ARN) -> command.
  std::map<std::string, FlowCommand> lambda;
  // TaskDefinition of arn:aws:states:::ecs:runTask(.sync) (family, family:rev or ARN) -> command.
  std::map<std::string, FlowCommand> ecs;
  // Local stand-in for Amazon S3 (Map ItemReader/ResultWriter): bucket name -> directory.
  // The bucket "lake" is always the home's lake directory, read-only.
  std::map<std::string, std::string> buckets;
  // Directories engage:ingest may read in executions started over HTTP (relative paths resolve
  // against the home). An input must resolve (symlinks and `..` followed) inside one of them.
  // Empty: such executions ingest nothing. Runs started from the CLI are not confined.
  std::vector<std::string> input_dirs;
  // AWS Step Functions' execution limits (standard workflows): an execution whose history would
  // pass `max_history_events` fails with States.Runtime; one running longer than
  // `max_execution_seconds` times out. `max_payload_bytes` bounds each state's input and output
  // (States.DataLimitExceeded).
  int64_t max_history_events = 25000;
  int64_t max_execution_seconds = 31536000;  // one year
  int64_t max_payload_bytes = 262144;        // 256 KiB
};

// A feature computed by SQL the operator writes (see EngagementConfig::sql_features).
struct SqlFeature {
  std::string name;
  std::string sql;
};

// [engagement]: what "engaged" means and how features are built (the features component).
struct EngagementConfig {
  std::string events_table = "events";
  std::string customers_table = "customers";  // "" or a missing table: no attributes
  std::string customer_column = "customer_id";
  std::string time_column;  // "" = the events table's time_column
  std::string type_column = "event_type";
  std::string channel_column = "channel";     // "" = none
  std::string amount_column = "amount";       // "" = none
  std::string signup_column = "signup_time";  // in the customers table; "" = none
  // Event types that count as engaging: a customer is engaged at cutoff t when one of these
  // happens in [t, t + horizon_days).
  std::vector<std::string> qualifying_types = {"purchase"};
  int horizon_days = 30;
  std::vector<int> windows_days = {7, 30, 90, 365};
  // Features read events in [t - lookback_days, t) only: the partitions needed, no more.
  int lookback_days = 365;
  // Per-type and per-channel counts; empty = the column's `allowed` values from the table config.
  std::vector<std::string> event_types;
  std::vector<std::string> channels;
  // Training cutoffs: the latest labelled one and `training_cutoffs - 1` earlier ones,
  // `cutoff_step_days` apart.
  int training_cutoffs = 4;
  int cutoff_step_days = 30;
  // [[engagement.features]] name = "...", sql = "SELECT customer_id, <expr> AS value FROM
  // {events} ... GROUP BY 1": {events} is the events before the cutoff, {cutoff} the cutoff
  // timestamp.
  std::vector<SqlFeature> sql_features;
  // Scoring segments: a score >= segment_thresholds[i] (descending) is segment_names[i]; below
  // the last threshold, the last name.
  std::vector<double> segment_thresholds = {0.6, 0.3, 0.1};
  std::vector<std::string> segment_names = {"high", "medium", "low", "at_risk"};
};

// [models]: the promotion gate a candidate passes to become the champion.
struct ModelsConfig {
  std::string promotion_metric = "auc";  // validation metric in the model card; higher wins
  double min_quality = 0.6;              // the quality bar
  double min_improvement = 0.0;          // over the champion
};

// [drift]: when `engage drift` calls a column, and a dataset, drifted (see docs/monitor.md).
struct DriftConfig {
  double psi = 0.2;            // a column drifts when its PSI reaches this, or when
  double p_value = 0.01;       // its test's p-value is below this and
  double min_effect = 0.1;     // its effect (KS statistic; categorical: JS distance) reaches this
  double dataset_share = 0.5;  // the dataset drifts when this share of its columns drift
};

struct Config {
  std::map<std::string, TableSpec> tables;
  EngagementConfig engagement;
  ModelsConfig models;
  DriftConfig drift;
  Prices prices;
  QueryLimits query;
  FlowConfig flow;

  // Parses TOML text; kInvalidArgument naming `origin`, the table and the key on errors.
  static Result<Config> Parse(std::string_view toml_text, std::string_view origin);
  static Result<Config> Load(const std::string& path);

  Result<const TableSpec*> Table(const std::string& name) const;
};

// The `predictions` table `engage score` writes, when engage.toml does not declare one:
// partitioned by the scoring date (scored_at). Config::Parse gives its customer_id the type of
// the [engagement] customer column (int64 in the tables `engage init` writes). Predictions
// written before that stored it as text; the `predictions_latest` view casts them.
TableSpec PredictionsTableSpec(ColumnType customer_id_type = ColumnType::kInt64);

// The engage.toml `engage init` writes: events and customers tables matching `engage gen`.
std::string DefaultConfigToml();

// Bytes priced like Athena: max(bytes, minimum), rounded up to a whole MB, at the TB price
// (1 TB = 2^40 bytes).
double CostUsd(const Prices& prices, int64_t bytes_scanned);

// True if `name` is a valid table/column identifier: [a-z_][a-z0-9_]{0,62}.
bool IsValidIdentifier(const std::string& name);

}  // namespace engage
