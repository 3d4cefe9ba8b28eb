// The cost ledger: every query, pipeline step, execution, training and scoring run, publish,
// server request batch and the lake's storage, with what it used on this machine and what the
// same work would cost on the AWS stack Engage replaces ([prices] in engage.toml).
//
//   ENGAGE_ASSIGN_OR_RETURN(auto ledger, Ledger::Open(home.meta_db(), clock));
//   ENGAGE_RETURN_IF_ERROR(ledger->Record(entry));
//   ENGAGE_ASSIGN_OR_RETURN(CostReport r, ledger->Report({.by = "kind"}));
//
// How work is priced (docs/monitor.md): queries like Athena (by the query engine); training and
// scoring runs as Fargate tasks sized by what they used; other pipeline steps and server request
// batches as Lambda invocations; executions by their state transitions; publishes as DynamoDB
// writes, prediction lookups as DynamoDB reads; ingests as S3 PUTs; the lake as S3 storage.
//
// Thread-safety: a Ledger may be used from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/config.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/core/usage.h"
#include "engage/lake/catalog.h"

namespace engage::monitor {

// Cloud prices of work (USD); each fills `detail` (optional) with the units priced.
// A Fargate task sized from `used`: vCPUs = CPU seconds / wall seconds rounded up (1..16), memory
// the peak rounded up to a GB, at least 2 GB per vCPU; billed per second, at least a minute.
double FargateUsd(const Prices& prices, const Usage& used, Json* detail);
// Lambda invocations: `requests` of `seconds` in all, at the configured memory.
double LambdaUsd(const Prices& prices, int64_t requests, double seconds, Json* detail);
// Step Functions standard workflow state transitions.
double TransitionsUsd(const Prices& prices, int64_t transitions, Json* detail);
// DynamoDB on-demand request units.
double DynamoUsd(const Prices& prices, int64_t reads, int64_t writes, Json* detail);
// S3: `bytes` stored for `days`, and PUT requests.
double S3Usd(const Prices& prices, int64_t bytes, double days, int64_t puts, Json* detail);

struct CostQuery {
  std::string since;        // ISO time or date, inclusive ("" = the beginning)
  std::string until;        // ISO time or date, exclusive ("" = now)
  std::string by = "kind";  // kind, day, table, pipeline, step or model
};

struct CostRow {
  std::string key;  // the --by value ("" shown as "-")
  int64_t entries = 0;
  double cloud_usd = 0;
  Usage usage;  // summed (peak memory: the largest)
};

struct CostReport {
  CostQuery query;
  double total_usd = 0;
  int64_t entries = 0;
  Usage local;  // what Engage used here: top-level work only (nested work is inside it)
  std::vector<CostRow> rows;  // most expensive first
  // {"total_usd", "local": {...}, "rows": [{"<by>", "entries", "cloud_usd", usage...}], "by",
  //  "since", "until", "entries"}
  Json ToJson() const;
  std::string ToText() const;
};

// What an execution cost: its own transitions, then per step (state), everything recorded with
// its id (steps, the queries and training inside them).
struct ExecutionCost {
  double total_usd = 0;
  Usage local;
  int64_t queries = 0;         // queries run inside it
  int64_t bytes_scanned = 0;   // by those queries
  Json steps = Json::array();  // [{"step", "cloud_usd", "entries", ...usage}], in order
  Json ToJson() const;         // {"total_usd", "local", "queries", "bytes_scanned", "steps"}
  // "cost: $x on the cloud stack (...)" and a line per step.
  std::string ToText() const;
};

class Ledger {
 public:
  static Result<std::unique_ptr<Ledger>> Open(const std::string& meta_db, const Clock& clock);

  // Appends `e` (its `at` set to now when empty).
  Status Record(lake::LedgerEntry e);
  // Adds the lake's storage to the ledger: one "storage" entry per UTC day up to today, each
  // priced at the bytes stored that day (days without a sample since the last one at the last
  // sample's size, at most a year back), today's at `lake_bytes` (replaced as it changes).
  Status SampleStorage(const Prices& prices, int64_t lake_bytes);

  // kInvalidArgument for an unknown --by or a malformed time.
  Result<CostReport> Report(const CostQuery& query);
  Result<ExecutionCost> ForExecution(const std::string& execution_id);

  // Cloud USD of the entries in [since, until) matching `scope` (all, queries, pipeline:P,
  // table:T), e.g. a budget's spending in its period.
  Result<double> Spent(const std::string& scope, const std::string& since,
                       const std::string& until);

  SqliteDb& db() { return catalog_.db(); }
  const Clock& clock() const { return clock_; }

 private:
  Ledger(lake::Catalog catalog, const Clock& clock) : catalog_(std::move(catalog)), clock_(clock) {}
  lake::Catalog catalog_;
  const Clock& clock_;
};

// A ledger time bound: "" stays "", "YYYY-MM-DD" is that day's midnight, an ISO-8601 UTC time is
// kept; anything else is kInvalidArgument naming `flag`.
Result<std::string> LedgerTime(const std::string& text, const std::string& flag);

// Validates a budget or cost scope: all, queries, pipeline:<name>, table:<name>.
Status CheckScope(const std::string& scope);

}  // namespace engage::monitor
