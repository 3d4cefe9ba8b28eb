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
  kRowCount,        // min <= rows (matching `where`, if given) <= max
  kHistoryDays,     // the time_column spans at least `min` days
  kVolumeChange,    // rows of the newest `days` days within max_change_percent of the days before
  kIngestRejects,   // the latest ingest rejected at most max_reject_percent of its rows
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
  std::string where;  // row_count: a SQL condition on the table's rows
  int64_t days = 7;   // volume_change: the window
  double max_reject_percent = 0;
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

// [prices]: what the same work would cost on the AWS stack Engage replaces. Defaults are AWS list
// prices for us-east-1 (docs/monitor.md gives each one's source); the cost ledger prices every
// query, step, execution, training and scoring run, publish, server request batch and the lake's
// storage with them.
struct Prices {
  double scan_usd_per_tb = 5.0;                      // Athena, per TB scanned
  int64_t min_bytes_per_query = 10LL * 1000 * 1000;  // Athena bills at least 10 MB
  double state_transition_usd = 0.000025;            // Step Functions standard, per transition
  double fargate_vcpu_hour_usd = 0.04048;            // Fargate Linux/x86, per vCPU-hour
  double fargate_gb_hour_usd = 0.004445;             // Fargate, per GB-hour
  double fargate_min_seconds = 60;                   // Fargate bills at least a minute
  double lambda_request_usd = 0.0000002;             // Lambda, per request
  double lambda_gb_second_usd = 0.0000166667;        // Lambda x86, per GB-second
  double lambda_memory_gb = 1.0;                     // the functions' configured memory
  double dynamodb_read_usd = 0.000000125;            // on-demand, per read request unit
  double dynamodb_write_usd = 0.000000625;           // on-demand, per write request unit
  double s3_gb_month_usd = 0.023;                    // S3 Standard storage, per GB-month
  double s3_put_usd = 0.000005;                      // S3 PUT/COPY/POST/LIST, per request
  double s3_get_usd = 0.0000004;                     // S3 GET, per request
};

// [alerts]: where alerts are delivered (besides being recorded in meta.db).
struct AlertsConfig {
  std::string webhook_url;      // "http://host:port/path": POST of the alert's JSON
  std::string command;          // run by /bin/sh -c with the alert's JSON on stdin
  int64_t max_attempts = 4;     // per channel, with backoff between them
  int64_t timeout_seconds = 5;  // per attempt
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

// [models]: the promotion gate a candidate passes to become the champion, and the realised
// quality a scored model must keep (`engage models health`).
struct ModelsConfig {
  std::string promotion_metric = "auc";  // validation metric in the model card; higher wins
  double min_quality = 0.6;              // the quality bar
  double min_improvement = 0.0;          // over the champion
  // A scoring run whose realised AUC (once its outcomes are known) is below this is unhealthy.
  // Finite, in [0, 1].
  double health_min_auc = 0.6;
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
  AlertsConfig alerts;
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

// The checks the engagement pipeline's data-quality step runs on the events table when it declares
// none: events present, events of the qualifying types, enough history for training, the last
// week's volume against the week before, and the latest ingest's rejects. `engage init` writes
// them into engage.toml, where they can be edited.
std::vector<CheckSpec> DefaultEngagementChecks(const EngagementConfig& engagement);

// The engage.toml `engage init` writes: events and customers tables matching `engage gen`.
std::string DefaultConfigToml();

// Bytes priced like Athena: max(bytes, minimum), rounded up to a whole MB, at the TB price
// (1 TB = 2^40 bytes).
double CostUsd(const Prices& prices, int64_t bytes_scanned);

// True if `name` is a valid table/column identifier: [a-z_][a-z0-9_]{0,62}.
bool IsValidIdentifier(const std::string& name);

}  // namespace engage
